"""The detail phase: masters drawn at twice the side, by the network, not by interpolation.

The trained model is the one of test_render_known_answer (four classes: vertical stripes,
horizontal stripes, a red blob, a green blob); its logits average over positions, so it takes
any image side.
"""

from dataclasses import replace

import numpy as np
import pytest

from generator.optvis.objectives import layer_scores, unit_objective
from generator.optvis.render import Renderer
from generator.optvis.settings import RenderSettings, Transforms
from generator.quality import as_drawn
from test_render_known_answer import GREEN, HORIZONTAL, RED, SIZE, VERTICAL, pattern_model, preprocess  # noqa: F401

CLASSES = [VERTICAL, HORIZONTAL, RED, GREEN]
TRANSFORMS = Transforms(pad=2, jitter=2, scale_range=(0.9, 1.1), rotate_degrees=5, mirror=True)


def detailed(steps=40, detail_steps=10):
    return RenderSettings(size=SIZE, steps=steps, batch_size=4, transforms=TRANSFORMS,
                          detail_size=2 * SIZE, detail_steps=detail_steps)


def test_the_detail_phase_continues_from_the_drawing_upsampled_and_adds_to_it(pattern_model):
    objective = unit_objective(layer_scores(pattern_model, "conv2", preprocess))
    snapshots = Renderer(objective, detailed()).render_snapshots([3, 9], seeds=[7, 8], at=(30, 40))
    plain, _ = Renderer(objective, RenderSettings(size=SIZE, steps=30, batch_size=4,
                                                  transforms=TRANSFORMS)).render([3, 9], seeds=[7, 8])
    at_switch, final = snapshots[30][0], snapshots[40][0]
    assert at_switch.shape == final.shape == (2, 2 * SIZE, 2 * SIZE, 3)
    # At the switch the master is the 30-step drawing, zero-padded: every other pixel is it.
    assert np.abs(at_switch[:, ::2, ::2].astype(int) - plain.astype(int)).max() <= 1
    # The detail steps change the fine grid: the image is no longer the band-limited upsampling.
    fine = final.astype(float) - at_switch.astype(float)
    assert np.abs(fine).mean() > 1


def test_detail_masters_keep_their_class_and_are_scored_as_the_network_saw_them(pattern_model):
    scores = layer_scores(pattern_model, "logits", preprocess)
    renderer = Renderer(unit_objective(scores), detailed(steps=96, detail_steps=16))
    images, final_scores = renderer.render(CLASSES, seeds=[1, 2, 3, 4])
    assert images.shape == (4, 2 * SIZE, 2 * SIZE, 3)
    seen = as_drawn(images, SIZE)
    predicted = pattern_model.predict(preprocess(seen.astype(np.float32)), verbose=0).argmax(axis=1)
    assert list(predicted) == CLASSES
    # The returned scores are of the area average at the drawing's size, in its gray frame.
    framed = np.pad(seen.astype(np.float32) / 255.0, [(0, 0), (2, 2), (2, 2), (0, 0)], constant_values=0.5)
    expected = scores(framed).numpy()[np.arange(4), CLASSES]
    np.testing.assert_allclose(final_scores, expected, rtol=0.02, atol=0.05)
    assert renderer._optimize.experimental_get_tracing_count() == 2, "one trace per phase size"


def test_a_detail_image_does_not_depend_on_its_batch(pattern_model):
    objective = unit_objective(layer_scores(pattern_model, "conv2", preprocess))
    alone, _ = Renderer(objective, replace(detailed(steps=12, detail_steps=4), batch_size=1)).render([5], seeds=[11])
    together, _ = Renderer(objective, detailed(steps=12, detail_steps=4)).render([2, 5, 6], seeds=[3, 11, 4])
    assert np.abs(alone[0].astype(int) - together[1].astype(int)).max() <= 1


def test_the_detail_transforms_see_the_grown_image_at_both_scales():
    settings = detailed()
    phase = settings.phases()[-1]
    assert (phase.size, phase.steps) == (2 * SIZE, 10)
    assert (phase.transforms.pad, phase.transforms.jitter) == (4, 4)
    assert phase.transforms.scale_range == (0.45, 1.1)  # down to the drawing's scale, up to its own
    assert settings.image_size == 2 * SIZE and settings.phases()[0].size == SIZE
    assert settings.describe()["detail"] == {"size": 2 * SIZE, "steps": 10}
    assert "detail" not in replace(settings, detail_size=0, detail_steps=0).describe()


@pytest.mark.parametrize("changes", [dict(detail_size=SIZE), dict(detail_size=3 * SIZE // 2),
                                     dict(detail_steps=0), dict(detail_steps=41), dict(detail_size=0)])
def test_bad_detail_settings_are_refused(changes):
    with pytest.raises(ValueError):
        replace(detailed(), **changes)


def test_as_drawn_is_the_area_average():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    doubled = small.repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_array_equal(as_drawn(doubled, 8), small)  # known answer: a 2x2 block of one colour
    checker = np.zeros((1, 4, 4, 3), np.uint8)
    checker[0, ::2, ::2] = checker[0, 1::2, 1::2] = 255
    np.testing.assert_array_equal(as_drawn(checker, 2), np.full((1, 2, 2, 3), 128, np.uint8))  # 127.5 rounds to 128
    assert as_drawn(small, 8) is small
    with pytest.raises(ValueError):
        as_drawn(small, 3)

"""The detail phase: masters drawn at twice the side, by the network, not by interpolation.

The trained model is the one of test_render_known_answer (four classes: vertical stripes,
horizontal stripes, a red blob, a green blob); its logits average over positions, so it takes
any image side.
"""

from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

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


def _views(transforms, images, steps):
    """The views (steps, B, N, N, 3) `transforms` gives of `images` (B, S, S, 3) at steps 1..steps."""
    seeds = tf.constant(np.arange(images.shape[0]) + 5, tf.int64)
    return np.stack([transforms(tf.constant(images), seeds, tf.constant(step, tf.int64)).numpy()
                     for step in range(1, steps + 1)])


def test_a_view_zoomed_out_to_the_whole_image_is_its_area_average():
    """Known answer: a 2S-pixel image seen at zoom 1/2 through an S-pixel view is its 2 x 2 average."""
    images = np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
    whole = Transforms(pad=0, jitter=0, scale_range=(0.5, 0.5), rotate_degrees=0, view=8)
    averaged = images.reshape(2, 8, 2, 8, 2, 3).mean(axis=(2, 4))
    for views in _views(whole, images, steps=3):
        np.testing.assert_allclose(views, averaged, atol=1e-5)
    # A zoom below S / 2S cannot make the window larger than the image: it is the same view.
    np.testing.assert_allclose(_views(replace(whole, scale_range=(0.3, 0.4)), images, 1)[0], averaged, atol=1e-5)


def test_views_at_full_zoom_are_crops_that_roam_over_the_whole_image():
    """Known answer: zoom 1, no jitter or rotation: every view is an exact S-pixel crop of the 2S
    image, framed, and the crops reach both ends of it; the draws are the same for a seed and step."""
    size = 12
    images = np.random.default_rng(1).uniform(0, 1, (1, 2 * size, 2 * size, 3)).astype(np.float32)
    crop = Transforms(pad=2, jitter=0, scale_range=(1.0, 1.0), rotate_degrees=0, view=size)
    views = _views(crop, images, steps=40)
    assert views.shape == (40, 1, size + 4, size + 4, 3) and crop.output_size(2 * size) == size + 4
    np.testing.assert_allclose(views[:, :, :2], 0.5)  # the gray frame
    offsets = []
    for view in views[:, 0, 2:-2, 2:-2]:
        matches = [(y, x) for y in range(size + 1) for x in range(size + 1)
                   if np.abs(images[0, y : y + size, x : x + size] - view).max() < 1e-5]
        assert len(matches) == 1
        offsets.append(matches[0])
    rows, columns = zip(*offsets)
    assert min(rows) <= 2 and max(rows) >= size - 2 and min(columns) <= 2 and max(columns) >= size - 2
    np.testing.assert_array_equal(views, _views(crop, images, steps=40))
    assert "random_view(12)" in crop.describe()


def test_a_detail_phase_through_random_views_draws_a_larger_master_for_a_fixed_input(pattern_model):
    """The classes' detail phase: the network only ever sees `size` + 2 pad pixels, the master
    comes out twice as wide with new fine detail, and it still shows its class."""
    scores = layer_scores(pattern_model, "logits", preprocess)
    seen_sides = []

    def fixed_input_objective(images, units):
        seen_sides.append(images.shape[1])  # at trace time: every input the phases feed the network
        return unit_objective(scores)(images, units)

    settings = replace(detailed(steps=96, detail_steps=16), detail_view=True)
    assert settings.phases()[-1].transforms.view == SIZE and settings.phases()[-1].input_size == SIZE + 4
    renderer = Renderer(fixed_input_objective, settings)
    snapshots = renderer.render_snapshots(CLASSES, seeds=[1, 2, 3, 4], at=(80, 96))
    (at_switch, _), (images, final_scores) = snapshots[80], snapshots[96]
    assert set(seen_sides) == {SIZE + 4} and images.shape == (4, 2 * SIZE, 2 * SIZE, 3)
    seen = as_drawn(images, SIZE)
    predicted = pattern_model.predict(preprocess(seen.astype(np.float32)), verbose=0).argmax(axis=1)
    assert list(predicted) == CLASSES
    assert np.abs(images.astype(float) - at_switch.astype(float)).mean() > 1  # not the upsampling alone
    assert settings.describe()["detail"] == {"size": 2 * SIZE, "steps": 16, "view": SIZE}
    with pytest.raises(ValueError, match="detail_view"):
        RenderSettings(size=SIZE, steps=10, detail_view=True)


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

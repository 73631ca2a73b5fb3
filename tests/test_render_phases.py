"""Coarse-to-fine drawing, learning-rate schedules and the speckle measure, with known answers.

The trained model is the one of test_render_known_answer (four classes: vertical stripes,
horizontal stripes, a red blob, a green blob).
"""

from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from generator import cost, plan
from generator.errors import UserError
from generator.optvis import param
from generator.optvis.objectives import layer_scores, unit_objective
from generator.optvis.render import Renderer, learning_rate
from generator.optvis.settings import CoarseMode, LearningRateSchedule, RenderSettings, Transforms
from generator.plan import SCHEDULES, DrawOptions, Quality, plan_layer
from generator.quality import high_frequency_share, saturated_share
from test_render_known_answer import (GREEN, HORIZONTAL, RED, SIZE, VERTICAL, dominant_fraction,  # noqa: F401
                                     orientation_energy, pattern_model, preprocess)

CLASSES = [VERTICAL, HORIZONTAL, RED, GREEN]
TRANSFORMS = Transforms(pad=2, jitter=2, scale_range=(0.95, 1.05), rotate_degrees=5)


def coarse_and_grown(grow, seed, coarse, size, decay_power):
    """Images (2, S, S, 3) of random coarse spectra and of `grow`(spectra, size, decay_power)."""
    spectra = np.random.default_rng(seed).normal(0, 1.0, (2, 2, 3, coarse, coarse // 2 + 1)).astype(np.float32)
    grown = grow(spectra, size, decay_power)
    small = param.spectra_to_rgb(tf.constant(spectra), param.frequency_scale(coarse, decay_power)).numpy()
    large = param.spectra_to_rgb(tf.constant(grown), param.frequency_scale(size, decay_power)).numpy()
    return spectra, small, large


@pytest.mark.parametrize("decay_power", [1.0, 1.5])
@pytest.mark.parametrize("coarse, size", [(16, 32), (8, 24)])
def test_padded_spectrum_is_the_coarse_image_upsampled(decay_power, coarse, size):
    _, small, large = coarse_and_grown(param.pad_spectra, 0, coarse, size, decay_power)
    step = size // coarse
    assert large.shape == (2, size, size, 3)
    assert small.std() > 0.05  # the images are not flat, so the comparison means something
    np.testing.assert_allclose(large[:, ::step, ::step], small, atol=2e-5)
    between = large[:, 1::step, 1::step]  # interpolated pixels: within the range of the coarse ones
    assert between.min() >= small.min() - 0.1 and between.max() <= small.max() + 0.1


@pytest.mark.parametrize("decay_power", [1.0, 1.5])
@pytest.mark.parametrize("coarse, size", [(16, 32), (8, 24), (10, 20)])
def test_tiled_spectrum_is_the_coarse_image_repeated(decay_power, coarse, size):
    spectra, small, large = coarse_and_grown(param.tile_spectra, 1, coarse, size, decay_power)
    n = size // coarse
    assert small.std() > 0.05
    np.testing.assert_allclose(large, np.tile(small, (1, n, n, 1)), atol=2e-5)
    with pytest.raises(ValueError):
        param.tile_spectra(spectra, size + 1, decay_power)


def test_pad_spectra_refuses_odd_or_shrinking_sizes():
    with pytest.raises(ValueError):
        param.pad_spectra(np.zeros((1, 2, 3, 15, 8), np.float32), 32)
    with pytest.raises(ValueError):
        param.pad_spectra(np.zeros((1, 2, 3, 16, 9), np.float32), 16)


def coarse_to_fine(steps=96, coarse_steps=72, schedule=LearningRateSchedule.COSINE, batch_size=4):
    return RenderSettings(size=SIZE, steps=steps, batch_size=batch_size, transforms=TRANSFORMS,
                          coarse_size=SIZE // 2, coarse_steps=coarse_steps, lr_schedule=schedule)


def test_coarse_to_fine_reaches_a_comparable_objective_and_the_right_classes(pattern_model):
    scores = layer_scores(pattern_model, "logits", preprocess)
    plain = Renderer(unit_objective(scores), RenderSettings(size=SIZE, steps=96, batch_size=4, transforms=TRANSFORMS))
    # Constant rate: on this model the logits grow with every step, so a decaying rate (tested
    # below for determinism) ends lower whatever the phases; measured 0.59-0.86 of plain here.
    phased = Renderer(unit_objective(scores), coarse_to_fine(schedule=LearningRateSchedule.CONSTANT))
    _, plain_scores = plain.render(CLASSES, seeds=[1, 2, 3, 4])
    images, phased_scores = phased.render(CLASSES, seeds=[1, 2, 3, 4])
    assert np.all(phased_scores > 0.5 * plain_scores), (phased_scores, plain_scores)
    predicted = pattern_model.predict(preprocess(images.astype(np.float32)), verbose=0).argmax(axis=1)
    assert list(predicted) == CLASSES
    assert phased._optimize.experimental_get_tracing_count() == 2, "one trace per phase size"


def test_the_switch_continues_from_the_coarse_image(pattern_model):
    """A coarse phase is a plain drawing at the coarse size; at the switch the image is that
    drawing, upsampled without a jump."""
    objective = unit_objective(layer_scores(pattern_model, "conv2", preprocess))
    settings = coarse_to_fine(steps=30, coarse_steps=20, schedule=LearningRateSchedule.CONSTANT)
    snapshots = Renderer(objective, settings).render_snapshots([3, 9], seeds=[7, 8], at=(20, 30))
    alone = RenderSettings(size=SIZE // 2, steps=20, batch_size=4, transforms=TRANSFORMS.scaled(0.5))
    coarse, _ = Renderer(objective, alone).render([3, 9], seeds=[7, 8])
    at_switch = snapshots[20][0]
    assert np.abs(at_switch[:, ::2, ::2].astype(int) - coarse.astype(int)).max() <= 1
    assert np.abs(snapshots[30][0].astype(int) - at_switch.astype(int)).mean() > 1, "the fine phase moves on"


def test_a_tiled_switch_repeats_the_coarse_drawing(pattern_model):
    objective = unit_objective(layer_scores(pattern_model, "conv2", preprocess))
    settings = replace(coarse_to_fine(steps=30, coarse_steps=20, schedule=LearningRateSchedule.CONSTANT),
                       coarse_mode=CoarseMode.TILE)
    at_switch = Renderer(objective, settings).render_snapshots([3, 9], seeds=[7, 8], at=(20,))[20][0]
    alone = RenderSettings(size=SIZE // 2, steps=20, batch_size=4, transforms=TRANSFORMS)  # same pixel scale
    coarse, _ = Renderer(objective, alone).render([3, 9], seeds=[7, 8])
    assert np.abs(at_switch.astype(int) - np.tile(coarse, (1, 2, 2, 1)).astype(int)).max() <= 1


def test_a_coarse_to_fine_image_does_not_depend_on_its_batch(pattern_model):
    renderer = Renderer(unit_objective(layer_scores(pattern_model, "conv2", preprocess)),
                        coarse_to_fine(steps=16, coarse_steps=8, batch_size=3))
    together, _ = renderer.render([5, 7, 9], seeds=[50, 70, 90])
    alone, _ = renderer.render([7], seeds=[70])
    again, _ = renderer.render([7], seeds=[70])
    assert np.abs(together[1].astype(int) - alone[0].astype(int)).max() <= 2
    np.testing.assert_array_equal(alone, again)
    assert renderer._optimize.experimental_get_tracing_count() == 2


def test_snapshots_equal_separate_runs(pattern_model):
    objective = unit_objective(layer_scores(pattern_model, "conv2", preprocess))
    settings = RenderSettings(size=SIZE, steps=12, batch_size=2, transforms=TRANSFORMS)
    snapshots = Renderer(objective, settings).render_snapshots([4, 6], seeds=[1, 2], at=(5, 12))
    separate, _ = Renderer(objective, RenderSettings(size=SIZE, steps=5, batch_size=2,
                                                     transforms=TRANSFORMS)).render([4, 6], seeds=[1, 2])
    assert np.abs(snapshots[5][0].astype(int) - separate.astype(int)).max() <= 1
    full, _ = Renderer(objective, settings).render([4, 6], seeds=[1, 2])
    np.testing.assert_array_equal(snapshots[12][0], full)


@pytest.mark.parametrize("schedule", list(LearningRateSchedule))
def test_learning_rate_schedules_start_at_the_rate_and_never_rise(schedule):
    settings = RenderSettings(size=8, steps=100, learning_rate=0.05, lr_schedule=schedule, lr_final_fraction=0.1)
    rates = np.array([float(learning_rate(settings, tf.constant(float(step)))) for step in range(1, 101)])
    assert rates[0] == pytest.approx(0.05)
    assert np.all(np.diff(rates) <= 1e-9)
    expected_last = 0.05 if schedule is LearningRateSchedule.CONSTANT else 0.005
    assert rates[-1] == pytest.approx(expected_last, rel=1e-5)
    again = [float(learning_rate(settings, tf.constant(float(step)))) for step in range(1, 101)]
    assert list(rates) == again


def test_defaults_describe_as_before_and_options_are_recorded():
    plain = RenderSettings(size=64, steps=10)
    assert set(plain.describe()) == {"size", "steps", "learning_rate", "decay_power", "transforms",
                                     "parameterization"}
    phased = plan_layer("block4_conv2", DrawOptions(schedule="c2f-256-sub")).settings.describe()
    assert phased["coarse_to_fine"] == {"size": 64, "steps": 192}
    assert phased["lr_schedule"] == {"name": "cosine", "final_fraction": 0.1}
    assert "subpixel_jitter" in phased["transforms"]
    tiled = plan_layer("block5_conv3", DrawOptions(schedule="tile-256")).settings
    assert tiled.describe()["coarse_to_fine"] == {"size": 80, "steps": 192, "mode": "tile"}
    assert tiled.phases()[0].transforms == tiled.transforms  # same pixel scale: transforms unscaled


def test_bad_phases_and_schedule_names_are_refused():
    with pytest.raises(ValueError):
        RenderSettings(size=32, steps=10, coarse_size=15, coarse_steps=5)
    with pytest.raises(ValueError):
        RenderSettings(size=32, steps=10, coarse_size=16, coarse_steps=11)
    with pytest.raises(UserError, match="unknown schedule"):
        DrawOptions(schedule="fast")


def test_phased_cost_counts_each_phase_at_its_own_size():
    layer = "block4_conv2"
    default, phased = plan_layer(layer, DrawOptions(schedule="plain")), plan_layer(layer, DrawOptions(schedule="c2f-256"))
    assert phased.phases == [(74, 192), (148, 64)]
    quality = cost.QUALITY_PASSES * cost.forward_flops(layer, 148)
    expected = 2 * (192 * cost.forward_flops(layer, 74) + 64 * cost.forward_flops(layer, 148)) + quality
    assert cost.image_flops(phased) == expected
    assert cost.image_flops(default) == 2 * 512 * cost.forward_flops(layer, 148) + quality
    plain = DrawOptions(schedule="plain")
    ratio = cost.batch_cost(layer, DrawOptions(schedule="c2f-256")).flops / cost.batch_cost(layer, plain).flops
    assert 0.2 < ratio < 0.25


def test_the_calibration_fingerprint_follows_sizes_and_batches_not_steps(monkeypatch):
    plain, before = DrawOptions(schedule="plain"), cost.plan_fingerprint()
    assert cost.plan_fingerprint(DrawOptions(schedule="c2f-256")) == cost.plan_fingerprint(plain) == before
    assert cost.plan_fingerprint(DrawOptions(steps=64)) == before
    assert cost.plan_fingerprint(DrawOptions(batch_size=3)) != before
    monkeypatch.setitem(plan.FULL_SIZES, 4, 112)
    assert cost.plan_fingerprint() != before


def test_every_named_schedule_plans_every_study_layer():
    for name in SCHEDULES:
        for layer in ("block3_conv1", "block4_conv2", "block5_conv3"):
            settings = plan_layer(layer, DrawOptions(schedule=name)).settings
            assert sum(phase.steps for phase in settings.phases()) == settings.steps


def test_subpixel_jitter_interpolates_and_whole_pixel_jitter_does_not():
    images = tf.constant(np.random.default_rng(0).integers(0, 8, (1, 12, 12, 3)) / 8.0, tf.float32)
    seeds, step = tf.constant([5], tf.int64), tf.constant(1, tf.int64)
    whole = Transforms(pad=0, jitter=3, scale_range=(1.0, 1.0), rotate_degrees=0.0)
    sub = Transforms(pad=0, jitter=3, scale_range=(1.0, 1.0), rotate_degrees=0.0, subpixel=True)
    on_grid = lambda x: np.allclose(x * 8.0, np.round(x * 8.0), atol=1e-4)  # noqa: E731
    assert on_grid(whole(images, seeds, step).numpy())
    assert not on_grid(sub(images, seeds, step).numpy())


def test_high_frequency_share_separates_smooth_noise_and_grids():
    ramp = np.tile(np.linspace(0, 255, 64)[None, :, None], (64, 1, 3)).astype(np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    dots = np.zeros((64, 64, 3), np.uint8)
    dots[::2, ::2] = 255
    assert high_frequency_share(ramp) < 0.01
    assert 0.75 < high_frequency_share(noise) < 0.85  # white noise: the area outside radius 1/4
    assert high_frequency_share(dots) > 0.9
    assert high_frequency_share(np.full((8, 8, 3), 90, np.uint8)) == 0.0
    assert saturated_share(dots) == 1.0 and saturated_share(np.full((4, 4, 3), 128, np.uint8)) == 0.0


def test_the_plain_schedule_is_the_drawing_before_schedules_and_wide_widens_the_scale():
    default = plan_layer("block2_conv1").settings  # plain-detail: "plain" and a detail phase
    assert plan_layer("block2_conv1", DrawOptions(schedule="plain")).settings == replace(
        default, steps=512, detail_size=0, detail_steps=0)
    plain = plan_layer("block5_conv3", DrawOptions(schedule="plain")).settings
    assert (plain.size, plain.steps, plain.coarse_size, plain.transforms.scale_range) == (160, 512, 0, (0.9, 1.1))
    assert plan_layer("block4_conv2", DrawOptions(schedule="plain", steps=64)).settings.steps == 64
    wide = plan_layer("block4_conv2", DrawOptions(schedule="c2f-256-const-wide")).settings
    assert wide.transforms.scale_range == (0.8, 1.25) and wide.phases()[0].transforms.scale_range == (0.8, 1.25)
    assert plan_layer("block4_conv2", DrawOptions(schedule="c2f-256", steps=64)).settings.coarse_steps == 48


def test_the_full_atlas_draws_blocks_3_to_5_coarse_to_fine_mirrored_and_every_filter_layer_with_detail():
    for layer, schedule, detail in (("block3_conv1", "c2f-256-mirror-detail", 16),
                                    ("block4_conv2", "c2f-256-mirror-detail", 16),
                                    ("block5_conv3", "c2f-256-mirror-detail12", 12)):  # block 5: 3x tf-keras-vis
        settings = plan_layer(layer).settings
        assert settings == plan_layer(layer, DrawOptions(schedule=schedule)).settings
        assert settings.steps == 256 + detail and settings.coarse_size == settings.size // 2
        assert (settings.detail_size, settings.detail_steps) == (2 * settings.size, detail)
        assert [phase.size for phase in settings.phases()] == [settings.size // 2, settings.size, 2 * settings.size]
        assert [phase.steps for phase in settings.phases()] == [192, 64, detail]
        assert settings.transforms.mirror and all(phase.transforms.mirror for phase in settings.phases())
        assert settings.describe()["detail"] == {"size": 2 * settings.size, "steps": detail}
    block2 = plan_layer("block2_conv2").settings
    assert (block2.coarse_size, block2.steps, block2.detail_size, block2.transforms.mirror) == (0, 512 + 16, 128, False)
    preview = plan_layer("block5_conv3", DrawOptions(quality=Quality.PREVIEW)).settings
    assert (preview.steps, preview.coarse_size, preview.detail_size) == (128 + 16, 40, 160) and preview.transforms.mirror
    preview_cost = cost.batch_cost("block5_conv3", DrawOptions(quality=Quality.PREVIEW)).flops / cost.batch_cost(
        "block5_conv3", DrawOptions(quality=Quality.PREVIEW, schedule="plain", steps=128)).flops
    assert 0.9 < preview_cost < 1.0  # the preview's 128 plain steps cost about as much
    assert plan_layer("block4_conv2", DrawOptions(steps=64)).settings.coarse_steps == 48
    filters = cost.batch_cost("block4_conv2").flops / cost.batch_cost("block4_conv2", DrawOptions(schedule="plain")).flops
    assert 0.33 < filters < 0.37  # 0.22 without the detail phase; 16 steps at 4x the pixels add 0.125
    block5 = cost.batch_cost("block5_conv3").flops / cost.batch_cost("block5_conv3", DrawOptions(schedule="plain")).flops
    assert 0.30 < block5 < 0.33  # 12 detail steps add 0.094
    without_detail = DrawOptions(schedule="c2f-256-mirror")
    assert 0.2 < cost.batch_cost("block5_conv3", without_detail).flops / cost.batch_cost(
        "block5_conv3", DrawOptions(schedule="plain")).flops < 0.25


def _constant_batch(value, size=12):
    return tf.constant(np.full((2, size, size, 3), value, np.float32))


@pytest.mark.parametrize("step", [1, 2, 3])
def test_the_mirror_fill_keeps_gray_out_of_the_image_and_the_frame_still(step):
    """A constant image: any other value inside the frame came from the gray frame (0.5)."""
    images, seeds, pad = _constant_batch(0.2), tf.constant([3, 4], tf.int64), 3
    grey_in = Transforms(pad=pad, jitter=3, scale_range=(0.85, 0.9), rotate_degrees=8.0)
    mirrored = replace(grey_in, mirror=True)
    with_gray = grey_in(images, seeds, tf.constant(step, tf.int64)).numpy()
    with_mirror = mirrored(images, seeds, tf.constant(step, tf.int64)).numpy()
    inside = (slice(None), slice(pad, -pad), slice(pad, -pad))
    assert with_mirror.shape == with_gray.shape == (2, 12 + 2 * pad, 12 + 2 * pad, 3)
    np.testing.assert_allclose(with_mirror[inside], 0.2, atol=1e-5)  # only the image's own reflection
    ring = np.ones(with_mirror.shape[1:3], bool)
    ring[pad:-pad, pad:-pad] = False
    np.testing.assert_allclose(with_mirror[:, ring], 0.5, atol=1e-6)  # the frame, unmoved
    assert (np.abs(with_gray[inside] - 0.2) > 0.05).any()  # a shrink brings gray in without the mirror


def test_the_mirror_fill_is_recorded_only_when_on():
    assert "mirror_fill" not in Transforms().describe()
    assert Transforms(mirror=True).describe()[-1] == "mirror_fill"
    assert Transforms(mirror=True).scaled(0.5).mirror


def test_classes_draw_on_their_one_phase_schedule_and_take_only_one_phase_schedules():
    full = plan_layer("predictions").settings
    assert (full.steps, full.coarse_size, full.transforms.mirror, full.transforms.scale_range) == (96, 0, True, (0.8, 1.25))
    assert (full.detail_size, full.detail_steps, full.detail_view, full.learning_rate) == (2 * full.size, 16, True, 0.08)
    assert [phase.input_size for phase in full.phases()] == [224, 224]  # the head's fixed input, in every phase
    assert full.image_size == 384  # the master: twice the 192 px the class page shows
    plain = plan_layer("predictions", DrawOptions(schedule="plain")).settings
    assert (plain.steps, plain.learning_rate, plain.detail_view) == (512, 0.05, False)  # the schedule's rate, or the layer's
    assert plan_layer("predictions", DrawOptions(schedule="mirror-256-detail")).settings.steps == 256 + 32
    assert plan_layer("predictions", DrawOptions(schedule="c2f-256-mirror")).settings == full  # no coarse head
    assert plan_layer("predictions", DrawOptions(steps=100)).settings.steps == 100 + 16
    assert plan_layer("predictions", DrawOptions(learning_rate=0.02)).settings.learning_rate == 0.02  # over the schedule's
    assert plan_layer("predictions", DrawOptions(quality=Quality.PREVIEW)).settings == full  # already cheaper than a preview
    # 96 steps at the head's input against 512: every step of the detail phase costs a full one.
    cheaper = cost.batch_cost("predictions").flops / cost.batch_cost("predictions", DrawOptions(schedule="plain")).flops
    assert 0.18 < cheaper < 0.20


def test_a_mirrored_drawing_finds_the_pattern_classes(pattern_model):
    """The known-answer classes still come out with the mirror fill on (vertical stripes carry
    horizontal frequencies, the red class is red)."""
    objective = unit_objective(layer_scores(pattern_model, "logits", preprocess))
    settings = RenderSettings(size=SIZE, steps=96, batch_size=4, transforms=replace(TRANSFORMS, mirror=True))
    images, _ = Renderer(objective, settings).render(CLASSES, [1, 2, 3, 4])
    horizontal, vertical = orientation_energy(images[0])
    assert horizontal > 3 * vertical
    assert dominant_fraction(images[2], 0) > 0.15 and dominant_fraction(images[2], 1) < 0.02

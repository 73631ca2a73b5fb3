"""The drawing engine on the real VGG16 graph with the embedded ImageNet conv weights, small sizes."""

import numpy as np
import pytest
from skimage import data

from generator.model import preprocess
from generator.optvis.objectives import layer_scores, unit_objective
from generator.optvis.render import Renderer
from generator.optvis.transform import frame
from generator.plan import DrawOptions, Quality, plan_layer
from generator.quality import as_drawn, layer_quality


def draw(loaded, layer, units, size, steps):
    """The preview's plan of `layer` (size, steps before its detail phase: None for its defaults);
    the images area-averaged back to the side the network saw, as the atlas scores them."""
    plan = plan_layer(layer, DrawOptions(quality=Quality.PREVIEW, size=size, steps=steps))
    scores = layer_scores(loaded.model, layer, preprocess, plan.objective.readout)
    images, final = Renderer(unit_objective(scores), plan.settings).render(units, seeds=[100 + u for u in units])
    return plan, scores, as_drawn(images, plan.settings.size), final


def test_block1_conv1_images_resemble_their_kernels(embedded_vgg16):
    units = [0, 5, 17, 40]
    plan, _, images, _ = draw(embedded_vgg16, "block1_conv1", units, size=11, steps=96)
    kernels = embedded_vgg16.model.get_layer("block1_conv1").get_weights()[0][:, :, ::-1]  # RGB inputs
    center = plan.settings.size // 2
    correlations = []
    for image, unit in zip(images, units):
        patch = image[center - 1 : center + 2, center - 1 : center + 2].astype(np.float32) - 127.5
        correlations.append(np.corrcoef(patch.ravel(), kernels[..., unit].ravel())[0, 1])
    # Saturated pixels follow the sign of each weight, so small weights lower the correlation.
    assert min(correlations) > 0.6 and np.mean(correlations) > 0.8, correlations


def test_block3_filters_are_specific_robust_and_beat_a_photo(embedded_vgg16):
    units = [3, 40, 101, 200]
    plan, scores, images, final = draw(embedded_vgg16, "block3_conv1", units, size=40, steps=64)
    pad = plan.settings.transforms.pad
    per_unit, summary = layer_quality(scores, images, units, pad)
    assert summary["flat"] == 0
    assert summary["specificity"] == 1.0, per_unit
    assert summary["robustness"] > 0.5, per_unit
    cat = np.asarray(data.chelsea()[100:260, 150:310], np.float32)[::4, ::4][None]  # (1, 40, 40, 3)
    photo = scores(frame(cat / 255.0, pad)).numpy()[0, units]
    assert np.all(final > 2 * np.maximum(photo, 0) + 1), (final, photo)


def test_more_steps_reach_a_higher_objective(embedded_vgg16):
    _, _, _, short = draw(embedded_vgg16, "block2_conv1", [7, 9], size=24, steps=8)
    _, _, _, long = draw(embedded_vgg16, "block2_conv1", [7, 9], size=24, steps=48)
    assert np.all(long > short)


@pytest.mark.slow
def test_block5_filters_are_specific_at_preview_settings(embedded_vgg16):
    units = [11, 128, 300, 477]
    plan, scores, images, _ = draw(embedded_vgg16, "block5_conv1", units, size=None, steps=None)
    _, summary = layer_quality(scores, images, units, plan.settings.transforms.pad)
    assert summary["specificity"] == 1.0 and summary["flat"] == 0


def test_bfloat16_drawing_reaches_the_float32_objective(embedded_vgg16):
    from generator.model import with_precision

    plan = plan_layer("block3_conv1", DrawOptions(quality=Quality.PREVIEW, size=32, steps=32))
    units, seeds = [12, 99], [5, 6]
    results = {}
    for precision in ("float32", "bfloat16"):
        model = with_precision(embedded_vgg16.model, precision)
        renderer = Renderer(unit_objective(layer_scores(model, "block3_conv1", preprocess)), plan.settings)
        results[precision] = renderer.render(units, seeds)
    float32_scores = layer_scores(embedded_vgg16.model, "block3_conv1", preprocess)
    pad = plan.settings.transforms.pad
    for precision, (images, _) in results.items():
        framed = frame(images.astype(np.float32) / 255.0, pad)
        results[precision] = float32_scores(framed).numpy()[[0, 1], units]
    assert np.all(results["bfloat16"] > 0.8 * results["float32"]), results
    assert embedded_vgg16.model.get_layer("block3_conv1").compute_dtype == "float32"

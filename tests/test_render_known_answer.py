"""Known-answer tests of the drawing engine on a tiny CNN trained here on synthetic patterns.

The model learns four classes: vertical stripes, horizontal stripes, a red blob, a green blob.
The image that maximizes each class logit must show that class's pattern.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from generator.optvis.objectives import layer_scores, unit_objective
from generator.optvis.render import Renderer
from generator.optvis.settings import RenderSettings, Transforms
from generator.quality import layer_quality

SIZE = 32
VERTICAL, HORIZONTAL, RED, GREEN = range(4)


def synthetic_images(count, rng):
    """(images uint8-range float32 (count, SIZE, SIZE, 3), labels (count,)) of the four classes."""
    labels = rng.integers(0, 4, count)
    images = np.empty((count, SIZE, SIZE, 3), np.float32)
    grid = np.arange(SIZE, dtype=np.float32)
    for i, label in enumerate(labels):
        background = rng.uniform(90, 160)
        if label in (VERTICAL, HORIZONTAL):
            period, phase = rng.uniform(4, 8), rng.uniform(0, 2 * np.pi)
            wave = np.sin(2 * np.pi * grid / period + phase)
            pattern = wave[None, :] if label == VERTICAL else wave[:, None]
            image = background + 70 * np.broadcast_to(pattern, (SIZE, SIZE))
            images[i] = image[..., None]
        else:
            images[i] = background + rng.normal(0, 8, (SIZE, SIZE, 1))
            y, x = rng.integers(6, SIZE - 6, 2)
            mask = (grid[:, None] - y) ** 2 + (grid[None, :] - x) ** 2 < rng.uniform(16, 36)
            colour = [230, 30, 30] if label == RED else [30, 230, 30]
            images[i][mask] = colour
    return np.clip(images, 0, 255), labels


@pytest.fixture(scope="module")
def pattern_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="logits")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    images, labels = synthetic_images(2000, np.random.default_rng(0))
    model.fit(images / 127.5 - 1.0, labels, epochs=6, batch_size=64, verbose=0)
    test_images, test_labels = synthetic_images(400, np.random.default_rng(1))
    accuracy = model.evaluate(test_images / 127.5 - 1.0, test_labels, verbose=0)[1]
    assert accuracy > 0.95, f"the test model did not learn the patterns (accuracy {accuracy:.2f})"
    return model


def preprocess(rgb_0_255):
    return rgb_0_255 / 127.5 - 1.0


@pytest.fixture(scope="module")
def class_images(pattern_model):
    settings = RenderSettings(size=SIZE, steps=96, learning_rate=0.05, batch_size=4,
                              transforms=Transforms(pad=2, jitter=2, scale_range=(0.95, 1.05), rotate_degrees=5))
    scores = layer_scores(pattern_model, "logits", preprocess)
    renderer = Renderer(unit_objective(scores), settings)
    images, final = renderer.render([VERTICAL, HORIZONTAL, RED, GREEN], seeds=[1, 2, 3, 4])
    return scores, images, final


def orientation_energy(image):
    """(energy of horizontal frequencies, energy of vertical frequencies) of a gray image, DC removed."""
    gray = image.astype(np.float32).mean(axis=2)
    power = np.abs(np.fft.fft2(gray - gray.mean())) ** 2
    fy = np.abs(np.fft.fftfreq(gray.shape[0]))[:, None]
    fx = np.abs(np.fft.fftfreq(gray.shape[1]))[None, :]
    return float(power[fx > 2 * fy].sum()), float(power[fy > 2 * fx].sum())


def test_vertical_stripes_class_carries_horizontal_frequencies(class_images):
    _, images, _ = class_images
    horizontal, vertical = orientation_energy(images[VERTICAL])
    assert horizontal > 3 * vertical


def test_horizontal_stripes_class_carries_vertical_frequencies(class_images):
    _, images, _ = class_images
    horizontal, vertical = orientation_energy(images[HORIZONTAL])
    assert vertical > 3 * horizontal


def dominant_fraction(image, channel):
    """Fraction of pixels whose `channel` exceeds both others by more than 40 (of 255)."""
    pixels = image.reshape(-1, 3).astype(np.int32)
    others = np.delete(pixels, channel, axis=1)
    return float(np.mean((pixels[:, channel:channel + 1] > others + 40).all(axis=1)))


def test_red_class_is_red_and_green_class_is_green(class_images):
    _, images, _ = class_images
    red_channel, green_channel = 0, 1
    assert dominant_fraction(images[RED], red_channel) > 0.15
    assert dominant_fraction(images[RED], green_channel) < 0.02
    assert dominant_fraction(images[GREEN], green_channel) > 0.10
    assert dominant_fraction(images[GREEN], red_channel) < 0.02
    assert dominant_fraction(images[VERTICAL], red_channel) < 0.05


def test_each_class_image_is_classified_as_its_class(pattern_model, class_images):
    _, images, _ = class_images
    predicted = pattern_model.predict(preprocess(images.astype(np.float32)), verbose=0).argmax(axis=1)
    assert list(predicted) == [VERTICAL, HORIZONTAL, RED, GREEN]


def test_layer_quality_finds_every_image_specific_and_none_flat(class_images):
    scores, images, _ = class_images
    per_unit, summary = layer_quality(scores, images, [VERTICAL, HORIZONTAL, RED, GREEN])
    assert summary["specificity"] == 1.0
    assert summary["flat"] == 0
    assert all(unit["robustness"] > 0.5 for unit in per_unit), per_unit


def test_layer_quality_flags_gray_and_swapped_images(class_images):
    scores, images, _ = class_images
    gray = np.full_like(images[:1], 128)
    swapped = np.stack([images[HORIZONTAL], images[VERTICAL], images[RED], gray[0]])
    per_unit, summary = layer_quality(scores, swapped, [VERTICAL, HORIZONTAL, RED, GREEN])
    assert summary["flat"] == 1
    assert not per_unit[VERTICAL]["specificity"] and not per_unit[HORIZONTAL]["specificity"]


def test_a_unit_image_does_not_depend_on_its_batch(pattern_model):
    settings = RenderSettings(size=SIZE, steps=20, batch_size=3, transforms=Transforms(pad=2, jitter=2))
    renderer = Renderer(unit_objective(layer_scores(pattern_model, "conv2", preprocess)), settings)
    together, _ = renderer.render([5, 7, 9], seeds=[50, 70, 90])
    alone, _ = renderer.render([7], seeds=[70])
    other_seed, _ = renderer.render([7], seeds=[71])
    assert np.abs(together[1].astype(int) - alone[0].astype(int)).max() <= 2
    assert np.abs(other_seed[0].astype(int) - alone[0].astype(int)).mean() > 5
    assert renderer._optimize.experimental_get_tracing_count() == 1, "a short batch must not retrace"


def test_minimizing_lowers_the_unit_below_maximizing(pattern_model):
    settings = RenderSettings(size=SIZE, steps=40, batch_size=2, transforms=Transforms(pad=2, jitter=2))
    renderer = Renderer(unit_objective(layer_scores(pattern_model, "logits", preprocess)), settings)
    _, scores = renderer.render([RED, RED], seeds=[3, 3], signs=[1, -1])
    assert scores[0] > 0 > scores[1]


def test_transforms_are_deterministic_per_seed_and_step():
    transforms = Transforms(pad=4, jitter=4)
    images = tf.random.stateless_uniform([2, 16, 16, 3], seed=[0, 0])
    seeds = tf.constant([11, 12], tf.int64)
    first = transforms(images, seeds, tf.constant(3, tf.int64)).numpy()
    again = transforms(images, seeds, tf.constant(3, tf.int64)).numpy()
    later = transforms(images, seeds, tf.constant(4, tf.int64)).numpy()
    assert first.shape == (2, 24, 24, 3)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - later).mean() > 1e-3

"""Ranking units over photos (generator.ranking): mean activations, streaming top-k, stable values."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from generator.photos import Photo
from generator.ranking import ACTIVATION_DIGITS, MeanActivations, TopExamples, rank_photos, round_significant
from generator.targets import Target


def tiny_preprocess(rgb):
    return tf.cast(rgb, tf.float32) / 255.0


@pytest.fixture(scope="module")
def tiny_model():
    """conv1 (16) -> pool -> conv2 (32) -> GAP -> softmax, random weights: the shape of test_attribution's model."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    hidden = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inputs)
    hidden = keras.layers.MaxPooling2D(2)(hidden)
    hidden = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(hidden)
    hidden = keras.layers.GlobalAveragePooling2D()(hidden)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(hidden))


def test_mean_activations_cover_every_filter_and_equal_layer_means(tiny_model):
    ranker = MeanActivations(tiny_model, tiny_preprocess)
    assert ranker.units[:2] == [("conv1", 0), ("conv1", 1)] and len(ranker.units) == 16 + 32
    images = np.random.default_rng(4).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    conv2 = keras.Model(tiny_model.inputs, tiny_model.get_layer("conv2").output)
    expected = np.asarray(conv2(tiny_preprocess(images))).mean(axis=(1, 2))
    assert expected.max() > 0  # the comparison below is not between zeros
    np.testing.assert_allclose(ranker(images)[:, 16:], expected, rtol=1e-5, atol=1e-6)


def test_mean_activations_of_vgg16_has_4224_columns():
    vgg16 = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
    ranker = MeanActivations(vgg16, lambda rgb: tf.cast(rgb, tf.float32))
    assert len(ranker.units) == 4224
    assert ranker(np.zeros((1, 32, 32, 3), np.uint8)).shape == (1, 4224)


def test_top_examples_stream_equals_a_full_sort():
    rng = np.random.default_rng(0)
    activations = rng.normal(size=(50, 7)).astype(np.float32)
    activations[10, 0] = activations[3, 0] = 9.0  # a tie: the earlier image wins
    top = TopExamples(unit_count=7, k=4)
    for image_id, row in enumerate(activations):
        top.add(image_id, row)
    for unit in range(7):
        expected = np.argsort(-activations[:, unit], kind="stable")[:4]
        assert [image_id for image_id, _ in top.best(unit)] == expected.tolist()
        assert [value for _, value in top.best(unit)] == pytest.approx(activations[expected, unit].tolist())
    assert [i for i, _ in top.best(0)][:2] == [3, 10]


def test_top_examples_with_fewer_images_than_k():
    top = TopExamples(unit_count=2, k=3)
    top.add(5, [1.0, -2.0])
    assert top.best(0) == [(5, 1.0)] and top.best(1) == [(5, -2.0)]


def test_round_significant_keeps_six_digits_at_every_scale():
    values = np.array([12.345678, 0.0012345678, 98765.4321, 0.0, -3.14159265], np.float32)
    assert round_significant(values).tolist() == [12.3457, 0.00123457, 98765.4, 0.0, -3.14159]
    assert ACTIVATION_DIGITS == 6


class JitteryActivations:
    """A MeanActivations stand-in: fixed means per photo (by its first pixel) times (1 + jitter)."""

    units = [("conv1", 0), ("conv1", 1), ("conv2", 0)]

    def __init__(self, jitter):
        self.rng, self.jitter = np.random.default_rng(), jitter

    def __call__(self, rgb_batch):
        base = np.array([[3.0, 1.0, 2.0], [1.0, 2.0, 2.0], [2.0, 3.0, 2.0]], np.float32)[rgb_batch[:, 0, 0, 0]]
        return base * (1 + self.jitter * self.rng.uniform(-1, 1, base.shape)).astype(np.float32)


def test_ranking_ignores_float_noise_between_runs():
    """Values that differ in the last float32 bits from run to run rank and print the same."""
    photos = [Photo(f"p{i}", "", "", "", None) for i in range(3)]
    read = lambda photo: np.full((4, 4, 3), int(photo.slug[1]), np.uint8)  # noqa: E731
    units = [Target("conv1", 0), Target("conv2", 0)]
    runs = [rank_photos(photos, read, JitteryActivations(2e-7), units, top_k=2, limit=3) for _ in range(5)]
    assert all(run.best == runs[0].best for run in runs)
    assert runs[0].best == [[(0, 3.0), (2, 2.0)], [(0, 2.0), (1, 2.0)]]  # conv2 #0: a tie keeps photo order
    np.testing.assert_array_equal(runs[0].relative_activations(0), [1.5, 1.0])


def test_ranking_reads_only_the_first_readable_photos_up_to_its_limit():
    """A folder of any size costs the saliency stage `limit` photos: the ones after are never read."""
    photos = [Photo(f"p{i}", "", "", "", None) for i in range(6)]
    asked = []

    def read(photo):
        asked.append(photo.slug)
        return None if photo.slug == "p1" else np.full((4, 4, 3), int(photo.slug[1]) % 3, np.uint8)

    ranking = rank_photos(photos, read, JitteryActivations(0), [Target("conv1", 0)], top_k=2, limit=3)
    assert asked == ["p0", "p1", "p2", "p3"]  # p1 unreadable: skipped, not counted
    assert ranking.readable == [0, 2, 3] and ranking.examined == 4
    assert ranking.best == [[(0, 3.0), (3, 3.0)]] and set(ranking.activations) == {0, 2, 3}

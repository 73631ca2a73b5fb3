"""Ranking units over photos: which photos excite each asked filter most (its top examples).

One forward pass per photo gives the spatial mean activation of every conv filter
(`MeanActivations`); the best k photos of each asked unit are kept while the photos stream by
(`TopExamples`), so memory does not grow with the folder. Activations are rounded to
ACTIVATION_DIGITS significant digits before they are compared or written: TensorFlow's CPU
kernels give values that differ in the last float32 bit from run to run, and a rerun must
write the same files.
"""

import functools
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from .targets import conv_layers, image_spec

ACTIVATION_DIGITS = 6


def round_significant(values, digits=ACTIVATION_DIGITS):
    """float array (N,) -> float64 (N,), each value rounded to `digits` significant digits."""
    return np.array([float(f"{value:.{digits}g}") for value in np.asarray(values, np.float64)], np.float64)


class MeanActivations:
    """Spatial mean of every filter of the model's conv layers, for many images in one pass each.

    For VGG16 that is a (B, 4224) array from one forward pass over the 13 conv layers.
    `units[i]` = (layer name, filter index) of column i.

    Args:
        model: Keras CNN taking preprocessed images.
        preprocess: RGB (B, H, W, 3) 0..255 -> model input.
    """

    def __init__(self, model, preprocess):
        layers = conv_layers(model)
        self.units = [(layer.name, index) for layer in layers for index in range(layer.filters)]
        self._model = keras.Model(model.inputs, [layer.output for layer in layers])
        self._preprocess = preprocess
        self._means = tf.function(self._mean_outputs, input_signature=[image_spec(model)])

    def _mean_outputs(self, x):
        return tf.concat([tf.reduce_mean(output, axis=[1, 2]) for output in self._model(x)], axis=-1)

    def __call__(self, rgb_batch):
        """uint8 RGB (B, H, W, 3) -> float32 (B, len(units)) mean post-ReLU activations."""
        x = self._preprocess(tf.constant(np.asarray(rgb_batch, dtype=np.float32)))
        return np.asarray(self._means(tf.convert_to_tensor(x, dtype=tf.float32)))


class TopExamples:
    """The k images with the highest activation of each unit, kept while images stream past.

    Memory is O(units x k) whatever the number of images; ties keep the earlier image.

    Args:
        unit_count: number of units (columns of the activation vectors).
        k: examples kept per unit.
    """

    def __init__(self, unit_count, k):
        self.values = np.full((unit_count, k), -np.inf, dtype=np.float64)
        self.image_ids = np.full((unit_count, k), -1, dtype=np.int64)

    def add(self, image_id, activations):
        """Offer one image: `activations` float (unit_count,), its value for every unit."""
        values = np.concatenate([self.values, np.asarray(activations, np.float64)[:, None]], axis=1)
        ids = np.concatenate([self.image_ids, np.full((len(values), 1), image_id)], axis=1)
        order = np.argsort(-values, axis=1, kind="stable")[:, : self.values.shape[1]]
        self.values = np.take_along_axis(values, order, axis=1)
        self.image_ids = np.take_along_axis(ids, order, axis=1)

    def best(self, unit):
        """[(image_id, activation)] of column `unit`, best first (fewer than k if fewer images)."""
        return [(int(i), float(v)) for i, v in zip(self.image_ids[unit], self.values[unit]) if i >= 0]


@dataclass(frozen=True)
class Ranking:
    """The photos of a run ranked for the asked units.

    Attributes:
        units: the asked filter Targets (columns).
        readable: ids (positions in the photo list) of the photos read and ranked, in order: each
            gets an example page.
        activations: photo id -> float64 (len(units),) mean activations, rounded (ACTIVATION_DIGITS).
        best: per unit, [(photo id, activation)] of its top-k photos, best first.
        examined: photos looked at (the readable ones and those skipped); those after are not read.
    """

    units: list
    readable: list
    activations: dict
    best: list
    examined: int

    def entries(self, photo_id):
        """[{"target", "rank" (0 = best), "activation"}] of the units whose top-k holds the photo."""
        return [
            {"target": target, "rank": rank, "activation": activation}
            for target, ranking in zip(self.units, self.best)
            for rank, (ranked_id, activation) in enumerate(ranking)
            if ranked_id == photo_id
        ]

    @functools.cached_property
    def _mean_activations(self):
        return np.mean([self.activations[i] for i in self.readable], axis=0)

    def relative_activations(self, photo_id):
        """float64 (len(units),): the photo's activation of each unit over the unit's mean over
        the readable photos; None without units."""
        if not self.units:
            return None
        return self.activations[photo_id] / np.maximum(self._mean_activations, 1e-12)


def rank_photos(photos, read, mean_activations, units, top_k, limit, progress=False):
    """Read the photos in order until `limit` of them could be read, and rank those for the asked units.

    The saliency stage maps every photo it ranks, so it ranks a bounded few: the cost and the
    memory (one activation vector per photo) do not grow with the folder. The dataset examples
    (generator.dataset) rank every photo.

    Args:
        photos: the Photos of the run.
        read: Photo -> uint8 RGB (H, W, 3), or None when unreadable (photos.PhotoReader; skipped,
            not counted).
        mean_activations: a MeanActivations of the model, or None when `units` is empty.
        units: filter Targets to rank the photos for.
        top_k: photos kept per unit.
        limit: readable photos to rank, >= 1; the photos after them are not read.
        progress: show a tqdm progress bar.
    Returns:
        Ranking.
    """
    column_of = {unit: column for column, unit in enumerate(mean_activations.units)} if units else {}
    columns = [column_of[(target.layer, target.index)] for target in units]
    top = TopExamples(len(units), top_k)
    readable, activations, examined = [], {}, 0
    with tqdm(total=min(limit, len(photos)), desc="ranking photos", unit="photo", disable=not progress) as bar:
        for photo_id, photo in enumerate(photos):
            if len(readable) == limit:
                break
            examined += 1
            rgb = read(photo)
            if rgb is None:
                continue
            readable.append(photo_id)
            bar.update()
            if units:
                activations[photo_id] = round_significant(mean_activations(rgb[None])[0][columns])
                top.add(photo_id, activations[photo_id])
    return Ranking(list(units), readable, activations, [top.best(column) for column in range(len(units))], examined)

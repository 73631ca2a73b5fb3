"""The optimization loop: many units at once, one image per unit, compiled once per shape.

A batch holds B units, each with its own image, seed and objective term; the terms are
independent, so the gradient of their sum gives each image its own ascent direction. The whole
loop of `steps` Adam updates runs inside one `tf.function` call, so Python is not in the hot
path, and the graph is traced once per (batch size, image size): a short last batch is padded
with copies of its last unit rather than retraced.
"""

import numpy as np
import tensorflow as tf

from . import param
from .transform import frame

_ADAM_BETA1, _ADAM_BETA2, _ADAM_EPSILON = 0.9, 0.999, 1e-8


class Renderer:
    """Draws images that maximize (or minimize) units of one objective.

    Args:
        objective: f(images (B, H, W, 3) in [0, 1], units (B,) int) -> (B,) scores; H = W =
            settings.size + 2 * settings.transforms.pad.
        settings: a RenderSettings.
    """

    def __init__(self, objective, settings):
        self.objective = objective
        self.settings = settings
        self._scale = tf.constant(param.frequency_scale(settings.size, settings.decay_power))
        self._optimize = tf.function(self._optimize_batch)

    def render(self, units, seeds, signs=None):
        """Optimize one image per unit.

        Args:
            units: sequence of N unit indices (channels or classes).
            seeds: sequence of N ints; a unit's image depends only on its seed, not its batch.
            signs: optional sequence of N values, +1 to maximize (default) or -1 to minimize.
        Returns:
            (images, scores): uint8 (N, size, size, 3) RGB, and float32 (N,) final objective
            values of the untransformed images (pre-activation, sign not applied).
        """
        count = len(units)
        signs = np.ones(count, np.float32) if signs is None else np.asarray(signs, np.float32)
        images, scores = [], []
        batch = self.settings.batch_size
        for start in range(0, count, batch):
            stop = min(start + batch, count)
            chunk = [np.asarray(values)[start:stop] for values in (units, seeds, signs)]
            padded = [np.concatenate([c, np.repeat(c[-1:], batch - len(c))]) for c in chunk]
            batch_units, batch_seeds, batch_signs = padded
            spectra = param.initial_spectra(batch_seeds, self.settings.size)
            batch_images, batch_scores = self._optimize(
                tf.constant(spectra),
                tf.constant(batch_units, tf.int32),
                tf.constant(batch_seeds, tf.int64),
                tf.constant(batch_signs, tf.float32),
            )
            images.append(batch_images.numpy()[: stop - start])
            scores.append(batch_scores.numpy()[: stop - start])
        images = np.concatenate(images)
        return np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8), np.concatenate(scores)

    def _optimize_batch(self, spectra, units, seeds, signs):
        settings, transforms = self.settings, self.settings.transforms
        first_moment = tf.zeros_like(spectra)
        second_moment = tf.zeros_like(spectra)
        for step in tf.range(1, settings.steps + 1, dtype=tf.int64):
            with tf.GradientTape() as tape:
                tape.watch(spectra)
                images = param.spectra_to_rgb(spectra, self._scale)
                scores = self.objective(transforms(images, seeds, step), units)
                total = tf.reduce_sum(scores * signs)
            gradient = tape.gradient(total, spectra)
            first_moment = _ADAM_BETA1 * first_moment + (1.0 - _ADAM_BETA1) * gradient
            second_moment = _ADAM_BETA2 * second_moment + (1.0 - _ADAM_BETA2) * gradient * gradient
            t = tf.cast(step, tf.float32)
            corrected_first = first_moment / (1.0 - _ADAM_BETA1**t)
            corrected_second = second_moment / (1.0 - _ADAM_BETA2**t)
            spectra = spectra + settings.learning_rate * corrected_first / (
                tf.sqrt(corrected_second) + _ADAM_EPSILON
            )
        images = param.spectra_to_rgb(spectra, self._scale)
        return images, self.objective(frame(images, transforms.pad), units)

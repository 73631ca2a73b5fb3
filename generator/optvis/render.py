"""The optimization loop: many units at once, one image per unit (or K, below), compiled once per shape.

A batch holds B units, each with its own image, seed and objective term; the terms are
independent, so the gradient of their sum gives each image its own ascent direction. Steps of
Adam run inside one `tf.function` call, so Python is not in the hot path, and the graph is traced
once per (batch size, spectrum size): a short last batch is padded with copies of its last unit
rather than retraced, and the step range is a tensor argument, so stopping at snapshots does not
retrace either.

A drawing runs in phases (`RenderSettings.phases`): optionally a coarse phase on a smaller
spectrum, which then grows to the full size with Adam restarted, by zero-padding
(`param.pad_spectra`: the same image, upsampled) or by tiling (`param.tile_spectra`: the same
pixels repeated on a larger canvas), then the full-size phase, and optionally a detail phase:
the spectrum zero-padded to a multiple of the size and optimized on there, so the images come out
larger, with finer detail drawn by the network (their scores read them area-averaged back to the
size). The learning-rate schedule and the random transforms are keyed by the global step, so they
do not depend on where a call stops.

Diversity (`RenderSettings.diversity` K > 1, Olah et al. 2017): each unit gets K images, the K
consecutive in the batch, each with its own seed derived from the unit's (`image_seeds`). The
objective then also returns features of each image, and a `diversity` callable measures how
alike each unit's K images are from them; the ascent subtracts diversity_weight x K x |the
unit's mean score| (held constant in the gradient) x that similarity, so the weight means the
same in every layer whatever its activations' scale. The first image of a unit (its master,
from the unit's own seed) does not move for the penalty: its features are held constant there,
so it is the image K = 1 draws, and the others move away from it and from each other. With
K = 1 the graph is the one without diversity.
"""

import math

import numpy as np
import tensorflow as tf

from . import param
from .settings import CoarseMode, LearningRateSchedule
from .transform import frame

_ADAM_BETA1, _ADAM_BETA2, _ADAM_EPSILON = 0.9, 0.999, 1e-8


def learning_rate(settings, step):
    """The learning rate at 1-based global `step` (a Python int or a float32 tensor) of `settings`.

    Constant; cosine: rate x (f + (1 - f) (1 + cos(pi (step - 1) / (steps - 1))) / 2), from the rate
    at step 1 to rate x f at the last step; step: the rate, then x sqrt(f) after half the steps,
    x f after three quarters (f = settings.lr_final_fraction).
    """
    rate, final = settings.learning_rate, settings.lr_final_fraction
    schedule, steps = settings.lr_schedule, settings.steps
    if schedule is LearningRateSchedule.CONSTANT:
        return rate + 0.0 * step
    progress = (step - 1.0) / max(steps - 1, 1)
    if schedule is LearningRateSchedule.COSINE:
        return rate * (final + (1.0 - final) * 0.5 * (1.0 + tf.cos(math.pi * progress)))
    low, lower = rate * math.sqrt(final), rate * final
    return tf.where(progress < 0.5, rate, tf.where(progress < 0.75, low, lower)) + 0.0 * step


def image_seeds(seeds, k):
    """The seeds of each unit's `k` images, unit-major (N x k,) int64: the unit's own seed, then
    k - 1 seeds derived from it (31-bit, by NumPy's SeedSequence; the same on every platform)."""
    return np.array([seed if j == 0 else int(np.random.SeedSequence([int(seed), j]).generate_state(1)[0]) & 0x7FFFFFFF
                     for seed in seeds for j in range(k)], np.int64)


class Renderer:
    """Draws images that maximize (or minimize) units of one objective.

    Args:
        objective: f(images (B, H, W, 3) in [0, 1], units (B,) int) -> (B,) scores; H = W =
            a phase's size + 2 x its transforms' pad. With settings.diversity K > 1 it returns
            ((B,) scores, features (B, ...)) instead, B a multiple of K.
        settings: a RenderSettings.
        diversity: with K > 1, f(features (B, ...), K) -> (B / K,) similarity of each unit's K
            images (e.g. `objectives.gram_similarity`); unused with K = 1.
    """

    def __init__(self, objective, settings, diversity=None):
        if settings.diversity > 1 and diversity is None:
            raise ValueError("settings.diversity > 1 needs a diversity function")
        self.objective = objective
        self.settings = settings
        self.diversity = diversity
        self._phases = settings.phases()
        sizes = {phase.size for phase in self._phases} | {settings.image_size}
        self._scales = {size: tf.constant(param.frequency_scale(size, settings.decay_power)) for size in sizes}
        self._transforms = {phase.size: phase.transforms for phase in self._phases}
        self._optimize = tf.function(self._optimize_steps)
        self._finish = tf.function(self._final_images)

    def render(self, units, seeds, signs=None):
        """Optimize one image per unit.

        Args:
            units: sequence of N unit indices (channels or classes).
            seeds: sequence of N ints; a unit's image depends only on its seed, not its batch.
            signs: optional sequence of N values, +1 to maximize (default) or -1 to minimize.
        Returns:
            (images, scores): uint8 (N x K, S, S, 3) RGB, S = settings.image_size, and float32 (N x K,)
            final objective values of the untransformed images at settings.size (pre-activation, sign
            not applied); K =
            settings.diversity images per unit, consecutive, the first from the unit's seed.
        """
        return self.render_snapshots(units, seeds, signs, at=(self.settings.steps,))[self.settings.steps]

    def render_snapshots(self, units, seeds, signs=None, at=()):
        """Like `render`, returning the images after each step count of `at` (one run, not several).

        A snapshot taken before the last phase is the image of that moment zero-padded to image_size.

        Args:
            at: step counts, each in 0..settings.steps.
        Returns:
            {step: (images uint8 (N x K, S, S, 3), scores float32 (N x K,))} for every step of `at`.
        """
        at = sorted(set(int(step) for step in at))
        if not at or at[0] < 0 or at[-1] > self.settings.steps:
            raise ValueError(f"snapshots must be in 0..{self.settings.steps} (got {at})")
        count = len(units)
        signs = np.ones(count, np.float32) if signs is None else np.asarray(signs, np.float32)
        collected = {step: ([], []) for step in at}
        batch, k = self.settings.batch_size, self.settings.diversity
        for start in range(0, count, batch):
            stop = min(start + batch, count)
            chunk = [np.asarray(values)[start:stop] for values in (units, seeds, signs)]
            padded = [np.concatenate([c, np.repeat(c[-1:], batch - len(c))]) for c in chunk]
            if k > 1:
                padded = [np.repeat(padded[0], k), image_seeds(padded[1], k), np.repeat(padded[2], k)]
            for step, (images, scores) in self._render_batch(*padded, at).items():
                collected[step][0].append(images[: (stop - start) * k])
                collected[step][1].append(scores[: (stop - start) * k])
        return {step: (_to_uint8(np.concatenate(images)), np.concatenate(scores))
                for step, (images, scores) in collected.items()}

    def _render_batch(self, units, seeds, signs, at):
        """{step: (float images (B, S, S, 3) in [0, 1], S = image_size, scores (B,))} of one full batch."""
        units, seeds, signs = (tf.constant(units, tf.int32), tf.constant(seeds, tf.int64),
                               tf.constant(signs, tf.float32))
        first_size = self._phases[0].size if self._phases else self.settings.size
        spectra = tf.constant(param.initial_spectra(seeds.numpy(), first_size))
        results, done = {}, 0
        if 0 in at:
            results[0] = self._snapshot(spectra, units)
        for phase in self._phases:
            if spectra.shape[3] != phase.size:
                spectra = self._grow(spectra, phase.size)
            moments = (tf.zeros_like(spectra), tf.zeros_like(spectra))  # Adam restarts each phase
            adam_start, end = done + 1, done + phase.steps
            for stop in [step for step in at if done < step < end] + [end]:
                spectra, *moments = self._optimize(spectra, *moments, units, seeds, signs, _step(done + 1),
                                                   _step(stop), _step(adam_start))
                done = stop
                if stop in at:
                    results[stop] = self._snapshot(spectra, units)
        return results

    def _snapshot(self, spectra, units):
        """(images, scores) as NumPy of the current spectra, zero-padded to the images' size if smaller."""
        if spectra.shape[3] != self.settings.image_size:
            spectra = self._grow(spectra, self.settings.image_size)
        images, scores = self._finish(spectra, units)
        return images.numpy(), scores.numpy()

    def _grow(self, spectra, size):
        """Spectra brought to `size`: a coarse phase's by the settings' CoarseMode (zero-padding or
        tiling), the full size's to the detail size by zero-padding."""
        tiled = self.settings.coarse_mode is CoarseMode.TILE and spectra.shape[3] == self.settings.coarse_size
        grow = param.tile_spectra if tiled else param.pad_spectra
        return tf.constant(grow(spectra.numpy(), size, self.settings.decay_power))

    def _final_images(self, spectra, units):
        """Images at `image_size`, scored as the network sees them at `size` (area-averaged down)."""
        images = param.spectra_to_rgb(spectra, self._scales[self.settings.image_size])
        outputs = self.objective(frame(view_at(images, self.settings.size), self.settings.transforms.pad), units)
        return images, outputs[0] if self.settings.diversity > 1 else outputs

    def _total(self, outputs, signs):
        """What a step ascends: the signed scores, minus the diversity penalty when K > 1."""
        k = self.settings.diversity
        if k == 1:
            return tf.reduce_sum(outputs * signs)
        scores, features = outputs
        master = tf.reshape(tf.range(tf.shape(features)[0]) % k == 0, [-1] + [1] * (features.shape.rank - 1))
        features = tf.where(master, tf.stop_gradient(features), features)
        magnitude = tf.stop_gradient(tf.reduce_mean(tf.reshape(tf.abs(scores), [-1, k]), axis=1))
        penalty = self.settings.diversity_weight * k * tf.reduce_sum(magnitude * self.diversity(features, k))
        return tf.reduce_sum(scores * signs) - penalty

    def _optimize_steps(self, spectra, first_moment, second_moment, units, seeds, signs, first, last, adam_start):
        """Adam steps `first`..`last` (global, 1-based, int64 scalars) of one phase; the phase is
        the one whose size the spectra have, and its Adam state counts from `adam_start`."""
        size = spectra.shape[3]
        scale, transforms = self._scales[size], self._transforms[size]
        for step in tf.range(first, last + 1, dtype=tf.int64):
            with tf.GradientTape() as tape:
                tape.watch(spectra)
                images = param.spectra_to_rgb(spectra, scale)
                total = self._total(self.objective(transforms(images, seeds, step), units), signs)
            gradient = tape.gradient(total, spectra)
            first_moment = _ADAM_BETA1 * first_moment + (1.0 - _ADAM_BETA1) * gradient
            second_moment = _ADAM_BETA2 * second_moment + (1.0 - _ADAM_BETA2) * gradient * gradient
            t = tf.cast(step - adam_start + 1, tf.float32)
            corrected_first = first_moment / (1.0 - _ADAM_BETA1**t)
            corrected_second = second_moment / (1.0 - _ADAM_BETA2**t)
            rate = learning_rate(self.settings, tf.cast(step, tf.float32))
            spectra = spectra + rate * corrected_first / (tf.sqrt(corrected_second) + _ADAM_EPSILON)
        return spectra, first_moment, second_moment


def view_at(images, size):
    """Images (B, S, S, 3) as the network sees them at side `size` <= S: area-averaged down (a detail
    phase's images at the scale they were drawn for); unchanged when S == size."""
    if images.shape[1] == size:
        return images
    return tf.image.resize(images, [size, size], method="area")


def _step(value):
    return tf.constant(value, tf.int64)


def _to_uint8(images):
    return np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)

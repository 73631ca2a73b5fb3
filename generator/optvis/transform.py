"""Robustness transforms, applied afresh at every optimization step.

An image that only works at one exact alignment is adversarial noise, not a feature. Each step
the image is padded, then shifted, rescaled and rotated by small random amounts (one affine
warp per image, bilinear), so the optimization must find patterns that survive such changes.
Randomness is drawn in-graph from stateless generators keyed by (unit seed, step): a unit gets
the same sequence of transforms whatever batch it is drawn in.
"""

import math
from dataclasses import dataclass

import tensorflow as tf


@dataclass(frozen=True)
class Transforms:
    """Parameters of the random transforms.

    Attributes:
        pad: constant-gray border added on each side, in pixels.
        jitter: maximum shift in pixels, each axis, uniform.
        scale_range: (min, max) uniform random scale factor.
        rotate_degrees: maximum absolute rotation, uniform.
    """

    pad: int = 8
    jitter: int = 8
    scale_range: tuple = (0.9, 1.1)
    rotate_degrees: float = 10.0

    def describe(self):
        """A list of human-readable transform names, for records."""
        low, high = self.scale_range
        return [
            f"pad({self.pad}, gray)",
            f"jitter({self.jitter})",
            f"scale({low}, {high})",
            f"rotate(+-{self.rotate_degrees})",
        ]

    def output_size(self, size):
        """Side of the transformed image for an input of side `size`."""
        return size + 2 * self.pad

    def __call__(self, images, seeds, step):
        """Transform a batch.

        Args:
            images: float32 (B, S, S, 3) in [0, 1]; B must be static.
            seeds: int64 (B,) per-image seeds.
            step: int64 scalar, the optimization step.
        Returns:
            float32 (B, S + 2 * pad, S + 2 * pad, 3) in [0, 1].
        """
        padded = tf.pad(
            images, [[0, 0], [self.pad, self.pad], [self.pad, self.pad], [0, 0]], constant_values=0.5
        )
        side = images.shape[1] + 2 * self.pad
        draws = tf.stack(
            [
                tf.random.stateless_uniform([4], seed=tf.stack([seeds[i], step]), minval=-1.0, maxval=1.0)
                for i in range(images.shape[0])
            ]
        )
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=padded,
            transforms=self._affine(draws, side),
            output_shape=tf.constant([side, side]),
            fill_value=0.5,
            interpolation="BILINEAR",
            fill_mode="REFLECT",
        )

    def _affine(self, draws, side):
        """Output-to-input affine maps (B, 8) for uniform draws (B, 4) in [-1, 1]."""
        low, high = self.scale_range
        scale = low + (draws[:, 0] + 1.0) * 0.5 * (high - low)
        angle = draws[:, 1] * self.rotate_degrees * math.pi / 180.0
        shift_x = tf.round(draws[:, 2] * self.jitter)
        shift_y = tf.round(draws[:, 3] * self.jitter)
        cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
        center = (side - 1) / 2.0
        # input = A (output - center) + center - shift, with A = rotation(-angle) / scale.
        offset_x = center - cos * center - sin * center - shift_x
        offset_y = center + sin * center - cos * center - shift_y
        zeros = tf.zeros_like(scale)
        return tf.stack([cos, sin, offset_x, -sin, cos, offset_y, zeros, zeros], axis=1)

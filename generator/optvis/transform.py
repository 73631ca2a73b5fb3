"""Robustness transforms, applied afresh at every optimization step.

An image that only works at one exact alignment is adversarial noise, not a feature. Each step
the image is padded, then shifted, rescaled and rotated by small random amounts (one affine
warp per image, bilinear), so the optimization must find patterns that survive such changes.
Randomness is drawn in-graph from stateless generators keyed by (unit seed, step): a unit gets
the same sequence of transforms whatever batch it is drawn in.
"""

import math

import tensorflow as tf

from .settings import FRAME_GRAY


def frame(images, pad):
    """Images (B, S, S, 3) in [0, 1] with a border of `pad` pixels of FRAME_GRAY on each side."""
    return tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], constant_values=FRAME_GRAY)


def apply_transforms(transforms, images, seeds, step):
    """Transform a batch: one random affine warp (shift, scale, rotation) per image and a gray frame.

    Without `transforms.mirror` the frame is added first and warped with the image; with it the
    image is warped alone (its reflection fills what the warp brings in) and framed after. With
    `transforms.view` V the image is warped alone onto V pixels: a random window of it, whose
    side is V / zoom, the zoom drawn from the scale range (a zoom below V / S shows the whole
    image), placed anywhere inside the image, then shifted by the jitter and rotated.

    Args:
        transforms: a `generator.optvis.settings.Transforms`.
        images: float32 (B, S, S, 3) in [0, 1]; B must be static.
        seeds: int64 (B,) per-image seeds.
        step: int64 scalar, the optimization step.
    Returns:
        float32 (B, N + 2 * pad, N + 2 * pad, 3) in [0, 1], N = `transforms.view` or S. Pixels the
        warp brings in from outside what it warps (the framed image, or with `mirror` or a view
        the image) are reflections of it.
    """
    draws = tf.stack(
        [
            tf.random.stateless_uniform([4], seed=tf.stack([seeds[i], step]), minval=-1.0, maxval=1.0)
            for i in range(images.shape[0])
        ]
    )
    if transforms.view:
        affine = _affine(transforms, draws, images.shape[1], transforms.view, _roam(seeds, step))
        return frame(_warp(images, affine, transforms.view), transforms.pad)
    if transforms.mirror:
        return frame(_warp(images, _affine(transforms, draws, images.shape[1])), transforms.pad)
    padded = frame(images, transforms.pad)
    return _warp(padded, _affine(transforms, draws, padded.shape[1]))


def _warp(images, affine, output_side=None):
    """Images (B, S, S, 3) warped by output-to-input affine maps (B, 8) onto (B, N, N, 3), N =
    `output_side` or S; bilinear, reflection fill."""
    side = output_side or images.shape[1]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=affine,
        output_shape=tf.constant([side, side]),
        fill_value=0.0,  # unused: REFLECT mode fills from the image
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def _roam(seeds, step):
    """Uniform draws (B, 2) in [0, 1): where a view's window sits inside the image (a second
    stream of the per-image generators, so a view leaves the other draws as they were)."""
    return tf.stack([tf.random.stateless_uniform([2], seed=tf.stack([seeds[i], step + 2**40]))
                     for i in range(seeds.shape[0])])


def _affine(transforms, draws, side, output_side=None, roam=None):
    """Output-to-input affine maps (B, 8) for uniform draws (B, 4) in [-1, 1], from an output of
    side `output_side` (default `side`) onto an input of side `side`; with `roam` (B, 2) in [0, 1)
    the output's centre moves to a window placed inside the input (`Transforms.view`)."""
    output_side = output_side or side
    low, high = transforms.scale_range
    scale = low + (draws[:, 0] + 1.0) * 0.5 * (high - low)
    angle = draws[:, 1] * transforms.rotate_degrees * math.pi / 180.0
    shift_x, shift_y = draws[:, 2] * transforms.jitter, draws[:, 3] * transforms.jitter
    if roam is not None:
        scale = tf.maximum(scale, output_side / side)  # the window is at most the whole image
        room = side - output_side / scale  # how far the window can move inside the image
        shift_x += (roam[:, 0] - 0.5) * room
        shift_y += (roam[:, 1] - 0.5) * room
    if not transforms.subpixel:
        shift_x, shift_y = tf.round(shift_x), tf.round(shift_y)
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    center, output_center = (side - 1) / 2.0, (output_side - 1) / 2.0
    # input = A (output - output_center) + center - shift, with A = rotation(-angle) / scale.
    offset_x = center - cos * output_center - sin * output_center - shift_x
    offset_y = center + sin * output_center - cos * output_center - shift_y
    zeros = tf.zeros_like(scale)
    return tf.stack([cos, sin, offset_x, -sin, cos, offset_y, zeros, zeros], axis=1)

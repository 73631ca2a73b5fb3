"""Measures of whether a layer's images are real visualizations, not noise or gray.

- flat: an image whose pixel standard deviation is below FLAT_STD (of 255) shows nothing.
- specificity: unit j's image should excite unit j more than any other unit's image of the
  same layer does (the column maximum of the activation matrix sits on the diagonal). The
  layer score is the fraction of units for which this holds, across every drawn unit of the
  layer, not only within one batch.
- robustness: the unit's activation on its image shifted by SHIFT_PIXELS (fewer on images
  under 48 px: a twelfth of the side, at least 1), or rescaled by +-10%, divided by its
  activation on the image itself (the worst of the four). Adversarial
  noise collapses under such changes; a real feature keeps most of its response.
"""

import numpy as np
import tensorflow as tf
from PIL import Image

from .optvis.transform import frame

FLAT_STD = 4.0
SHIFT_PIXELS = 4
RESCALES = (0.9, 1.1)
HALF_NYQUIST = 0.25  # cycles per pixel
SATURATED_LEVELS = 2  # a channel value within this of 0 or 255 is clipped by the sigmoid


def as_drawn(images, size):
    """uint8 images (N, S, S, 3) at the side `size` they were drawn for (S a multiple of it): each
    size x size pixel the mean of its (S / size)**2 pixels, rounded; unchanged when S == size.

    A detail phase (RenderSettings.detail_size) draws images larger than the network sees them;
    their quality is measured on this area average, the network's view and the unit page's.
    """
    images = np.asarray(images)
    ratio, remainder = divmod(images.shape[1], size)
    if remainder:
        raise ValueError(f"images of side {images.shape[1]} are not a multiple of {size}")
    if ratio == 1:
        return images
    blocks = images.reshape(len(images), size, ratio, size, ratio, 3).astype(np.float32)
    return np.round(blocks.mean(axis=(2, 4))).astype(np.uint8)


def is_flat(image):
    """True when a uint8 (H, W, 3) image is nearly uniform."""
    return float(np.asarray(image, np.float32).std()) < FLAT_STD


def high_frequency_share(image, cutoff=HALF_NYQUIST):
    """The speckle measure: share of an image's luminance energy above `cutoff` cycles per pixel.

    Luminance is 0.299 R + 0.587 G + 0.114 B of the uint8 (H, W, 3) image, mirrored to (2H, 2W)
    so that the DFT sees no jump where the image wraps around (a smooth ramp would otherwise count
    as 3% speckle), its mean removed; the energy is the squared magnitude of the 2-D DFT, and
    "above" means a radial frequency sqrt(fx**2 + fy**2) > cutoff, i.e. above half the Nyquist
    frequency by default. Returns a float in [0, 1]; 0 for a flat image; white noise gives 0.80.
    """
    luminance = np.asarray(image, np.float64) @ np.array([0.299, 0.587, 0.114])
    luminance = np.pad(luminance, [(0, luminance.shape[0]), (0, luminance.shape[1])], mode="symmetric")
    power = np.abs(np.fft.fft2(luminance - luminance.mean())) ** 2
    fy = np.fft.fftfreq(luminance.shape[0])[:, None]
    fx = np.fft.fftfreq(luminance.shape[1])[None, :]
    total = power.sum()
    return float(power[np.hypot(fx, fy) > cutoff].sum() / total) if total > 0 else 0.0


def saturated_share(image):
    """Share of the channel values of a uint8 image within SATURATED_LEVELS of 0 or 255, in [0, 1]."""
    values = np.asarray(image)
    return float(np.mean((values <= SATURATED_LEVELS) | (values >= 255 - SATURATED_LEVELS)))


def _shift(image, dy, dx):
    """Shift a uint8 (S, S, 3) image by (dy, dx) pixels, filling by reflection."""
    size = image.shape[0]
    pad = max(abs(dy), abs(dx))
    padded = np.pad(image, [(pad, pad), (pad, pad), (0, 0)], mode="reflect")
    return padded[pad - dy : pad - dy + size, pad - dx : pad - dx + size]


def _rescale(image, factor):
    """Rescale a uint8 (S, S, 3) image about its center, keeping its size (crop or reflect)."""
    size = image.shape[0]
    new_size = max(1, int(round(size * factor)))
    resized = np.asarray(Image.fromarray(image).resize((new_size, new_size), Image.BICUBIC))
    if new_size >= size:
        start = (new_size - size) // 2
        return resized[start : start + size, start : start + size]
    before = (size - new_size) // 2
    after = size - new_size - before
    return np.pad(resized, [(before, after), (before, after), (0, 0)], mode="reflect")


VARIANT_NAMES = ("shift_down", "shift_right", "rescale_0.9", "rescale_1.1")


def variants(image):
    """The robustness variants of a uint8 (S, S, 3) image: two shifts, two rescales (VARIANT_NAMES)."""
    shift = max(1, min(SHIFT_PIXELS, image.shape[0] // 12))
    return [
        _shift(image, shift, 0),
        _shift(image, 0, shift),
        *[_rescale(image, factor) for factor in RESCALES],
    ]


def _scores(scores, images, pad, batch_size=32):
    """All unit scores of uint8 images (N, S, S, 3), each framed by `pad` gray pixels: float32 (N, units)."""
    return np.concatenate(
        [
            scores(frame(tf.constant(images[start : start + batch_size], tf.float32) / 255.0, pad)).numpy()
            for start in range(0, len(images), batch_size)
        ]
    )


def variant_activations(scores, images, units, pad=0):
    """Each image's own-unit activation on each of its robustness variants.

    Args: as `layer_quality`.
    Returns:
        float32 (N, len(VARIANT_NAMES)): [j, v] is unit units[j] on variant v of image j.
    """
    images, units = np.asarray(images), np.asarray(units)
    rows = np.arange(len(units))
    return np.stack([_scores(scores, np.stack(variant), pad)[rows, units]
                     for variant in zip(*[variants(image) for image in images])], axis=1)


def layer_quality(scores, images, units, pad=0):
    """Quality of one layer's images.

    Args:
        scores: f(images (B, H, W, 3) in [0, 1]) -> (B, layer units), pre-activation scores.
        images: uint8 (N, S, S, 3), image j drawn for unit units[j].
        units: N unit indices.
        pad: gray border the network sees around each image, as when it was drawn (pixels).
    Returns:
        (per_unit, summary): per_unit a list of N dicts {"specificity" (bool),
        "specificity_margin", "robustness", "flat"}; summary {"units": N, "specificity":
        fraction of specific units, "robustness": median ratio, "flat": count of flat images}.
    """
    images = np.asarray(images)
    units = np.asarray(units)
    count = len(units)
    activations = _scores(scores, images, pad)[:, units]  # [i, j]: unit j on image i
    own = np.diag(activations)
    others = np.where(np.eye(count, dtype=bool), -np.inf, activations).max(axis=0)
    kept = variant_activations(scores, images, units, pad).min(axis=1)
    per_unit = []
    for j in range(count):
        per_unit.append(
            {
                "specificity": bool(own[j] > others[j]),
                "specificity_margin": round(float(own[j] - others[j]), 4) if count > 1 else None,
                "robustness": round(float(kept[j] / own[j]), 4) if own[j] > 0 else 0.0,
                "flat": is_flat(images[j]),
            }
        )
    summary = {
        "units": count,
        "specificity": round(float(np.mean([u["specificity"] for u in per_unit])), 4),
        "robustness": round(float(np.median([u["robustness"] for u in per_unit])), 4),
        "flat": int(sum(u["flat"] for u in per_unit)),
    }
    return per_unit, summary

"""Heatmaps: scale a saliency or activation map to [0, 1] and draw it over its photo.

Colormap: *inferno*, perceptually uniform (equal steps in value look like equal steps in
lightness, so the picture does not invent edges), monotonic in lightness (it survives grayscale
printing) and readable with the common colour-vision deficiencies. It is embedded as 33 control
points sampled evenly from the 256-entry table that Nathaniel J. Smith and Stefan van der Walt
released under CC0 (as shipped in matplotlib); linear interpolation between them stays within
1.5/255 of the full table. Low values are near-black purple, high values pale yellow.

Overlay: the photo is turned to grayscale (so every colour in the overlay belongs to the map)
and blended with the colorized map at OVERLAY_ALPHA.
"""

import numpy as np
from PIL import Image

COLORMAP = "inferno"
OVERLAY_ALPHA = 0.6
NORMALIZATION_PERCENTILE = 99.5

# inferno at t = i / 32, i = 0..32, as sRGB bytes.
_INFERNO_POINTS = np.array(
    [
        [0, 0, 4], [4, 3, 18], [11, 7, 36], [21, 11, 55], [33, 12, 74], [47, 10, 91],
        [61, 9, 101], [74, 12, 107], [87, 16, 110], [100, 21, 110], [113, 25, 110],
        [125, 30, 109], [138, 34, 106], [151, 39, 102], [163, 44, 97], [176, 49, 91],
        [188, 55, 84], [198, 61, 77], [208, 69, 69], [218, 78, 60], [227, 89, 51],
        [235, 100, 41], [241, 113, 31], [246, 126, 20], [249, 140, 10], [251, 155, 6],
        [252, 170, 15], [251, 186, 31], [249, 201, 50], [245, 217, 73], [242, 232, 101],
        [243, 245, 134], [252, 255, 164],
    ],
    dtype=np.float32,
)
_INFERNO_LUT = np.stack(
    [
        np.interp(np.linspace(0.0, 1.0, 256), np.linspace(0.0, 1.0, len(_INFERNO_POINTS)), channel)
        for channel in _INFERNO_POINTS.T
    ],
    axis=-1,
)

OVERLAY_SETTINGS = {
    "colormap": COLORMAP,
    "alpha": OVERLAY_ALPHA,
    "photo": "grayscale",
    "normalization": f"divided by the map's {NORMALIZATION_PERCENTILE}th percentile, clipped to [0, 1]",
}


def normalize_map(saliency):
    """Scale a non-negative map to [0, 1] for display.

    Args:
        saliency: float array (H, W), values >= 0 (absolute gradients, ReLU'd CAMs, activations).
    Returns:
        float32 (H, W) in [0, 1]: the map divided by its NORMALIZATION_PERCENTILE-th percentile
        (a few extreme gradient pixels would otherwise wash out the rest) and clipped; an
        all-zero map stays all zero.
    """
    saliency = np.asarray(saliency, dtype=np.float32)
    high = float(np.percentile(saliency, NORMALIZATION_PERCENTILE))
    if high <= 0.0:
        high = float(saliency.max())
    if high <= 0.0:
        return np.zeros_like(saliency)
    return np.clip(saliency / high, 0.0, 1.0)


def resize_map(saliency, height, width):
    """Bilinearly resize a float map (h, w) to (height, width), pixel centres aligned."""
    image = Image.fromarray(np.asarray(saliency, dtype=np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)


def colorize(unit_map):
    """Map values in [0, 1] (H, W) to inferno sRGB colours: uint8 (H, W, 3)."""
    levels = np.clip(np.rint(np.asarray(unit_map, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
    return np.rint(_INFERNO_LUT[levels]).astype(np.uint8)


def overlay(photo, saliency):
    """Draw a map over its photo.

    Args:
        photo: uint8 (H, W, 3) RGB, the image the model saw.
        saliency: float (h, w) >= 0, any scale; resized to (H, W) when its size differs.
    Returns:
        uint8 (H, W, 3): (1 - OVERLAY_ALPHA) * grayscale photo + OVERLAY_ALPHA * inferno(map),
        with the map scaled by `normalize_map`.
    """
    photo = np.asarray(photo)
    height, width = photo.shape[:2]
    saliency = np.asarray(saliency, dtype=np.float32)
    if saliency.shape != (height, width):
        saliency = resize_map(saliency, height, width)
    gray = np.asarray(Image.fromarray(photo, "RGB").convert("L"), dtype=np.float32)[..., None]
    colours = colorize(normalize_map(saliency)).astype(np.float32)
    blended = (1.0 - OVERLAY_ALPHA) * gray + OVERLAY_ALPHA * colours
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)

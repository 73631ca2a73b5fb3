"""The saliency methods by name, their titles and their settings, without TensorFlow.

`build.py` checks `--methods` against this table before importing TensorFlow, and the site names
the methods with its titles. Each name maps to a function in `generator.attribution`
(`SALIENCY_METHODS`); a new method is one row here plus one function there.
"""

import math
from dataclasses import asdict, dataclass

from .errors import UserError

# name -> title as the pages show it, in the order pages and records list the methods.
METHOD_TITLES = {
    "vanilla": "Vanilla gradient",
    "smoothgrad": "SmoothGrad",
    "guided_backprop": "Guided backpropagation",
    "gradcam": "Grad-CAM",
    "gradcam_plus_plus": "Grad-CAM++",
    "scorecam": "Score-CAM",
    "integrated_gradients": "Integrated gradients",
}
METHOD_NAMES = tuple(METHOD_TITLES)


def check_methods(names):
    """Raise UserError (one line) unless every name in `names` is a saliency method."""
    unknown = sorted(set(names) - set(METHOD_NAMES))
    if unknown:
        raise UserError(f"unknown saliency method(s) {', '.join(unknown)}; choose from {', '.join(METHOD_NAMES)}")


def parse_methods(text):
    """A `--methods` value ("vanilla,gradcam"; None = all) -> tuple of method names, checked."""
    if text is None:
        return METHOD_NAMES
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",")))
    if "" in names:
        raise UserError(f"--methods {text!r} has an empty name; give a comma list such as vanilla,gradcam")
    check_methods(names)
    return names


@dataclass(frozen=True)
class AttributionSettings:
    """Knobs of the costly methods; all of them go into the example records.

    Attributes:
        smoothgrad_samples: noisy copies of the image averaged by SmoothGrad, >= 1.
        smoothgrad_noise: noise standard deviation as a fraction of the image's value range
            (max - min over all pixels and channels), finite, >= 0; the paper recommends 0.10-0.20.
        integrated_gradients_steps: points on the straight path from black to the image
            (midpoint Riemann sum), >= 1.
        scorecam_max_channels: Score-CAM masks the image with at most this many CAM-layer
            channels, those whose activation varies most over the image ("Faster Score-CAM"), >= 1.
        batch_size: images per forward/backward pass, >= 1; 9 puts the image and its 8 SmoothGrad
            samples in one pass (on this 2-core CPU, measured 0.6 s per VGG16 sample batched
            against 0.8 s one at a time).

    Defaults are sized for the CPU preview: about 12 s per photo for all seven methods on a
    VGG16 target at 224 px (bench/bench_attribution.py).
    """

    smoothgrad_samples: int = 8
    smoothgrad_noise: float = 0.15
    integrated_gradients_steps: int = 16
    scorecam_max_channels: int = 16
    batch_size: int = 9

    def __post_init__(self):
        counts = ("smoothgrad_samples", "integrated_gradients_steps", "scorecam_max_channels", "batch_size")
        for name in counts:
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1 (got {getattr(self, name)})")
        if not (math.isfinite(self.smoothgrad_noise) and self.smoothgrad_noise >= 0):
            raise UserError(f"smoothgrad_noise must be a finite number >= 0 (got {self.smoothgrad_noise})")

    def as_record(self):
        """The settings as a JSON-ready dict."""
        return asdict(self)

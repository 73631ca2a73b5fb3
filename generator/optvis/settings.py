"""What the drawing engine is asked to do, as plain data (no TensorFlow needed to read it).

`RenderSettings` and `Transforms` describe one drawing and go into the unit records; `Readout`
says where an objective reads a conv layer. The engine modules (`param`, `transform`,
`objectives`, `render`) consume them.
"""

from dataclasses import asdict, dataclass, field
from enum import Enum

PARAMETERIZATION = "fft_decorrelated"  # generator.optvis.param
FRAME_GRAY = 0.5  # the border around every image the network sees, in [0, 1]


class Readout(Enum):
    """Where a conv layer's unit is read: its channel mean, or the central position only."""

    CHANNEL_MEAN = "mean"
    CENTER = "center"


@dataclass(frozen=True)
class Transforms:
    """Parameters of the random robustness transforms (applied by `generator.optvis.transform`).

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
        """Transform a batch in-graph: see `generator.optvis.transform.apply_transforms`."""
        from .transform import apply_transforms

        return apply_transforms(self, images, seeds, step)


@dataclass(frozen=True)
class RenderSettings:
    """How to draw.

    Attributes:
        size: side of the optimized image, in pixels.
        steps: Adam steps per image.
        learning_rate: Adam learning rate on the spectrum.
        batch_size: units optimized together.
        decay_power: spectrum amplitude falls as 1 / f**decay_power.
        transforms: the random robustness transforms.
    """

    size: int
    steps: int
    learning_rate: float = 0.05
    batch_size: int = 16
    decay_power: float = 1.0
    transforms: Transforms = field(default_factory=Transforms)

    def describe(self):
        """JSON-ready description for unit records: everything that changes the image.

        The batch size is left out: a unit's image does not depend on its batch.
        """
        settings = asdict(self)
        del settings["batch_size"]
        settings["transforms"] = self.transforms.describe()
        settings["parameterization"] = PARAMETERIZATION
        return settings

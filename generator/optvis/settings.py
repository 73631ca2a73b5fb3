"""What the drawing engine is asked to do, as plain data (no TensorFlow needed to read it).

`RenderSettings` and `Transforms` describe one drawing and go into the unit records; `Readout`
says where an objective reads a conv layer. The engine modules (`param`, `transform`,
`objectives`, `render`) consume them.
"""

from dataclasses import asdict, dataclass, field, replace
from enum import Enum

PARAMETERIZATION = "fft_decorrelated"  # generator.optvis.param
FRAME_GRAY = 0.5  # the border around every image the network sees, in [0, 1]
MAX_DIVERSITY = 16  # images per unit (RenderSettings.diversity)


class LearningRateSchedule(Enum):
    """How the Adam learning rate moves over the steps of a drawing (the global step, all phases)."""

    CONSTANT = "constant"
    COSINE = "cosine"  # half a cosine from the rate down to rate x final_fraction at the last step
    STEP = "step"  # the rate for the first half, x sqrt(final_fraction) to 3/4, x final_fraction after


class CoarseMode(Enum):
    """How a coarse phase's spectrum grows to the full size (generator.optvis.param)."""

    UPSAMPLE = "upsample"  # zero-pad: the same image at a finer resolution (features grow with it)
    TILE = "tile"  # a C-pixel canvas repeated n x n: the same pixel scale on a larger canvas


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
        subpixel: shifts are drawn as real numbers (bilinear) instead of whole pixels; a random
            sub-pixel shift blurs what the network sees by up to a pixel, which damps the
            finest, pixel-period patterns (dot grids, stripes) that whole-pixel shifts keep.
        mirror: warp the image alone, so that what a shift or a shrink brings in at an edge is
            the image's own reflection, and frame it after (the frame stays still). Off, the
            framed image is warped, so gray from the frame comes in (and the frame moves).
            The robustness measure (generator.quality) shifts and rescales with reflection: only
            mirror-filled drawing trains for what it tests.
        view: 0, or the side of a random view (for a network with a fixed input size): each step
            the network sees a random square window of the image, its side `view` / zoom for a
            random zoom from `scale_range` (at most the image's side), placed at random inside
            the image, then shifted by the jitter (in the image's pixels) and rotated, warped onto
            `view` pixels and framed. What the jitter or the rotation brings in from outside is
            the image's reflection: a view warps the image alone (the mirror fill, whatever
            `mirror` says).
    """

    pad: int = 8
    jitter: int = 8
    scale_range: tuple = (0.9, 1.1)
    rotate_degrees: float = 10.0
    subpixel: bool = False
    mirror: bool = False
    view: int = 0

    def describe(self):
        """A list of human-readable transform names, for records (sub-pixel shifts and the mirror
        fill named only when on, so records drawn before them stay current)."""
        low, high = self.scale_range
        names = [
            f"pad({self.pad}, gray)",
            f"jitter({self.jitter})",
            f"scale({low}, {high})",
            f"rotate(+-{self.rotate_degrees})",
        ]
        return (names + (["subpixel_jitter"] if self.subpixel else []) + (["mirror_fill"] if self.mirror else [])
                + ([f"random_view({self.view})"] if self.view else []))

    def scaled(self, ratio):
        """These transforms for an image `ratio` times the size (a coarse phase): pad and jitter in
        pixels shrink with the image (pad at least 1, jitter at least 1 when it was on)."""
        return replace(self, pad=max(1, round(self.pad * ratio)),
                       jitter=max(min(self.jitter, 1), round(self.jitter * ratio)))

    def output_size(self, size):
        """Side of the transformed image for an input of side `size`."""
        return (self.view or size) + 2 * self.pad

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
        transforms: the random robustness transforms (at `size`; a coarse phase scales them).
        coarse_size: 0 (off), or the side of a first, coarse phase: its spectrum is optimized at
            this size, then zero-padded to `size` (the band-limited upsampling of the coarse
            image) and optimized on. Even, below `size`.
        coarse_steps: how many of the `steps` run at `coarse_size` (0 with coarse_size 0).
        coarse_mode: a CoarseMode. UPSAMPLE (the transforms' pad and jitter shrink with the
            image) or TILE (`size` a multiple of `coarse_size`; the transforms stay in pixels).
        lr_schedule: a LearningRateSchedule, over the global step.
        lr_final_fraction: the rate at the end of a decaying schedule, as a fraction of
            `learning_rate`, in (0, 1].
        diversity: images per unit, 1..MAX_DIVERSITY: with K > 1 each unit gets K images,
            optimized together, consecutive in the batch, pushed apart by a diversity penalty
            (`generator.optvis.render`); 1 draws one image per unit as before.
        diversity_weight: the penalty's weight relative to the objective: the ascent subtracts
            weight x K x |the unit's mean score| x the mean pairwise similarity of its K images.
        detail_size: 0 (off), or the side of a last, detail phase, a multiple of `size`: the
            spectrum is zero-padded from `size` to this side (the same image on a finer grid) and
            optimized on at that side (`detail_transforms`), so the images come out `detail_size`
            pixels wide with detail the network drew, not interpolated. Their scores, and the
            quality measures, read them area-averaged back to `size` (the scale they were drawn for).
        detail_steps: how many of the `steps` run at `detail_size` (0 with detail_size 0).
        detail_view: the detail phase shows the network a random `size`-pixel view of the image
            (`Transforms.view`) instead of the whole image: for a network whose input size is
            fixed (the class head). The views reach from the whole image, area-averaged as the
            scores read it, to windows at the detail side's own scale.
    """

    size: int
    steps: int
    learning_rate: float = 0.05
    batch_size: int = 16
    decay_power: float = 1.0
    transforms: Transforms = field(default_factory=Transforms)
    coarse_size: int = 0
    coarse_steps: int = 0
    coarse_mode: CoarseMode = CoarseMode.UPSAMPLE
    lr_schedule: LearningRateSchedule = LearningRateSchedule.CONSTANT
    lr_final_fraction: float = 0.1
    diversity: int = 1
    diversity_weight: float = 0.0
    detail_size: int = 0
    detail_steps: int = 0
    detail_view: bool = False

    def __post_init__(self):
        if not 1 <= self.diversity <= MAX_DIVERSITY:
            raise ValueError(f"diversity must be in 1..{MAX_DIVERSITY} (got {self.diversity})")
        if self.diversity_weight < 0:
            raise ValueError(f"diversity_weight must be at least 0 (got {self.diversity_weight})")
        if not isinstance(self.lr_schedule, LearningRateSchedule):
            raise TypeError(f"lr_schedule must be a LearningRateSchedule, not {self.lr_schedule!r}")
        if not 0 < self.lr_final_fraction <= 1:
            raise ValueError(f"lr_final_fraction must be in (0, 1] (got {self.lr_final_fraction})")
        if self.coarse_size or self.coarse_steps:
            if not (self.coarse_size > 0 and self.coarse_size % 2 == 0 and self.coarse_size < self.size):
                raise ValueError(f"coarse_size must be even and below size {self.size} (got {self.coarse_size})")
            if not 0 < self.coarse_steps <= self.steps:
                raise ValueError(f"coarse_steps must be in 1..steps ({self.steps}) (got {self.coarse_steps})")
            if self.coarse_mode is CoarseMode.TILE and self.size % self.coarse_size:
                raise ValueError(f"tiling needs size {self.size} to be a multiple of coarse_size {self.coarse_size}")
        if self.detail_size or self.detail_steps:
            if not (self.detail_size > self.size and self.size % 2 == 0 and self.detail_size % self.size == 0):
                raise ValueError(f"detail_size must be a multiple of an even size {self.size} (got {self.detail_size})")
            available = self.steps - (self.coarse_steps if self.coarse_size else 0)
            if not 0 < self.detail_steps <= available:
                raise ValueError(f"detail_steps must be in 1..{available} (got {self.detail_steps})")
        if self.detail_view and not self.detail_size:
            raise ValueError("detail_view needs a detail phase (detail_size)")

    @property
    def image_size(self):
        """Side of the images drawn: `detail_size` with a detail phase, `size` otherwise."""
        return self.detail_size or self.size

    def phases(self):
        """The drawing's phases in order: a list of `Phase`, each with its size, steps and transforms.

        Without coarse-to-fine this is one phase at `size`. Phases of 0 steps are left out.
        """
        phases = []
        if self.coarse_size:
            tiled = self.coarse_mode is CoarseMode.TILE
            phases.append(Phase(self.coarse_size, self.coarse_steps,
                                self.transforms if tiled else self.transforms.scaled(self.coarse_size / self.size)))
        fine_steps = self.steps - (self.coarse_steps if self.coarse_size else 0) - self.detail_steps
        if fine_steps > 0 or not phases:
            phases.append(Phase(self.size, fine_steps, self.transforms))
        if self.detail_size:
            phases.append(Phase(self.detail_size, self.detail_steps, self.detail_transforms()))
        return [phase for phase in phases if phase.steps > 0]

    def detail_transforms(self):
        """The detail phase's transforms: the random scale reaches down to `size`, so the network
        sees the grown features at the scale they were drawn at as well as at their new size, where
        it draws finer detail into them. Pad and jitter grow with the image; with `detail_view` they
        stay (the jitter in the grown image's pixels: half as many in a zoomed-out view), and the
        network sees a random `size`-pixel view of it."""
        ratio = self.detail_size / self.size
        low, high = self.transforms.scale_range
        if self.detail_view:
            return replace(self.transforms, view=self.size, scale_range=(low / ratio, high))
        return replace(self.transforms.scaled(ratio), scale_range=(low / ratio, high))

    def describe(self):
        """JSON-ready description for unit records: everything that changes the image.

        The batch size is left out: a unit's image does not depend on its batch. The options of
        this round (coarse-to-fine, learning-rate schedule, diversity) are named only when they are
        on, so records drawn before them stay current.
        """
        settings = asdict(self)
        for name in ("batch_size", "coarse_size", "coarse_steps", "coarse_mode", "lr_schedule", "lr_final_fraction",
                     "diversity", "diversity_weight", "detail_size", "detail_steps", "detail_view"):
            del settings[name]
        settings["transforms"] = self.transforms.describe()
        settings["parameterization"] = PARAMETERIZATION
        if self.coarse_size:
            settings["coarse_to_fine"] = {"size": self.coarse_size, "steps": self.coarse_steps}
            if self.coarse_mode is not CoarseMode.UPSAMPLE:  # records of upsampling runs stay as they were
                settings["coarse_to_fine"]["mode"] = self.coarse_mode.value
        if self.lr_schedule is not LearningRateSchedule.CONSTANT:
            settings["lr_schedule"] = {"name": self.lr_schedule.value, "final_fraction": self.lr_final_fraction}
        if self.diversity > 1:
            settings["diversity"] = {"images": self.diversity, "weight": self.diversity_weight}
        if self.detail_size:
            settings["detail"] = {"size": self.detail_size, "steps": self.detail_steps}
            if self.detail_view:
                settings["detail"]["view"] = self.size
        return settings


@dataclass(frozen=True)
class Phase:
    """One phase of a drawing: `steps` Adam steps on a spectrum of side `size`, with `transforms`."""

    size: int
    steps: int
    transforms: Transforms

    @property
    def input_size(self):
        """Side of what the network sees in this phase."""
        return self.transforms.output_size(self.size)

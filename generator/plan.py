"""How each layer is drawn: the typed drawing options and the per-layer plans they give.

`DrawOptions` holds every choice a user makes about drawing (the `--quality` defaults and the
overrides), validated when it is made, before TensorFlow is imported. `plan_layer` turns it into
a `LayerPlan` for one layer: render settings (image size matched to the receptive field, steps,
transforms) and the objective, whose record settings decide whether a drawn unit is still
current (resume). Nothing here imports TensorFlow.
"""

import math
from dataclasses import dataclass, replace
from enum import Enum

from .architecture import CLASS_LAYER, CONV_LAYER_BY_NAME, CONV_LAYERS
from .errors import UserError
from .optvis.settings import MAX_DIVERSITY, CoarseMode, LearningRateSchedule, Readout, RenderSettings, Transforms


class Quality(Enum):
    """The drawing defaults: a CPU-sized preview, or the full atlas."""

    PREVIEW = "preview"
    FULL = "full"


class Precision(Enum):
    """The network's compute precision while drawing (quality is always measured in float32)."""

    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"


class Objective(Enum):
    """What a unit's image maximizes, as the records name it."""

    CHANNEL = "channel_preact"  # a conv channel's mean pre-ReLU activation
    NEURON = "neuron_preact"  # a conv channel at the central position only
    CLASS_LOGIT = "class_logit"  # a class's pre-softmax logit

    @property
    def readout(self):
        """Where `generator.optvis.objectives.layer_scores` reads the layer."""
        return Readout.CENTER if self is Objective.NEURON else Readout.CHANNEL_MEAN


# Image side per block, matched to the receptive field: a channel image holds a few copies of
# the unit's feature. Classes see the full 224 px input of the dense head.
FULL_SIZES = {1: 48, 2: 64, 3: 96, 4: 128, 5: 160}
PREVIEW_SIZES = {1: 48, 2: 48, 3: 64, 4: 80, 5: 80}
STEPS = {Quality.FULL: 512, Quality.PREVIEW: 128}
BATCH_SIZES = {1: 64, 2: 32, 3: 16, 4: 8, 5: 8}
CLASS_INPUT_SIZE = 224
CLASS_BATCH_SIZE = 8
# The first conv layer is linear in the pixels: its channel mean is maximized by a flat colour,
# so it is drawn as a neuron (the central window), which recovers the kernel's pattern. Its
# image holds a few receptive fields around the centre.
NEURON_LAYER = CONV_LAYERS[0]
NEURON_SIZE = 11

# The `--preview` selection: every layer, a stable sample of a few units each.
PREVIEW_LAYERS = "block1..block5"
PREVIEW_PER_LAYER = 3



@dataclass(frozen=True)
class Schedule:
    """How a filter layer's drawing spends its steps: an engine option, not (yet) a default.

    Attributes:
        name: how `--schedule` and docs/QUALITY.md call it.
        steps: total Adam steps, coarse phase included.
        coarse_fraction: 0, or the share of `steps` run on the coarse spectrum.
        coarse_ratio: coarse side / full side (the coarse side is rounded to an even number).
        lr_schedule: a LearningRateSchedule over all steps.
        subpixel: sub-pixel jitter (Transforms.subpixel).
        decay_power: the spectrum's 1 / f**decay_power.
        scale_range: None (the layer's), or the (min, max) random scale of the transforms.
        coarse_mode: how the coarse spectrum grows (CoarseMode: upsample or tile).
        mirror: warp the image alone, filling by its reflection (Transforms.mirror).
        detail_ratio: 0, or the detail phase's side / full side (RenderSettings.detail_size).
        detail_steps: Adam steps of the detail phase, after `steps` (at most `steps`: a short
            drawing, e.g. --steps 2, gets as short a detail phase).
        learning_rate: None (the layer's), or the Adam learning rate of every phase.
    """

    name: str
    steps: int
    coarse_fraction: float = 0.0
    coarse_ratio: float = 0.5
    lr_schedule: LearningRateSchedule = LearningRateSchedule.CONSTANT
    subpixel: bool = False
    decay_power: float = 1.0
    scale_range: tuple | None = None
    coarse_mode: CoarseMode = CoarseMode.UPSAMPLE
    mirror: bool = False
    detail_ratio: int = 0
    detail_steps: int = 0
    learning_rate: float | None = None

    def apply(self, settings):
        """`settings` (a layer's RenderSettings; the classes' only for a schedule without a coarse phase) drawn on
        this schedule."""
        coarse_size = 2 * round(settings.size * self.coarse_ratio / 2) if self.coarse_fraction else 0
        if self.coarse_mode is CoarseMode.TILE and coarse_size and settings.size % coarse_size:
            coarse_size = settings.size // round(1 / self.coarse_ratio)
        detail_steps = min(self.detail_steps, self.steps) if self.detail_ratio else 0  # never longer than the drawing
        return replace(settings, steps=self.steps + detail_steps, coarse_size=coarse_size, coarse_mode=self.coarse_mode,
                       coarse_steps=round(self.steps * self.coarse_fraction) if coarse_size else 0,
                       detail_size=settings.size * self.detail_ratio if detail_steps else 0,
                       detail_steps=detail_steps,
                       lr_schedule=self.lr_schedule, decay_power=self.decay_power,
                       learning_rate=self.learning_rate or settings.learning_rate,
                       transforms=replace(settings.transforms, subpixel=self.subpixel, mirror=self.mirror,
                                          scale_range=self.scale_range or settings.transforms.scale_range))


_COSINE = LearningRateSchedule.COSINE
# Candidate schedules of the quality study (bench/quality_study.py, docs/QUALITY.md). Cost relative
# to 512 full-size steps, with a half-size coarse phase at a quarter of the pixels: c2f-256 0.22,
# c2f-512 0.44, cos-192 0.375; "-sub" adds sub-pixel jitter, "-const" keeps the rate constant, "-wide" draws the random scale from
# 0.8-1.25 (the robustness measure rescales by +-10%, the edge of the default 0.9-1.1), "-d15"
# makes the spectrum fall as 1 / f**1.5 (smoother images). "tile-" grows a half-side canvas by
# tiling it 2 x 2 instead of upsampling it, so features keep the scale the network saw. "-mirror"
# warps the image alone and lets its reflection fill the edges (Transforms.mirror), as the
# robustness measure does, instead of letting the gray frame in.
def _with_detail(schedule, name, steps=None, detail_steps=16):
    """`schedule` (at `steps` instead of its own, if given) plus a detail phase of `detail_steps`
    steps at twice the side: masters worth zooming into."""
    return replace(schedule, name=name, steps=steps or schedule.steps, detail_ratio=2, detail_steps=detail_steps)


_PLAIN = Schedule("plain", 512)  # one full-size phase at a constant rate: the drawing before this round
_C2F_MIRROR = Schedule("c2f-256-mirror", 256, coarse_fraction=0.75, scale_range=(0.8, 1.25), mirror=True)
_MIRROR = Schedule("mirror-256", 256, scale_range=(0.8, 1.25), mirror=True)  # one phase: classes can use it
SCHEDULES = {
    schedule.name: schedule
    for schedule in (
        _PLAIN,
        Schedule("c2f-256", 256, coarse_fraction=0.75, lr_schedule=_COSINE),
        Schedule("c2f-256-sub", 256, coarse_fraction=0.75, lr_schedule=_COSINE, subpixel=True),
        Schedule("c2f-512", 512, coarse_fraction=0.75, lr_schedule=_COSINE),
        Schedule("cos-192", 192, lr_schedule=_COSINE),
        Schedule("c2f-256-const", 256, coarse_fraction=0.75),
        Schedule("c2f-256-wide", 256, coarse_fraction=0.75, lr_schedule=_COSINE, scale_range=(0.8, 1.25)),
        Schedule("c2f-256-const-wide", 256, coarse_fraction=0.75, scale_range=(0.8, 1.25)),
        Schedule("c2f-256-d15", 256, coarse_fraction=0.75, lr_schedule=_COSINE, decay_power=1.5),
        Schedule("tile-256", 256, coarse_fraction=0.75, lr_schedule=_COSINE, coarse_mode=CoarseMode.TILE),
        _C2F_MIRROR,
        _MIRROR,
        _with_detail(_C2F_MIRROR, "c2f-256-mirror-detail"),
        _with_detail(_C2F_MIRROR, "c2f-256-mirror-detail12", detail_steps=12),  # block 5's: for 3x tf-keras-vis
        _with_detail(_PLAIN, "plain-detail"),
        # The preview's, at the cost of its former 128 plain steps (0.94 and 1.5 of it by FLOPs):
        _with_detail(_C2F_MIRROR, "c2f-128-mirror-detail", steps=128),
        _with_detail(_PLAIN, "plain-128-detail", steps=128),
        # The classes': one phase (their head's input is fixed) then a detail phase in which the
        # head sees random views of the image at twice the side (RenderSettings.detail_view).
        _with_detail(_MIRROR, "mirror-256-detail", detail_steps=32),
        _with_detail(replace(_MIRROR, learning_rate=0.08), "mirror-80-lr08-detail", steps=80),
    )
}


# The full atlas draws the filters of blocks 3-5 on FULL_SCHEDULE unless another is asked for:
# c2f-256-mirror at 0.22 of the FLOPs of 512 plain steps is as specific (1.0), never flat, more
# robust and has a third of the speckle on block3_conv1, block4_conv2 and block5_conv3; its 16
# detail steps at twice the side (0.35 of the FLOPs in all) give masters twice as wide as the unit
# pages show them, at about the same robustness (docs/QUALITY.md). Blocks 1-2 lost specificity
# with a coarse phase, so they keep their 512 plain steps and add the same detail phase (x1.12).
# Block 5 takes 12 detail steps (0.32 of the FLOPs): with 16 a whole block5_conv1 or block5_conv2
# cost 1/2.9 of tf-keras-vis' defaults, under the 3x of issue 10; 12 keep the objective and
# robustness and two thirds of the new detail (docs/QUALITY.md). Schedule "plain" draws as before.
FULL_SCHEDULE = "c2f-256-mirror-detail"
FULL_SCHEDULES = {1: "plain-detail", 2: "plain-detail", 3: FULL_SCHEDULE, 4: FULL_SCHEDULE,
                  5: "c2f-256-mirror-detail12"}
# The preview draws the same way in fewer steps, so its masters too are twice as wide as shown.
PREVIEW_SCHEDULES = {1: "plain-128-detail", 2: "plain-128-detail", 3: "c2f-128-mirror-detail",
                     4: "c2f-128-mirror-detail", 5: "c2f-128-mirror-detail"}
# The classes' head takes a fixed 224 px input, so they cannot go coarse and every step costs a
# full pass: they draw on one phase of 80 steps at 1.6x the rate (the transforms of FULL_SCHEDULE),
# then 16 detail steps at twice the side, seen through random views; 96 steps in all, 0.19 of
# "plain", for 3x tf-keras-vis' speed. On a stand-in head this keeps specificity, robustness and the
# detail of 256 + 32 steps at 0.67 of the objective, with less speckle (docs/QUALITY.md). The preview
# draws them the same way. A schedule asked for with --schedule applies to them only when it has no
# coarse phase.
CLASS_SCHEDULE = "mirror-80-lr08-detail"


def find_schedule(name):
    """The Schedule called `name`; a UserError naming the choices otherwise."""
    if name not in SCHEDULES:
        raise UserError(f"unknown schedule {name!r}; choose from {', '.join(SCHEDULES)}")
    return SCHEDULES[name]


# Documented ranges of the overrides (README "Drawing").
STEPS_RANGE = (1, 100_000)
SIZE_RANGE = (8, 1024)
LEARNING_RATE_MAX = 10.0
BATCH_RANGE = (1, 1024)
SEED_RANGE = (0, 2**31 - 1)
DIVERSITY_RANGE = (1, MAX_DIVERSITY)

# --diversity K > 1: the penalty is this x K x |the unit's mean score| x the mean Gram cosine
# similarity of its K images at the conv layer below the unit's (`diversity_layer`), and moves
# all but the master (generator.optvis.render); calibrated in docs/QUALITY.md ("Diversity").
DIVERSITY_WEIGHT = 1.0


def _check_range(name, value, low, high):
    if value is not None and not low <= value <= high:
        raise UserError(f"--{name} must be at least {low:,} and at most {high:,} (got {value})")


@dataclass(frozen=True)
class DrawOptions:
    """Every drawing choice of a run; None keeps the per-layer default.

    Attributes:
        quality: the defaults, Quality.FULL or Quality.PREVIEW.
        size: image side in pixels (filters only), 8..1024.
        steps: optimization steps, 1..100,000.
        learning_rate: Adam learning rate, finite, in (0, 10].
        batch_size: units drawn together, 1..1,024 (does not change the images).
        seed: run-wide seed mixed into every unit's seed, 0..2**31-1.
        precision: Precision.FLOAT32 or Precision.BFLOAT16.
        negative: also draw the image that minimizes each unit.
        resume: skip units already complete with the same settings (False: --force).
        schedule: None (the per-layer default: FULL_SCHEDULES or PREVIEW_SCHEDULES by block for
            the filters, CLASS_SCHEDULE for the classes),
            or the name of one of SCHEDULES, applied to filter layers (block1_conv1 keeps its plan)
            and, when it has no coarse phase, to the classes; --steps overrides its total steps
            (before a detail phase, which runs at most as many), keeping its coarse share.
        diversity: images per unit, 1..16 (K > 1: K images pushed apart; 1: one image, as before).
    """

    quality: Quality = Quality.FULL
    size: int | None = None
    steps: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    seed: int = 0
    precision: Precision = Precision.FLOAT32
    negative: bool = False
    resume: bool = True
    schedule: str | None = None
    diversity: int = 1

    def __post_init__(self):
        _check_range("diversity", self.diversity, *DIVERSITY_RANGE)
        if self.schedule is not None:
            find_schedule(self.schedule)
        _check_range("size", self.size, *SIZE_RANGE)
        _check_range("steps", self.steps, *STEPS_RANGE)
        _check_range("batch-size", self.batch_size, *BATCH_RANGE)
        _check_range("seed", self.seed, *SEED_RANGE)
        rate = self.learning_rate
        if rate is not None and not (math.isfinite(rate) and 0 < rate <= LEARNING_RATE_MAX):
            raise UserError(f"--learning-rate must be a number above 0 and at most {LEARNING_RATE_MAX:g} "
                            f"(got {rate})")


def kept_options(options):
    """Other options whose drawings a run under `options` keeps as complete: a preview keeps units
    drawn at the full defaults (with the same overrides), the better drawing of the same unit, so
    a preview over a partly full atlas draws around those units instead of replacing them."""
    return [replace(options, quality=Quality.FULL)] if options.quality is Quality.PREVIEW else []


@dataclass(frozen=True)
class LayerPlan:
    """How one layer is drawn: render settings plus what the objective reads (and, with several
    images per unit, the layer whose features tell them apart)."""

    layer: str
    settings: RenderSettings
    objective: Objective
    diversity_layer: str | None = None

    def record_settings(self, seed, options):
        """The settings part of a unit record: everything that changes the images."""
        settings = {"objective": self.objective.value, **self.settings.describe(), "seed": seed,
                    "negative": options.negative, "precision": options.precision.value}
        if self.diversity_layer:
            settings["diversity"] = dict(settings["diversity"], layer=self.diversity_layer)
        return settings

    @property
    def input_size(self):
        """Side of what the network sees: the image plus its framing pad on each side."""
        return self.settings.transforms.output_size(self.settings.size)

    @property
    def phases(self):
        """[(network input side, steps)] of each drawing phase, coarse first (generator.cost)."""
        return [(phase.input_size, phase.steps) for phase in self.settings.phases()]


def _overrides(options, scheduled=False):
    """The settings `options` override; a schedule has taken --steps already (before its detail phase)."""
    fields = dict(steps=None if scheduled else options.steps, learning_rate=options.learning_rate,
                  batch_size=options.batch_size)
    return {key: value for key, value in fields.items() if value is not None}


def _scheduled(settings, name, options):
    """`settings` on the schedule called `name`; --steps sets its total steps."""
    schedule = find_schedule(name)
    if options.steps is not None:
        schedule = replace(schedule, steps=options.steps)
    return schedule.apply(settings)


def _class_schedule(options):
    """The name of the schedule the classes are drawn on under `options`."""
    asked = options.schedule
    if asked is not None and not find_schedule(asked).coarse_fraction:
        return asked
    return CLASS_SCHEDULE


def diversity_layer(layer):
    """Where the images of one unit are told apart: the conv layer below `layer` (block1_conv1
    itself, which has none; the last conv layer for the classes)."""
    if layer == CLASS_LAYER:
        return CONV_LAYERS[-1].name
    position = CONV_LAYERS.index(CONV_LAYER_BY_NAME[layer])
    return CONV_LAYERS[max(position - 1, 0)].name


def plan_layer(layer, options=DrawOptions()):
    """The drawing plan of `layer` (a conv layer name or "predictions") under `options`."""
    plan = _single_image_plan(layer, options)
    if options.diversity == 1:
        return plan
    settings = replace(plan.settings, diversity=options.diversity, diversity_weight=DIVERSITY_WEIGHT)
    return replace(plan, settings=settings, diversity_layer=diversity_layer(layer))


def _single_image_plan(layer, options):
    steps = STEPS[options.quality]
    if layer == CLASS_LAYER:
        transforms = Transforms(pad=16, jitter=16)
        settings = RenderSettings(size=CLASS_INPUT_SIZE - 2 * transforms.pad, steps=steps,
                                  batch_size=CLASS_BATCH_SIZE, transforms=transforms)
        if options.size is not None and options.size != settings.size:
            raise UserError(f"class images have a fixed size ({settings.size} px + padding = {CLASS_INPUT_SIZE} "
                            "px, the dense head's input); drop --size for classes")
        name = _class_schedule(options)
        settings = _scheduled(settings, name, options)
        settings = replace(settings, detail_view=bool(settings.detail_size), **_overrides(options, scheduled=True))
        return LayerPlan(layer, settings, Objective.CLASS_LOGIT)
    conv = CONV_LAYER_BY_NAME[layer]
    if conv == NEURON_LAYER:
        transforms = Transforms(pad=2, jitter=1, scale_range=(1.0, 1.0), rotate_degrees=0.0)
        settings = RenderSettings(size=options.size or NEURON_SIZE, steps=steps,
                                  batch_size=BATCH_SIZES[conv.block], transforms=transforms)
        return LayerPlan(layer, replace(settings, **_overrides(options)), Objective.NEURON)
    default_size = (PREVIEW_SIZES if options.quality is Quality.PREVIEW else FULL_SIZES)[conv.block]
    transforms = Transforms(pad=max(4, default_size // 12), jitter=max(2, default_size // 16))
    settings = RenderSettings(size=options.size or default_size, steps=steps,
                              batch_size=BATCH_SIZES[conv.block], transforms=transforms)
    name = options.schedule
    if name is None:
        name = (FULL_SCHEDULES if options.quality is Quality.FULL else PREVIEW_SCHEDULES)[conv.block]
    if find_schedule(name).detail_ratio and settings.size % 2:
        raise UserError(f"--size must be even for the detail phase of {layer}'s schedule {name} (got {settings.size}); "
                        "choose an even size, or --schedule c2f-256-mirror (no detail phase)")
    settings = _scheduled(settings, name, options)
    return LayerPlan(layer, replace(settings, **_overrides(options, scheduled=True)), Objective.CHANNEL)

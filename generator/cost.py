"""What a selection costs to draw, and how to split it into balanced shards.

The cost of one drawing batch is counted in floating-point operations: every optimization step
runs the network forward to the unit's layer and back to the input (the backward pass to the
input costs about as much as the forward pass; no weight gradients are needed), on
`batch_size` images of the input size of the step's phase (a coarse-to-fine plan counts its
coarse steps at the coarse size), whether the batch is full or not (a short batch is padded);
with `--diversity K` each unit is K images (K x the drawing work; the Gram matrices of the
diversity term are left out, under 1% of a step).
The calibration is per layer at the full size; coarse steps are assumed to run at the same
seconds per FLOP (smaller convolutions are, if anything, a little less efficient). The layer's quality pass adds five forward passes per image. FLOPs become seconds
through a per-layer calibration measured on this kind of machine by `bench/calibrate_cost.py`
and committed in `generator/data/cost_calibration.json`; other machines are stated as
assumptions (ASSUMPTIONS below).

Shards: the selection is cut into work items, per layer, of one plan batch each (consecutive
units in selection order), or of one unit each when there are fewer batches than shards; the
items are placed longest first, each on the shard with the least cost so far (greedy LPT, ties
to the lower shard index). A unit's shard therefore depends only on the selection, the plan,
the calibration and the shard count, never on what is already drawn.
"""

import hashlib
import heapq
import json
import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .architecture import CLASS_LAYER, CONV_LAYERS, NUM_CLASSES
from .errors import UserError
from .plan import DrawOptions, plan_layer

CALIBRATION_PATH = Path(__file__).resolve().parent / "data" / "cost_calibration.json"
QUALITY_PASSES = 5  # the image and its four robustness variants, forward only
CLASS_HEAD_FLOPS = 2 * (7 * 7 * 512 * 4096 + 4096 * 4096 + 4096 * NUM_CLASSES)
JOB_LIMIT_HOURS = 6.0  # GitHub-hosted runners stop a job after 6 hours
JOB_TARGET_HOURS = 4.5  # what a shard may be estimated at, leaving a margin for the estimate's error

ASSUMPTIONS = {
    "runner_speedup": 2.0,  # a GitHub-hosted 4-vCPU runner draws 2x as fast as this 2-vCPU machine
    "gpu_flops_per_second": 20e12,  # one modern GPU, sustained, on these 3x3 convolutions at batch 8-64
}


def forward_flops(layer, side):
    """FLOPs (2 per multiply-add) of VGG16 up to and including `layer` on one side x side image.

    Classes ("predictions") count the whole conv base at `side` and the dense head.
    """
    total, channels, size, block = 0, 3, side, 1
    for conv in CONV_LAYERS:
        if conv.block != block:
            size, block = size // 2, conv.block
        total += 2 * size * size * 9 * channels * conv.filters
        channels = conv.filters
        if conv.name == layer:
            return total
    if layer == CLASS_LAYER:
        return total + CLASS_HEAD_FLOPS
    raise KeyError(layer)


def plan_fingerprint(options=DrawOptions()):
    """A short hash of what the calibration measures under `options`: every layer's full-size
    network input side and batch size (bench/calibrate_cost.py times one full-size step of each).
    Step counts, schedules and phases are counted in FLOPs, so changing them needs no new
    calibration; changing a size or a batch does."""
    plans = {layer: _calibrated_shape(layer, options) for layer in _all_layers()}
    return hashlib.sha256(json.dumps(plans, sort_keys=True).encode()).hexdigest()[:16]


def _all_layers():
    return [layer.name for layer in CONV_LAYERS] + [CLASS_LAYER]


def _calibrated_shape(layer, options):
    plan = plan_layer(layer, options)
    return {"input": plan.input_size, "batch": plan.settings.batch_size}


@cache
def load_calibration(path=CALIBRATION_PATH):
    """The committed calibration: {"seconds_per_gflop": {layer: s}, "machine": ..., "plan": fingerprint}."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class BatchCost:
    """The cost of one drawing batch of a layer under a plan.

    Attributes:
        layer: the layer.
        batch_size: images per batch (a short batch costs as much as a full one).
        flops: FLOPs of the whole batch: steps x (forward + backward) + the quality passes.
        seconds: `flops` at this machine's calibrated speed for the layer.
    """

    layer: str
    batch_size: int
    flops: float
    seconds: float


def batch_cost(layer, options=DrawOptions(), calibration=None):
    """The `BatchCost` of one batch of `layer` drawn under `options`."""
    calibration = calibration or load_calibration()
    plan = plan_layer(layer, options)
    flops = plan.settings.batch_size * image_flops(plan, options.negative)
    return BatchCost(layer, plan.settings.batch_size, flops,
                     flops / 1e9 * calibration["seconds_per_gflop"][layer])


def image_flops(plan, negative=False):
    """FLOPs to draw and score one unit of `plan`: every phase's steps at that phase's own input
    size (forward + backward = 2 forward passes each), for each of its `diversity` images and
    the negative image if asked, plus the quality passes (of the master) at the full input size."""
    drawing = sum(steps * 2 * forward_flops(plan.layer, side) for side, steps in plan.phases)
    return (drawing * (plan.settings.diversity + (1 if negative else 0))
            + QUALITY_PASSES * forward_flops(plan.layer, plan.input_size))


@dataclass(frozen=True)
class WorkItem:
    """Units drawn together in one shard: consecutive units of one layer, at most one batch."""

    units: tuple
    seconds: float
    flops: float


def work_items(units, shard_count, options=DrawOptions(), calibration=None):
    """Cut `units` (selection order) into work items: one plan batch each, or one unit each when
    the selection has fewer batches than `shard_count`. A unit's cost is a full batch's share."""
    by_layer = {}
    for unit in units:
        by_layer.setdefault(unit.layer, []).append(unit)
    costs = {layer: batch_cost(layer, options, calibration) for layer in by_layer}
    batches = sum(math.ceil(len(group) / costs[layer].batch_size) for layer, group in by_layer.items())
    items = []
    for layer, group in by_layer.items():
        cost = costs[layer]
        size = cost.batch_size if batches >= shard_count else 1
        for start in range(0, len(group), size):
            chunk = tuple(group[start : start + size])
            share = len(chunk) / cost.batch_size if size == 1 else 1.0
            items.append(WorkItem(chunk, cost.seconds * share, cost.flops * share))
    return items


def partition(units, shard_count, options=DrawOptions(), calibration=None):
    """Split `units` into `shard_count` shards of about equal estimated cost (greedy LPT).

    Returns:
        list of `shard_count` lists of WorkItem; within a shard, items keep selection order.
    """
    items = work_items(units, shard_count, options, calibration)
    order = sorted(range(len(items)), key=lambda i: (-items[i].seconds, i))
    loads = [(0.0, shard) for shard in range(shard_count)]  # a heap: the least-loaded shard first
    assigned = [[] for _ in range(shard_count)]
    for i in order:
        load, shard = heapq.heappop(loads)
        assigned[shard].append(i)
        heapq.heappush(loads, (load + items[i].seconds, shard))
    return [[items[i] for i in sorted(indices)] for indices in assigned]


def shard_units(units, shard_index, shard_count, options=DrawOptions(), calibration=None):
    """The units of shard `shard_index` of `shard_count`, in selection order."""
    shard = partition(units, shard_count, options, calibration)[shard_index]
    return [unit for item in shard for unit in item.units]


def shard_seconds(shards):
    """Estimated seconds of each shard (a list from `partition`) on this machine."""
    return [sum(item.seconds for item in shard) for shard in shards]


MAX_MATRIX_SHARDS = 256  # a GitHub Actions matrix holds at most 256 jobs


def plan_report(units, shard_count=None, options=DrawOptions(), calibration=None):
    """What drawing `units` costs, overall, per layer and per shard (the `--plan` output).

    Returns a JSON-ready dict: "units"; "layers" {layer: {"units", "cpu_hours"}}; "cpu_hours" (this
    machine, from the calibration), "runner_hours" (a 4-vCPU GitHub runner) and "gpu_hours" (one
    GPU), both under ASSUMPTIONS; "min_shards_under_6h" (the smallest shard count whose costliest
    shard is estimated under JOB_TARGET_HOURS on a runner, or None past MAX_MATRIX_SHARDS); and,
    when `shard_count` is given, "shards", "shard_runner_hours" and "max_over_mean".
    """
    calibration = calibration or load_calibration()
    speedup = ASSUMPTIONS["runner_speedup"]
    items = work_items(units, 1, options, calibration)
    layers = {}
    for item in items:
        entry = layers.setdefault(item.units[0].layer, {"units": 0, "cpu_hours": 0.0})
        entry["units"] += len(item.units)
        entry["cpu_hours"] += item.seconds / 3600
    cpu_seconds = sum(item.seconds for item in items)
    report = {
        "units": len(units),
        "layers": {layer: {"units": e["units"], "cpu_hours": round(e["cpu_hours"], 3)} for layer, e in layers.items()},
        "cpu_hours": round(cpu_seconds / 3600, 3),
        "runner_hours": round(cpu_seconds / speedup / 3600, 3),
        "gpu_hours": round(sum(item.flops for item in items) / ASSUMPTIONS["gpu_flops_per_second"] / 3600, 3),
        "assumptions": dict(ASSUMPTIONS, calibration_machine=calibration.get("machine"),
                            job_target_hours=JOB_TARGET_HOURS),
        "min_shards_under_6h": min_shards(units, options, calibration),
    }
    if shard_count:
        hours = [seconds / speedup / 3600 for seconds in shard_seconds(partition(units, shard_count, options,
                                                                                  calibration))]
        mean = sum(hours) / len(hours)
        report.update(shards=shard_count, shard_runner_hours=[round(h, 3) for h in hours],
                      max_over_mean=round(max(hours) / mean, 3) if mean else None)
    return report


def min_shards(units, options=DrawOptions(), calibration=None):
    """The smallest shard count whose costliest shard fits JOB_TARGET_HOURS on a GitHub runner."""
    calibration = calibration or load_calibration()
    limit = JOB_TARGET_HOURS * 3600 * ASSUMPTIONS["runner_speedup"]  # in this machine's seconds
    total = sum(item.seconds for item in work_items(units, 1, options, calibration))
    for count in range(max(1, math.ceil(total / limit)), MAX_MATRIX_SHARDS + 1):
        if max(shard_seconds(partition(units, count, options, calibration))) <= limit:
            return count
    return None


def batch_memory_bytes(layer, options=DrawOptions()):
    """About how much memory one drawing batch of `layer` needs: every conv activation up to the
    layer at its largest phase's input side, float32, for each image of the batch (batch size x
    diversity), three times over (kept for the backward pass, its gradient, and the ReLU masks and
    temporaries)."""
    plan = plan_layer(layer, options)
    side, total = max(side for side, _ in plan.phases), 0  # the largest phase (a detail phase)
    for conv in CONV_LAYERS:
        total += conv.filters * (side // conv.stride) ** 2
        if conv.name == layer:
            break
    return 3 * 4 * plan.settings.batch_size * plan.settings.diversity * total


def check_memory(layers, options=DrawOptions(), available=None):
    """Raise UserError when a batch of one of `layers` would not fit in this machine's memory."""
    available = available or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for layer in layers:
        needed = batch_memory_bytes(layer, options)
        if needed > 0.8 * available:
            settings = plan_layer(layer, options).settings
            detail = f" ({settings.detail_size} px in its detail phase)" if settings.detail_size else ""
            raise UserError(
                f"{layer} at {settings.size} px{detail} in batches of {settings.batch_size} needs about "
                f"{needed / 2**30:.0f} GiB, more than this machine's {available / 2**30:.0f} GiB; "
                "lower --batch-size or --size"
            )

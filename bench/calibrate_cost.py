#!/usr/bin/env python3
"""Measure the drawing speed of every layer and write the cost calibration that `--plan` and the
balanced shards use (generator/data/cost_calibration.json).

For each conv layer and the classes, at the full-atlas plan (input size, batch size), one
Renderer is timed at K steps and at 0 steps (the per-batch set-up), interleaved, over a few
repetitions; the marginal seconds per image-step divided by the FLOPs of one image-step
(generator.cost.forward_flops, forward + backward) gives seconds per GFLOP for the layer.

Wall time is what a shard job spends, so it is the calibration; run it on a quiet machine (the
load average is printed and recorded: above 1.0 on 2 cores the numbers run high). Rerun it
after any change of the drawing plan (a test compares the plan fingerprint it records):

    python bench/calibrate_cost.py                 # about 5 minutes here
    python bench/calibrate_cost.py --layers block3_conv1,predictions --reps 2 --dry-run
"""

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from generator import cost  # noqa: E402
from generator.architecture import CLASS_LAYER, CONV_LAYERS  # noqa: E402
from generator.fileio import atomic_write_json  # noqa: E402
from generator.model import build_vgg16, preprocess  # noqa: E402
from generator.optvis.objectives import layer_scores, unit_objective  # noqa: E402
from generator.optvis.render import Renderer  # noqa: E402
from generator.plan import DrawOptions, plan_layer  # noqa: E402
from generator.records import utc_now  # noqa: E402

# Seconds per GFLOP are measured on full-size steps (one phase); generator.cost applies them to
# every phase of a plan, coarse ones included.
PLAIN = DrawOptions(schedule="plain")

tf.get_logger().setLevel("ERROR")
CORES = os.cpu_count() or 1
# Steps per timed call: a few seconds each here.
STEPS = {1: 16, 2: 8, 3: 4, 4: 3, 5: 2}
CLASS_STEPS = 2


def timed(call):
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def measure(model, layer, reps):
    """Median wall seconds per image-step of `layer` at its full plan (marginal over set-up)."""
    plan = plan_layer(layer, PLAIN)
    steps = CLASS_STEPS if layer == CLASS_LAYER else STEPS[int(layer[5])]
    objective = unit_objective(layer_scores(model, layer, preprocess, plan.objective.readout))
    batch = plan.settings.batch_size
    units, seeds = list(range(batch)), list(range(batch))
    with_steps = Renderer(objective, replace(plan.settings, steps=steps))
    set_up = Renderer(objective, replace(plan.settings, steps=0))
    with_steps.render(units, seeds)  # trace and warm up
    set_up.render(units, seeds)
    samples = []
    for _ in range(reps):
        full, empty = timed(lambda: with_steps.render(units, seeds)), timed(lambda: set_up.render(units, seeds))
        samples.append((full - empty) / (steps * batch))
    return float(np.median(samples))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", help="comma list (default: every conv layer and predictions)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--dry-run", action="store_true", help="print, do not write the calibration")
    args = parser.parse_args(argv)
    layers = args.layers.split(",") if args.layers else [layer.name for layer in CONV_LAYERS] + [CLASS_LAYER]
    # Random weights: the speed does not depend on them. The conv base takes any input size.
    with_head, conv_base = build_vgg16(include_top=True), build_vgg16(include_top=False)
    try:
        calibration = dict(cost.load_calibration())
    except FileNotFoundError:
        calibration = {"seconds_per_gflop": {}}
    load_before = os.getloadavg()[0]
    for layer in layers:
        plan = plan_layer(layer, PLAIN)
        gflop = 2 * cost.forward_flops(layer, plan.input_size) / 1e9
        seconds = measure(with_head if layer == CLASS_LAYER else conv_base, layer, args.reps)
        calibration["seconds_per_gflop"][layer] = round(seconds / gflop, 6)
        print(f"{layer:<14} input {plan.input_size:>3} px  {gflop:8.2f} GFLOP/image-step  "
              f"{seconds * 1e3:8.1f} ms/image-step  {gflop / seconds:6.1f} GFLOP/s", flush=True)
    calibration.update(
        machine=f"{platform.machine()}, {CORES} cores, {platform.processor() or 'unknown processor'}",
        measured=utc_now(), plan=cost.plan_fingerprint(), tensorflow=tf.__version__,
        method=f"wall seconds per image-step, marginal over a 0-step call, median of {args.reps}, load average "
               f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}; bench/calibrate_cost.py",
    )
    if args.dry_run:
        print(json.dumps(calibration, indent=1))
    else:
        atomic_write_json(cost.CALIBRATION_PATH, calibration)
        print(f"wrote {cost.CALIBRATION_PATH}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Speed of the drawing engine: against the bare network bound, against tf-keras-vis, per layer.

One run prints four sections, every number measured in this process:

  (a) our optimisation step / the bare forward+backward step of the truncated model on the same
      input tensor (batch x (size + 2 pad)^2 pixels): goal <= 1.15.
  (b) tf-keras-vis ActivationMaximization / ours, same filters, steps and image size: goal >= 1.5.
  (c) time to draw a whole layer at each tool's default quality settings, extrapolated from
      per-image-step times measured on one batch: goal ours >= 3x faster.
  (d) images per second for every conv layer (and the classes) at the full-atlas and preview
      defaults, the full-atlas time on this CPU and an estimate for one GPU from FLOP counts.

The machine is shared, so every ratio comes from calls interleaved in one process (the order
rotates every repetition) and is the median over repetitions of the per-repetition ratio. Wall
time is the headline; process CPU time (all threads) is printed beside it as a cross-check,
being less sensitive to other processes taking the cores.

A "step" of ours is the marginal cost of one more Adam step: (t(K steps) - t(0 steps)) / K, where
both are full `Renderer.render` calls (0 steps = the per-batch setup: initial spectra, the final
scoring pass, copies to NumPy). That per-batch setup is printed too; it is amortised over the
512 steps of a real batch.

    python bench/bench_render.py                 # everything, about 8-10 minutes here
    python bench/bench_render.py --quick         # fewer repetitions, (d) partly FLOP-scaled, ~4 min
    python bench/bench_render.py --sections a,b  # a subset
    python bench/bench_render.py --json out.json # also write the numbers
"""

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from generator.architecture import CLASS_LAYER, CONV_LAYER_BY_NAME, CONV_LAYERS, NUM_CLASSES  # noqa: E402
from generator.model import build_vgg16, load_vgg16, preprocess  # noqa: E402
from generator.optvis.objectives import layer_scores, unit_objective  # noqa: E402
from generator.optvis.render import Renderer  # noqa: E402
from generator.cost import forward_flops  # noqa: E402
from generator.plan import DrawOptions, Quality, plan_layer  # noqa: E402
from generator.units import Unit  # noqa: E402

tf.get_logger().setLevel("ERROR")  # every Renderer traces once; TF warns about "retracing" otherwise

# The engine's speed is measured on full-size steps: plans of the "plain" schedule (one phase). A
# coarse-to-fine plan's cost is FLOP-counted from these by generator.cost (every phase at its size).
PLAIN = DrawOptions(schedule="plain")


def full_or_preview(preview):
    """DrawOptions of the preview defaults, or of the full atlas drawn plain (512 full-size steps)."""
    return DrawOptions(quality=Quality.PREVIEW) if preview else PLAIN


A_LAYERS = ("block1_conv2", "block3_conv1", "block5_conv1")  # --a-layers picks others
EXPERIMENT_LAYERS = ("block1_conv2", "block3_conv1", "block4_conv2", "block5_conv1")
# Steps per timed call, chosen so one call takes a few seconds here.
A_STEPS = {"block1_conv2": 32, "block3_conv1": 6, "block4_conv2": 4, "block5_conv1": 2, CLASS_LAYER: 1}
A_STEPS_BY_BLOCK = {1: 32, 2: 12, 3: 6, 4: 4, 5: 2}
B_LAYER, B_SIZE, B_FILTERS = "block3_conv1", 128, 8
TKV_DEFAULT_SIZE, TKV_DEFAULT_STEPS, TKV_LAYER_BATCH = 224, 200, 4
CORES = os.cpu_count() or 1
# Assumed sustained throughput of one modern GPU on these FP32/TF32 3x3 convolutions at batch 8-16.
GPU_TFLOPS = 20.0


# ------------------------------------------------------------------ timing


def full_size_steps(plan):
    """The drawing steps of `plan` as full-size steps of equal FLOPs (a half-side step counts about 1/4)."""
    return sum(steps * step_flops(plan.layer, side) for side, steps in plan.phases) / step_flops(plan.layer,
                                                                                               plan.input_size)


def timed(fn):
    """(wall seconds, process CPU seconds) of one call of fn()."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def interleave(calls, reps, log=None):
    """Time every callable of `calls` (name -> fn) `reps` times, interleaved, rotating the order.

    Returns {name: {"wall": [reps], "cpu": [reps]}}.
    """
    names = list(calls)
    times = {name: {"wall": [], "cpu": []} for name in names}
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = timed(calls[name])
            times[name]["wall"].append(wall)
            times[name]["cpu"].append(cpu)
        if log:
            log(f"    rep {rep + 1}/{reps}: " + ", ".join(f"{n} {times[n]['wall'][-1]:.2f}s" for n in names))
    return times


def median_ratio(numerator, denominator):
    """Median over repetitions of numerator[i] / denominator[i] (arrays)."""
    return float(np.median(np.asarray(numerator) / np.asarray(denominator)))


def ratio_stats(numerator, denominator):
    """Per-repetition ratios summarised: median (the headline), lowest and highest, and the ratio
    of the two minima (each side's least-disturbed call; a cross-check under shared load)."""
    per_rep = np.asarray(numerator) / np.asarray(denominator)
    return {"median": float(np.median(per_rep)), "low": float(per_rep.min()), "high": float(per_rep.max()),
            "of_minima": float(np.min(numerator) / np.min(denominator))}


# ------------------------------------------------------------------ what is timed


def step_flops(layer, side):
    """FLOPs of one image-step: forward plus the input-gradient backward pass (same cost as the
    forward convolutions); no filter gradients are needed."""
    return 2 * forward_flops(layer, side)


def objective_for(model, plan):
    """The engine's objective for a plan, exactly as AtlasRun builds it."""
    return unit_objective(layer_scores(model, plan.layer, preprocess, plan.objective.readout))


def first_units(layer, count):
    """(unit indices, seeds) of the first `count` units of a layer, seeded as in the atlas."""
    return list(range(count)), [Unit(layer, i).seed(0) for i in range(count)]


class Ours:
    """Full `Renderer.render` calls of a plan with `steps` and with 0 steps (the per-batch setup)."""

    def __init__(self, objective, settings, steps, layer="bench"):
        self.settings = replace(settings, steps=steps)
        self.units, self.seeds = first_units(layer, settings.batch_size)
        self.run = Renderer(objective, self.settings)
        self.setup = Renderer(objective, replace(self.settings, steps=0))
        self.steps = steps

    def call(self):
        self.run.render(self.units, self.seeds)

    def call_setup(self):
        self.setup.render(self.units, self.seeds)

    def warm(self):
        self.call_setup()
        self.call()


def bare_bound(objective, batch, side, steps, jit_compile=False):
    """A compiled function doing `steps` gradient steps of `objective` straight on an input tensor
    (batch, side, side, 3) in [0, 1]: no parameterization, transforms or optimizer. Each step adds
    1e-6 x the gradient to the input so that steps depend on each other and nothing is hoisted."""
    images = tf.random.stateless_uniform((batch, side, side, 3), seed=[1, 2])
    units = tf.range(batch, dtype=tf.int32)

    @tf.function(jit_compile=jit_compile)
    def loop(x, u):
        for _ in tf.range(steps):
            with tf.GradientTape() as tape:
                tape.watch(x)
                total = tf.reduce_sum(tf.cast(objective(x, u), tf.float32))
            x = x + 1e-6 * tape.gradient(total, x)
        return x

    def call():
        loop(images, units).numpy()

    return call


# ------------------------------------------------------------------ tf-keras-vis


class CaffePreprocess(keras.layers.Layer):
    """RGB 0..255 -> VGG16's BGR mean-subtracted input, as a layer (so tf-keras-vis can clone it)."""

    def call(self, inputs):
        return preprocess(inputs)


def rgb_model(base):
    """A functional model taking RGB 0..255, with VGG16's layers inline (get_layer works); of any
    image size, or 224 px when `base` has the dense head."""
    side = 224 if base.layers[-1].name == CLASS_LAYER else None
    inputs = keras.Input((side, side, 3))
    x = CaffePreprocess(name="caffe_preprocess")(inputs)
    for layer in base.layers[1:]:
        x = layer(x)
    return keras.Model(inputs, x, name="vgg16_rgb")


class TkvLayer:
    """tf-keras-vis 0.8.7 ActivationMaximization on one conv layer's pre-activation channels, or on
    the class logits.

    Its documented recipe for a conv filter: ExtractIntermediateLayer(layer) + ReplaceToLinear()
    model modifiers, CategoricalScore(filter indices) (mean of the channel over positions, like
    ours); for a class, ReplaceToLinear() alone (the logit before the softmax, like ours) and
    CategoricalScore(class indices). Every other argument at its default: input_modifiers [Jitter(4), Rotate2D(1)],
    regularizers [TotalVariation2D(1.0), Norm(0.3, p=1)], RMSprop(learning_rate=1.0, rho=0.999),
    input_range (0, 255), seed input uniform in 0..255. The model's input is RGB 0..255 with the
    caffe preprocessing inside, so its images are comparable with ours.
    """

    def __init__(self, base, layer):
        from tf_keras_vis.activation_maximization import ActivationMaximization
        from tf_keras_vis.utils.model_modifiers import ExtractIntermediateLayer, ReplaceToLinear

        self.layer = layer
        modifiers = [ReplaceToLinear()] if layer == CLASS_LAYER else [ExtractIntermediateLayer(layer),
                                                                      ReplaceToLinear()]
        self.visualize = ActivationMaximization(rgb_model(base), model_modifier=modifiers)

    def draw(self, filters, size, steps, seed=0):
        """uint8 (N, size, size, 3) RGB images for `filters`, after `steps` steps."""
        from tf_keras_vis.utils.scores import CategoricalScore

        np.random.seed(seed)  # its Jitter draws from NumPy's global generator
        seed_input = tf.random.stateless_uniform((len(filters), size, size, 3), seed=[seed, 7],
                                                 minval=0.0, maxval=255.0)
        images = self.visualize(CategoricalScore(list(filters)), seed_input=seed_input, steps=steps)
        return np.clip(np.round(np.asarray(images)), 0, 255).astype(np.uint8)

    def caller(self, batch, size, steps):
        filters = list(range(batch))
        return lambda: self.draw(filters, size, steps)


# ------------------------------------------------------------------ sections


class Bench:
    def __init__(self, quick, log, a_layers=A_LAYERS):
        self.quick = quick
        self.log = log
        self.a_layers = a_layers
        self.loaded = load_vgg16("embedded")
        self.model = self.loaded.model
        self._class_model = None
        self.results = {}
        self._tkv = {}
        self.per_image_step = {}  # (layer, preview) -> seconds, marginal, ours
        self.setup_seconds = {}  # (layer, preview) -> seconds per batch

    def model_for(self, layer):
        """The embedded conv weights; for the classes, which need the ImageNet head that the
        embedded weights lack, a VGG16 with a randomly initialised head (the time does not depend
        on the weights' values)."""
        if layer != CLASS_LAYER:
            return self.model
        if self._class_model is None:
            keras.utils.set_random_seed(0)
            self._class_model = build_vgg16(include_top=True)
        return self._class_model

    def tkv(self, layer):
        if layer not in self._tkv:
            self._tkv[layer] = TkvLayer(self.model_for(layer), layer)
        return self._tkv[layer]

    # (a) ours / bare bound, plus tf-keras-vis at its default size for (c), same rotation
    def section_a(self):
        self.log(f"\n[load average {os.getloadavg()[0]:.1f}]\n(a) our step / bare forward+backward step, full-atlas defaults "
                 "(and tf-keras-vis at 224 px for (c), same rotation)")
        reps = 2 if self.quick else 3
        rows = []
        for layer in self.a_layers:
            plan = plan_layer(layer, PLAIN)
            settings = plan.settings
            steps = A_STEPS[layer] if layer in A_STEPS else A_STEPS_BY_BLOCK[CONV_LAYER_BY_NAME[layer].block]
            steps = steps // (2 if self.quick else 1) or 1
            side = settings.transforms.output_size(settings.size)
            objective = objective_for(self.model_for(layer), plan)
            ours = Ours(objective, settings, steps, layer)
            bare = bare_bound(objective, settings.batch_size, side, steps)
            tkv1 = self.tkv(layer).caller(TKV_LAYER_BATCH, TKV_DEFAULT_SIZE, 1)
            tkv2 = self.tkv(layer).caller(TKV_LAYER_BATCH, TKV_DEFAULT_SIZE, 2)
            self.log(f"  {layer}: batch {settings.batch_size}, {settings.size}+2x{settings.transforms.pad}"
                     f" = {side} px, {steps} steps per call; warming up")
            ours.warm()
            bare()
            tkv1()
            times = interleave({"ours": ours.call, "bare": bare, "ours_setup": ours.call_setup,
                                "tkv_1": tkv1, "tkv_2": tkv2}, reps, self.log)
            row = {"layer": layer, "batch": settings.batch_size, "size": settings.size, "side": side,
                   "steps_per_call": steps, "reps": reps}
            for clock in ("wall", "cpu"):
                t = {name: np.asarray(v[clock]) for name, v in times.items()}
                marginal = (t["ours"] - t["ours_setup"]) / steps  # one batch step
                row[clock] = {
                    "ratio": ratio_stats(marginal * steps, t["bare"]),
                    "ratio_with_setup": median_ratio(t["ours"], t["bare"]),
                    "ours_ms": float(np.median(marginal)) / settings.batch_size * 1e3,
                    "bare_ms": float(np.median(t["bare"])) / steps / settings.batch_size * 1e3,
                    "setup_s": float(np.median(t["ours_setup"])),
                    "tkv224_ms": float(np.median(t["tkv_2"] - t["tkv_1"])) / TKV_LAYER_BATCH * 1e3,
                }
            self.per_image_step[(layer, False)] = {clock: row[clock]["ours_ms"] / 1e3 for clock in ("wall", "cpu")}
            self.setup_seconds[(layer, False)] = row["wall"]["setup_s"]
            w = row["wall"]
            self.log(f"  {layer}: ours {w['ours_ms']:.1f} ms/image-step, bare {w['bare_ms']:.1f}, ratio "
                     f"{w['ratio']['median']:.3f} (per-rep {w['ratio']['low']:.2f}..{w['ratio']['high']:.2f}, "
                     f"of minima {w['ratio']['of_minima']:.3f}, cpu-time {row['cpu']['ratio']['median']:.3f}); "
                     f"tf-keras-vis 224 px {w['tkv224_ms']:.0f} ms/image-step")
            rows.append(row)
        self.results["a"] = rows
        self.log("  " + "-" * 96)
        self.log(f"  {'layer':14} {'batch x px':>11} {'ours ms':>8} {'bare ms':>8} {'ratio':>6} {'per-rep':>10} "
                 f"{'of minima':>9} {'cpu time':>8} {'+setup':>6} {'setup s':>7}  goal <= 1.15")
        for row in rows:
            w = row["wall"]
            self.log(f"  {row['layer']:14} {row['batch']:>4} x {row['side']:<4} {w['ours_ms']:>8.1f} "
                     f"{w['bare_ms']:>8.1f} {w['ratio']['median']:>6.3f} "
                     f"{w['ratio']['low']:>4.2f}..{w['ratio']['high']:<4.2f} {w['ratio']['of_minima']:>9.3f} "
                     f"{row['cpu']['ratio']['median']:>8.3f} {w['ratio_with_setup']:>6.3f} {w['setup_s']:>7.2f}  "
                     f"{'met' if w['ratio']['median'] <= 1.15 else 'NOT met'}")
        self.log("  (ms per image-step; ratio = median over repetitions of ours / bare, wall time; +setup: "
                 "ours including the per-batch setup amortised over this call's steps)")

    # (b) tf-keras-vis / ours at the same filters, steps, image size
    def section_b(self):
        steps = 10 if self.quick else 20
        reps = 2 if self.quick else 3
        self.log(f"\n[load average {os.getloadavg()[0]:.1f}]\n(b) tf-keras-vis / ours: {B_LAYER}, {B_SIZE} px images, {B_FILTERS} filters, "
                 f"{steps} steps, whole calls")
        plan = plan_layer(B_LAYER, DrawOptions(size=B_SIZE, batch_size=B_FILTERS, steps=steps, schedule="plain"))
        objective = objective_for(self.model, plan)
        ours = Ours(objective, plan.settings, steps)
        pad = plan.settings.transforms.pad
        # Same network input (128 px) instead of the same image size: ours draws 128 - 2 pad px.
        plan_equal_input = plan_layer(B_LAYER, DrawOptions(size=B_SIZE - 2 * pad, batch_size=B_FILTERS, steps=steps,
                                                                 schedule="plain"))
        ours_equal_input = Ours(objective, plan_equal_input.settings, steps)
        bare_steps = max(1, steps // 4)  # only for reference: ms per image-step at 128 px
        bare = bare_bound(objective, B_FILTERS, B_SIZE, bare_steps)
        tkv = self.tkv(B_LAYER).caller(B_FILTERS, B_SIZE, steps)
        self.log(f"  ours: image {B_SIZE} px + 2x{pad} pad = {B_SIZE + 2 * pad} px into the network; "
                 f"also ours at {B_SIZE - 2 * pad}+2x{pad} = {B_SIZE} px; tf-keras-vis: {B_SIZE} px. Warming up")
        ours.warm()
        ours_equal_input.warm()
        bare()
        self.tkv(B_LAYER).draw(list(range(B_FILTERS)), B_SIZE, 1)
        times = interleave({"tkv": tkv, "ours": ours.call, "ours_equal_input": ours_equal_input.call,
                            "bare": bare}, reps, self.log)
        result = {"layer": B_LAYER, "size": B_SIZE, "filters": B_FILTERS, "steps": steps, "reps": reps, "pad": pad}
        image_steps = B_FILTERS * steps
        for clock in ("wall", "cpu"):
            t = {name: np.asarray(v[clock]) for name, v in times.items()}
            result[clock] = {
                "ratio": ratio_stats(t["tkv"], t["ours"]),
                "ratio_equal_input": ratio_stats(t["tkv"], t["ours_equal_input"]),
                "ours_vs_bare": ratio_stats(t["ours_equal_input"] / steps, t["bare"] / bare_steps),
                **{f"{name}_ms": float(np.median(t[name])) / image_steps * 1e3 for name in t},
            }
            result[clock]["bare_ms"] = float(np.median(t["bare"])) / (B_FILTERS * bare_steps) * 1e3
        self.results["b"] = result
        w = result["wall"]
        self.log(f"  ms per image-step: tf-keras-vis {w['tkv_ms']:.1f}, ours {w['ours_ms']:.1f} "
                 f"(ours at 128 px network input {w['ours_equal_input_ms']:.1f}), bare bound at 128 px "
                 f"{w['bare_ms']:.1f}")
        r, e = w["ratio"], w["ratio_equal_input"]
        self.log(f"  tf-keras-vis / ours = {r['median']:.2f} (per-rep {r['low']:.2f}..{r['high']:.2f}, of minima "
                 f"{r['of_minima']:.2f}) at the same image size; {e['median']:.2f} (of minima "
                 f"{e['of_minima']:.2f}) at the same network input.  goal >= 1.5: "
                 f"{'met' if r['median'] >= 1.5 else 'NOT met'}")
        self.log(f"  (process CPU time ratio {result['cpu']['ratio']['median']:.2f}: tf-keras-vis runs eagerly and "
                 "leaves cores idle between ops, so its CPU time understates its wall time)")

    # (d) per layer images/s, full and preview defaults
    def section_d(self):
        self.log(f"\n[load average {os.getloadavg()[0]:.1f}]\n(d) per-image-step times of every conv layer and the classes, at the full-atlas and "
                 "preview defaults")
        layers = [conv.name for conv in CONV_LAYERS]
        for preview in (False, True):
            for layer in layers:
                key = (layer, preview)
                if key in self.per_image_step:
                    continue  # measured in (a)
                if self.quick and layer != "block1_conv1" and (preview or self._block_measured(layer)):
                    continue  # --quick: estimated below from the block's measured layer, by FLOPs
                self._measure_plan(self.model, plan_layer(layer, full_or_preview(preview)), key)
        self._measure_classes()
        rows = []
        for preview in (False, True):
            for layer in layers + [CLASS_LAYER]:
                rows.append(self._d_row(layer, preview))
        self.results["d"] = rows
        self._print_d(rows)

    def _block_measured(self, layer):
        """A full-plan layer of `layer`'s block (not the neuron layer block1_conv1) is measured."""
        return self._block_source(layer) is not None

    def _block_source(self, layer):
        block = CONV_LAYER_BY_NAME[layer].block
        return next((name for (name, preview) in self.per_image_step
                     if not preview and name in CONV_LAYER_BY_NAME and name != "block1_conv1"
                     and CONV_LAYER_BY_NAME[name].block == block), None)

    def _measure_plan(self, model, plan, key, steps=None):
        settings = plan.settings
        side = settings.transforms.output_size(settings.size)
        flops = step_flops(plan.layer, side) * settings.batch_size
        steps = steps or max(1, min(8, int(round(2.5e11 / flops))))  # about 2-4 s per call here
        ours = Ours(objective_for(model, plan), settings, steps, plan.layer)
        ours.warm()
        times = interleave({"ours": ours.call, "setup": ours.call_setup}, 1)
        self.per_image_step[key] = {
            clock: max((times["ours"][clock][0] - times["setup"][clock][0]) / steps, 1e-9) / settings.batch_size
            for clock in ("wall", "cpu")
        }
        self.setup_seconds[key] = times["setup"]["wall"][0]
        self.log(f"  {plan.layer:14} {'preview' if key[1] else 'full   '} {settings.batch_size:>3} x {side:>3} px: "
                 f"{self.per_image_step[key]['wall'] * 1e3:8.2f} ms/image-step wall, "
                 f"{self.per_image_step[key]['cpu'] * 1e3 / CORES:8.2f} cpu/{CORES} ({steps} steps/call)")

    def _measure_classes(self):
        """The classes on a VGG16 with a random head (`model_for`), unless section a measured them."""
        if (CLASS_LAYER, False) not in self.per_image_step:
            plan = plan_layer(CLASS_LAYER, PLAIN)
            self._measure_plan(self.model_for(CLASS_LAYER), plan, (CLASS_LAYER, False), steps=1)
        # Preview differs only in the number of steps: same per-image-step time.
        self.per_image_step[(CLASS_LAYER, True)] = self.per_image_step[(CLASS_LAYER, False)]
        self.setup_seconds[(CLASS_LAYER, True)] = self.setup_seconds[(CLASS_LAYER, False)]

    def _d_row(self, layer, preview):
        plan = plan_layer(layer, full_or_preview(preview))
        settings = plan.settings
        side = settings.transforms.output_size(settings.size)
        flops = step_flops(layer, side)
        units = NUM_CLASSES if layer == CLASS_LAYER else CONV_LAYER_BY_NAME[layer].filters
        key = (layer, preview)
        if key in self.per_image_step:
            seconds, how = dict(self.per_image_step[key]), "measured"
        else:  # --quick: scale the measured layer of the same block (full plan) by FLOPs
            source = self._block_source(layer)
            source_plan = plan_layer(source, PLAIN).settings
            source_flops = step_flops(source, source_plan.transforms.output_size(source_plan.size))
            seconds = {clock: value * flops / source_flops
                       for clock, value in self.per_image_step[(source, False)].items()}
            how = f"FLOP-scaled from {source}"
        seconds["cpu"] /= CORES  # CPU seconds spread over the cores: the time on an unshared machine
        setup = self.setup_seconds.get(key, 0.0)
        batches = -(-units // settings.batch_size)
        row = {
            "layer": layer, "preview": preview, "size": settings.size, "side": side,
            "batch": settings.batch_size, "steps": settings.steps, "units": units, "how": how,
            "gflops_per_image_step": flops / 1e9,
            "gpu_seconds": units * settings.steps * flops / (GPU_TFLOPS * 1e12),
        }
        for clock in ("wall", "cpu"):
            row[clock] = {
                "ms_per_image_step": seconds[clock] * 1e3,
                "images_per_second": 1.0 / (settings.steps * seconds[clock]),
                "layer_hours": (units * settings.steps * seconds[clock] + batches * setup) / 3600,
                "achieved_gflops": flops / seconds[clock] / 1e9,
            }
        return row

    def _print_d(self, rows):
        self.log(f"  wall: as measured on the shared machine; cpu/{CORES}: process CPU seconds / {CORES} cores, "
                 "what an unshared machine would take if TensorFlow kept every core busy")
        for preview in (False, True):
            subset = [r for r in rows if r["preview"] == preview]
            self.log(f"\n  {'preview' if preview else 'full-atlas'} defaults "
                     f"({subset[0]['steps']} steps per image; classes {subset[-1]['steps']}):")
            self.log(f"  {'layer':14} {'units':>5} {'batch x px':>10} {'ms/img-step':>11} {'img/s':>7} "
                     f"{'layer h':>7} {'cpu/' + str(CORES) + ' img/s':>12} {'layer h':>7} {'GFLOP/img-step':>14} "
                     f"{'GFLOP/s':>7} {'GPU min':>7}  how")
            for r in subset:
                w, c = r["wall"], r["cpu"]
                self.log(f"  {r['layer']:14} {r['units']:>5} {r['batch']:>3} x {r['side']:<4} "
                         f"{w['ms_per_image_step']:>11.2f} {w['images_per_second']:>7.3f} {w['layer_hours']:>7.2f} "
                         f"{c['images_per_second']:>12.3f} {c['layer_hours']:>7.2f} "
                         f"{r['gflops_per_image_step']:>14.2f} {w['achieved_gflops']:>7.0f} "
                         f"{r['gpu_seconds'] / 60:>7.1f}  {r['how']}")
            conv = [r for r in subset if r["layer"] != CLASS_LAYER]
            classes = [r for r in subset if r["layer"] == CLASS_LAYER][0]
            total_flops = sum(r["units"] * r["steps"] * r["gflops_per_image_step"] for r in subset) * 1e9
            summary = {"pflop": total_flops / 1e15, "gpu_tflops_assumed": GPU_TFLOPS,
                       "conv_gpu_hours": sum(r["gpu_seconds"] for r in conv) / 3600,
                       "class_gpu_hours": classes["gpu_seconds"] / 3600}
            for clock in ("wall", "cpu"):
                summary[f"conv_{clock}_hours"] = sum(r[clock]["layer_hours"] for r in conv)
                summary[f"class_{clock}_hours"] = classes[clock]["layer_hours"]
            self.log(f"  4,224 filters: {summary['conv_wall_hours']:.1f} h wall as measured "
                     f"({summary['conv_cpu_hours']:.1f} h cpu/{CORES}); 1,000 classes: "
                     f"{summary['class_wall_hours']:.1f} h ({summary['class_cpu_hours']:.1f} h); GPU estimate "
                     f"{summary['conv_gpu_hours']:.2f} h + {summary['class_gpu_hours']:.2f} h "
                     f"({summary['pflop']:.1f} PFLOP at an assumed {GPU_TFLOPS:.0f} TFLOP/s sustained)")
            self.results.setdefault("atlas", {})["preview" if preview else "full"] = summary

    # (c) whole layer at each tool's defaults, from per-image-step times
    def section_c(self):
        self.log(f"\n(c) one whole layer at each tool's default quality, extrapolated from per-image-step "
                 f"times measured on one batch (tf-keras-vis: {TKV_DEFAULT_SIZE} px, {TKV_DEFAULT_STEPS} "
                 f"steps, batch {TKV_LAYER_BATCH}; ours: the full-atlas plan, its steps counted as full-size "
                 f"steps of equal FLOPs, so a coarse step counts a quarter)")
        if "a" not in self.results:
            self.log("  needs section a (which measures both tools' per-image-step times)")
            return
        rows = []
        self.log(f"  {'layer':14} {'filters':>7} {'ours px':>7} {'ours ms':>8} {'ours h':>7} {'tkv ms':>7} "
                 f"{'tkv h':>7} {'tkv/ours':>8}  goal >= 3")
        for row in self.results["a"]:
            layer = row["layer"]
            steps = full_size_steps(plan_layer(layer))
            filters = NUM_CLASSES if layer == CLASS_LAYER else CONV_LAYER_BY_NAME[layer].filters
            ours_s = row["wall"]["ours_ms"] / 1e3  # median marginal image-step, wall
            tkv_s = row["wall"]["tkv224_ms"] / 1e3
            ours_h = filters * steps * ours_s / 3600
            tkv_h = filters * TKV_DEFAULT_STEPS * tkv_s / 3600
            rows.append({"layer": layer, "filters": filters, "ours_hours": ours_h, "tkv_hours": tkv_h,
                         "speedup": tkv_h / ours_h, "ours_side": row["side"], "ours_full_size_steps": steps})
            self.log(f"  {layer:14} {filters:>7} {row['side']:>7} {ours_s * 1e3:>8.1f} {ours_h:>7.2f} "
                     f"{tkv_s * 1e3:>7.0f} {tkv_h:>7.2f} {tkv_h / ours_h:>8.2f}  "
                     f"{'met' if tkv_h / ours_h >= 3 else 'NOT met'}")
        self.results["c"] = rows


def machine():
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and steps; (d) partly FLOP-scaled")
    parser.add_argument("--sections", default="a,b,c,d", help="comma list of a,b,c,d (default all)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--a-layers", default=",".join(A_LAYERS),
                        help=f"conv layers (or {CLASS_LAYER}, the classes) of sections a and c")
    args = parser.parse_args(argv)
    a_layers = tuple(name.strip() for name in args.a_layers.split(",") if name.strip())
    if not a_layers or any(name not in CONV_LAYER_BY_NAME and name != CLASS_LAYER for name in a_layers):
        parser.exit(2, f"bench_render.py: --a-layers takes conv layer names or {CLASS_LAYER} "
                       f"(got {args.a_layers!r})\n")
    began = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - began:6.0f}s] {message}" if message.strip() else message, flush=True)

    info = machine()
    log(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {info['cpu']}, {info['cores']} cores; "
        f"TensorFlow {info['tensorflow']}, Keras {info['keras']}; load average {info['load_average']}")
    bench = Bench(args.quick, log, a_layers)
    output = {"machine": info, "quick": args.quick, "date": f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%MZ}"}
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    for name in ("a", "b", "c", "d"):  # c uses a's measurements; d reuses a's too
        if name in sections:
            getattr(bench, f"section_{name}")()
    output.update(bench.results)
    output["seconds"] = time.perf_counter() - began
    output["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    log(f"done in {output['seconds'] / 60:.1f} min; load average now {output['load_average_end']}")
    if args.json:
        args.json.write_text(json.dumps(output, indent=1, default=float))


if __name__ == "__main__":
    main()

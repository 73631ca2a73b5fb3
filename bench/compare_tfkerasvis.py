#!/usr/bin/env python3
"""Side by side: our images vs tf-keras-vis' default ActivationMaximization, same filters and steps.

For each layer: the same filters (the atlas' stable sample, `generator.units.sample_indices`),
the same image size (our preview size of the layer unless --size) and the same number of steps.
Ours: the layer's preview plan (Fourier/decorrelated parameterization, pad/jitter/scale/rotate,
Adam 0.05) with --steps. tf-keras-vis 0.8.7: ActivationMaximization with its documented
conv-filter recipe (ExtractIntermediateLayer + ReplaceToLinear, CategoricalScore) and all its
defaults (Jitter(4), Rotate2D(1), TotalVariation2D(1) + Norm(0.3, p=1), RMSprop(1.0, 0.999),
uniform 0..255 seed) - see bench_render.TkvLayer.

Both tools' images are scored by the same function (channel mean before the ReLU, image framed by
our gray padding) and measured with generator.quality.layer_quality. Writes one labelled grid per
layer (WebP) and prints a table; about 4 minutes here with the defaults.

    python bench/compare_tfkerasvis.py                          # -> docs/images/comparison/
    python bench/compare_tfkerasvis.py --steps 200 --size 128 --layers block4_conv2
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_render  # noqa: E402  (sets up sys.path, TF logging)
import tensorflow as tf  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from generator.architecture import CONV_LAYER_BY_NAME  # noqa: E402
from generator.model import preprocess  # noqa: E402
from generator.optvis.objectives import layer_scores  # noqa: E402
from generator.optvis.render import Renderer  # noqa: E402
from generator.optvis.transform import frame  # noqa: E402
from generator.plan import DrawOptions, Quality, plan_layer  # noqa: E402
from generator.quality import layer_quality  # noqa: E402
from generator.units import Unit, sample_indices  # noqa: E402

OUT = bench_render.ROOT / "docs" / "images" / "comparison"
TILE = 192
LABEL_WIDTH = 112
HEADER = 22


def grid(layer, filters, rows, path):
    """Write a labelled grid: one row per tool, one column per filter, tiles upscaled to TILE px."""
    width = LABEL_WIDTH + TILE * len(filters)
    height = HEADER + TILE * len(rows)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for column, index in enumerate(filters):
        draw.text((LABEL_WIDTH + column * TILE + 6, 5), f"{layer} #{index}", fill=(0, 0, 0))
    for row, (label, images) in enumerate(rows):
        top = HEADER + row * TILE
        draw.text((6, top + TILE // 2 - 14), label, fill=(0, 0, 0))
        for column, image in enumerate(images):
            tile = Image.fromarray(image).resize((TILE, TILE), Image.LANCZOS)
            canvas.paste(tile, (LABEL_WIDTH + column * TILE, top))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, quality=88, method=6)
    return path


def compare_layer(model, layer, count, steps, size, out, log, ours_first=True):
    filters = sample_indices(layer, CONV_LAYER_BY_NAME[layer].filters, count)
    plan = plan_layer(layer, DrawOptions(quality=Quality.PREVIEW, steps=steps, batch_size=count, size=size))
    settings = plan.settings
    size = settings.size
    scores = layer_scores(model, layer, preprocess)
    pad = settings.transforms.pad

    seeds = [Unit(layer, index).seed(0) for index in filters]
    tkv = bench_render.TkvLayer(model, layer)
    drawn, seconds = {}, {}
    for name in ("ours", "tf-keras-vis") if ours_first else ("tf-keras-vis", "ours"):
        began = time.perf_counter()
        if name == "ours":
            drawn[name] = Renderer(bench_render.objective_for(model, plan), settings).render(filters, seeds)[0]
        else:
            drawn[name] = tkv.draw(filters, size, steps)
        seconds[name] = time.perf_counter() - began
        log(f"  {layer}: {name} {seconds[name]:.0f} s for {count} images x {steps} steps at {size} px")
    result = {"layer": layer, "filters": filters, "size": size, "steps": steps, "pad": pad, "tools": {}}
    for name, images in drawn.items():
        per_unit, summary = layer_quality(scores, images, filters, pad)
        framed = frame(tf.constant(images, tf.float32) / 255.0, pad)
        own = scores(framed).numpy()[np.arange(count), filters]
        result["tools"][name] = {
            "seconds": seconds[name], "objective": [round(float(v), 2) for v in own],
            "specificity": summary["specificity"], "robustness_median": summary["robustness"],
            "robustness": [u["robustness"] for u in per_unit], "flat": summary["flat"],
            "pixel_std": [round(float(np.asarray(i, np.float32).std()), 1) for i in images],
        }
    path = grid(layer, filters, [("ours", drawn["ours"]), ("tf-keras-vis", drawn["tf-keras-vis"])],
                out / f"{layer}.webp")
    result["image"] = str(path.relative_to(bench_render.ROOT)) if path.is_relative_to(bench_render.ROOT) else str(path)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", default="block4_conv2,block5_conv1")
    parser.add_argument("--filters", type=int, default=4, help="filters per layer (stable sample)")
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--size", type=int, help="image side for both tools (default: our preview size)")
    parser.add_argument("--out", type=Path, default=OUT, help="where the grids go")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    began = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - began:5.0f}s] {message}", flush=True)

    model = bench_render.load_vgg16("embedded").model
    layers = [layer.strip() for layer in args.layers.split(",") if layer.strip()]
    results = [compare_layer(model, layer, args.filters, args.steps, args.size, args.out, log, ours_first=i % 2 == 0)
               for i, layer in enumerate(layers)]  # alternate which tool goes first
    print(f"\n{'layer':14} {'tool':13} {'s':>5} {'objective (own unit, pre-ReLU)':>34} {'spec.':>6} "
          f"{'robust.':>7} {'flat':>4}  pixel std")
    for result in results:
        for name, tool in result["tools"].items():
            objective = " ".join(f"{v:7.1f}" for v in tool["objective"])
            print(f"{result['layer']:14} {name:13} {tool['seconds']:>5.0f} {objective:>34} "
                  f"{tool['specificity']:>6.2f} {tool['robustness_median']:>7.2f} {tool['flat']:>4}  "
                  f"{tool['pixel_std']}")
        print(f"{'':14} filters {result['filters']}, {result['size']} px, {result['steps']} steps -> {result['image']}")
    log(f"done in {(time.perf_counter() - began) / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

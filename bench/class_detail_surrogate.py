#!/usr/bin/env python3
"""The classes' drawing measured on a stand-in head of real ImageNet features (docs/QUALITY.md).

The real 1,000-class head cannot be downloaded here, so class images cannot be judged on it. This
draws with the classes' own settings (`plan_layer("predictions")`: 192 px, pad 16, the head's
fixed 224 px input, `mirror-80-lr08-detail`) on a stand-in for the head: block5_conv3's channel
means on the embedded ImageNet weights, read at that fixed input. One run per unit batch, snapshots
at the end of the one-phase drawing (and at the steps of `--at`) and after the detail phase, then:
objective (at 192 px, area-averaged as the records score it), specificity among the sampled units,
median robustness, and the high-frequency share of the master (at 384 px) and of its view at 192.
`--steps`, `--detail-steps` and `--rate` draw the same way with other step counts or learning rate.

    python bench/class_detail_surrogate.py --units 8 --out bench/out/class_default
    # the rows of docs/QUALITY.md "Classes in 96 steps": the former default with its snapshots, one candidate
    python bench/class_detail_surrogate.py --units 8 --steps 256 --detail-steps 32 --rate 0.05 --at 64,80,96,128,192 --out bench/out/class_256_32
    python bench/class_detail_surrogate.py --units 8 --steps 96 --detail-steps 16 --rate 0.05 --out bench/out/class_96_16
"""

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from generator.model import load_vgg16, preprocess  # noqa: E402
from generator.optvis.objectives import layer_scores, unit_objective  # noqa: E402
from generator.optvis.render import Renderer  # noqa: E402
from generator.plan import plan_layer  # noqa: E402
from generator.quality import as_drawn, high_frequency_share, layer_quality  # noqa: E402
from generator.units import Unit, sample_indices  # noqa: E402
from PIL import Image  # noqa: E402

STAND_IN = "block5_conv3"


def measure(scores, images, units, size, pad):
    """{objective, specificity, robustness, hf_master, hf_drawn} of uint8 images (N, S, S, 3)."""
    drawn = as_drawn(images, size)
    _, summary = layer_quality(scores, drawn, units, pad=pad)
    framed = np.pad(drawn.astype(np.float32) / 255.0, [(0, 0), (pad, pad), (pad, pad), (0, 0)], constant_values=0.5)
    objective = np.asarray(scores(framed))[np.arange(len(units)), units]
    return {"objective": float(np.median(objective)),
            "specificity": summary["specificity"], "robustness": summary["robustness"],
            "flat": summary["flat"],
            "hf_master": float(np.median([high_frequency_share(image) for image in images])),
            "hf_drawn": float(np.median([high_frequency_share(image) for image in drawn]))}


def step_list(text):
    """"64,128" -> (64, 128), for argparse."""
    try:
        return tuple(int(step) for step in text.split(",") if step.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of step counts: {text!r}") from None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "class_detail")
    parser.add_argument("--steps", type=int, help="steps of the one-phase drawing (default: the classes' plan)")
    parser.add_argument("--detail-steps", type=int, help="steps of the detail phase (default: the classes' plan)")
    parser.add_argument("--rate", type=float, help="learning rate (default: the classes' plan)")
    parser.add_argument("--at", type=step_list, default=(), help="comma list of earlier steps of the one-phase "
                                                               "drawing to measure too (its rate is constant: as if it stopped there)")
    args = parser.parse_args(argv)
    settings = plan_layer("predictions").settings
    main_steps = args.steps or settings.steps - settings.detail_steps
    detail_steps = settings.detail_steps if args.detail_steps is None else args.detail_steps
    settings = replace(settings, steps=main_steps + detail_steps, detail_steps=detail_steps,
                       detail_size=settings.detail_size if detail_steps else 0, detail_view=bool(detail_steps),
                       learning_rate=args.rate or settings.learning_rate)
    earlier = sorted(set(args.at) - {main_steps})
    if any(not 0 < step < main_steps for step in earlier):
        parser.error(f"--at takes steps between 1 and {main_steps - 1}")
    units = sample_indices(STAND_IN, 512, args.units)
    model = load_vgg16("embedded").model
    scores = layer_scores(model, STAND_IN, preprocess)
    renderer = Renderer(unit_objective(scores), settings)
    began = time.perf_counter()
    snapshots = renderer.render_snapshots(units, [Unit(STAND_IN, i).seed(0) for i in units],
                                          at=(*earlier, main_steps, settings.steps))
    seconds = time.perf_counter() - began
    pad = settings.transforms.pad
    result = {"stand_in": STAND_IN, "units": [int(u) for u in units], "settings": settings.describe(),
              "seconds_per_image": seconds / len(units),
              "one_phase": measure(scores, snapshots[main_steps][0], units, settings.size, pad),
              "with_detail": measure(scores, snapshots[settings.steps][0], units, settings.size, pad),
              "earlier": {step: measure(scores, snapshots[step][0], units, settings.size, pad) for step in earlier}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    for name, step in (("one_phase", main_steps), ("with_detail", settings.steps)):
        row = np.concatenate(list(snapshots[step][0]), axis=1)
        Image.fromarray(row).save(args.out / f"{name}.webp", quality=90)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What `--diversity K` costs and gives: K images per unit pushed apart by the Gram-cosine term.

On a few units of one layer (default block3_conv1, the preview plan, the embedded weights), in
one process:
- time: one batch drawn at K = 1, 2 and 4 (the plan's penalty weight), each call made twice
  after a warm-up call, rounds interleaved (1, 2, 4, then 4, 2, 1); the ratio to K = 1 is the
  median over rounds of the per-round ratio;
- quality: for K = 4 at several penalty weights (0 = the images differ only by their seeds):
  the mean pairwise Gram cosine of each unit's K images at the diversity layer (what the term
  lowers; 1 = same style) and each image's objective as a fraction of the unit's K = 1 image.

    python bench/diversity_study.py                       # 23 minutes here under load (6 units)
    python bench/diversity_study.py --units 4 --weights ""  # timing only
    python bench/diversity_study.py --layer block4_conv2 --units 4 --weights 0,1
"""

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from generator.model import load_vgg16, preprocess  # noqa: E402
from generator.optvis.objectives import gram_similarity, layer_scores, unit_objective  # noqa: E402
from generator.optvis.render import Renderer  # noqa: E402
from generator.optvis.transform import frame  # noqa: E402
from generator.plan import DrawOptions, Quality, plan_layer  # noqa: E402
from generator.units import select_units  # noqa: E402

tf.get_logger().setLevel("ERROR")


def renderer_for(model, layer, k, batch, weight=None):
    """The Renderer of `layer`'s preview plan with K images per unit (and `weight`, if given)."""
    plan = plan_layer(layer, DrawOptions(quality=Quality.PREVIEW, diversity=k, batch_size=batch))
    settings = plan.settings if weight is None or k == 1 else replace(plan.settings, diversity_weight=weight)
    scores = layer_scores(model, layer, preprocess, plan.objective.readout, plan.diversity_layer)
    return Renderer(unit_objective(scores), settings, gram_similarity), plan


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="block3_conv1")
    parser.add_argument("--units", type=int, default=6, help="units of the layer's stable sample")
    parser.add_argument("--weights", default="0,0.3,1,3", help="penalty weights tried at K = 4 ('' : timing only)")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--save", metavar="DIR", help="save each weight's images (uint8 (units x 4, S, S, 3)) as .npy")
    args = parser.parse_args(argv)
    model = load_vgg16("embedded").network_for(args.layer)
    units = select_units(layers=args.layer, per_layer=args.units)
    indices, seeds = [u.index for u in units], [u.seed() for u in units]
    print(f"{args.layer}: units {indices}, preview plan, load average {os.getloadavg()[0]:.1f}", flush=True)

    renderers = {k: renderer_for(model, args.layer, k, len(units))[0] for k in (1, 2, 4)}
    base_images, base_scores = renderers[1].render(indices, seeds)
    if not args.no_timing:
        for renderer in renderers.values():
            renderer.render(indices, seeds)  # trace and warm up (K = 1 was traced above)
        rounds = []
        for order in ((1, 2, 4), (4, 2, 1)):
            seconds = {}
            for k in order:
                began, cpu = time.perf_counter(), time.process_time()
                renderers[k].render(indices, seeds)
                seconds[k] = (time.perf_counter() - began, time.process_time() - cpu)
            rounds.append(seconds)
            print("  round: " + ", ".join(f"K={k} {wall:.1f} s ({cpu:.1f} s CPU)"
                                          for k, (wall, cpu) in sorted(seconds.items())), flush=True)
        for k in (2, 4):
            wall = np.median([r[k][0] / r[1][0] for r in rounds])
            cpu = np.median([r[k][1] / r[1][1] for r in rounds])
            print(f"time K={k} / K=1: wall {wall:.2f}, process CPU {cpu:.2f}", flush=True)
    if not args.weights:
        return

    _, plan = renderer_for(model, args.layer, 4, len(units))
    features = layer_scores(model, args.layer, preprocess, plan.objective.readout, plan.diversity_layer)

    def similarity(images, k):
        framed = frame(tf.constant(images, tf.float32) / 255.0, plan.settings.transforms.pad)
        return gram_similarity(features(framed)[1], k).numpy()

    print(f"diversity layer {plan.diversity_layer}; plan weight {plan.settings.diversity_weight}")
    print(f"{'weight':>6} {'gram cos mean':>13} {'per unit':>40} {'objective / K=1: master':>24} {'others min':>10} "
          f"{'others median':>13}")
    for weight in [float(w) for w in args.weights.split(",")]:
        renderer, _ = renderer_for(model, args.layer, 4, len(units), weight)
        images, scores = renderer.render(indices, seeds)
        cosines = similarity(images, 4)
        fractions = scores.reshape(len(units), 4) / base_scores[:, None]
        if args.save:
            np.save(Path(args.save) / f"diversity_{args.layer}_{weight:g}.npy", images)
        print(f"{weight:6g} {cosines.mean():13.3f} {np.array2string(cosines, precision=2):>40} "
              f"{np.median(fractions[:, 0]):24.2f} {fractions[:, 1:].min():10.2f} {np.median(fractions[:, 1:]):13.2f}",
              flush=True)


if __name__ == "__main__":
    main()

"""Seconds per image per saliency method on the VGG16 conv base at 224x224 (CPU).

Usage: .venv/bin/python bench/bench_attribution.py [--repeats N] [--layers block3_conv3,block5_conv3]

Loads the embedded ImageNet conv weights (`generator.model.load_vgg16("embedded")`; the
timings do not depend on the weights), takes the chelsea photo, and for each target layer times
every method of `generator.attribution.SALIENCY_METHODS` with the default AttributionSettings, after one warm-up
call that compiles the graphs (its time is reported as "first call"). Also times the ranking
pass (`generator.ranking.MeanActivations`, all 4,224 filter means) and, as the reference for batching, tf-keras-vis'
SmoothGrad (one eager pass per sample) with the same number of samples. Takes a few minutes.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from generator.attribution import Attributor  # noqa: E402
from generator.model import load_vgg16, preprocess  # noqa: E402
from generator.photos import builtin_photos, load_photo  # noqa: E402
from generator.ranking import MeanActivations  # noqa: E402
from generator.saliency_methods import METHOD_NAMES, AttributionSettings  # noqa: E402
from generator.targets import Target  # noqa: E402


def _seconds(function, repeats):
    """Median wall-clock seconds of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _tf_keras_vis_smoothgrad(model, layer, index, x, samples, noise):
    from tf_keras_vis.saliency import Saliency

    probe = tf.keras.Model(model.inputs, model.get_layer(layer).output)
    saliency = Saliency(probe)
    return lambda: saliency(lambda out: tf.reduce_mean(out[..., index], axis=[1, 2]), x,
                            smooth_samples=samples, smooth_noise=noise)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--layers", default="block3_conv3,block5_conv3")
    args = parser.parse_args()

    loaded = load_vgg16("embedded")
    settings = AttributionSettings()
    attributor = Attributor(loaded.model, preprocess, settings)
    photo = load_photo(next(p for p in builtin_photos() if p.slug == "chelsea").path)
    print(f"VGG16 conv base, 224x224, CPU threads: {os.cpu_count()}; settings: {settings.as_record()}")

    ranker = MeanActivations(loaded.model, preprocess)
    ranker(photo[None])
    print(f"ranking pass (4,224 filter means): {_seconds(lambda: ranker(photo[None]), args.repeats):.3f} s/image")

    for layer in args.layers.split(","):
        target = Target(layer, 0)
        print(f"\ntarget {layer} #0")
        for method in METHOD_NAMES:
            start = time.perf_counter()
            attributor.maps(photo, target, [method])
            first = time.perf_counter() - start
            warm = _seconds(lambda: attributor.maps(photo, target, [method]), args.repeats)
            print(f"  {method:22s} {warm:7.2f} s/image   (first call {first:.2f} s)")
        all_methods = _seconds(lambda: attributor.maps(photo, target, METHOD_NAMES), 1)
        print(f"  {'all methods, one call':22s} {all_methods:7.2f} s/image")
        attributor.activation_maps(photo, [target])
        activation = _seconds(lambda: attributor.activation_maps(photo, [target]), args.repeats)
        print(f"  {'activation maps':22s} {activation:7.2f} s/image (all conv layers, one pass)")

        x = attributor.model_input(photo)
        reference = _tf_keras_vis_smoothgrad(loaded.model, layer, 0, x, settings.smoothgrad_samples,
                                             settings.smoothgrad_noise)
        reference()
        print(f"  {'tf-keras-vis smoothgrad':22s} {_seconds(reference, args.repeats):7.2f} s/image "
              "(its per-sample loop, same samples)")


if __name__ == "__main__":
    main()

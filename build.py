#!/usr/bin/env python3
"""Build the VGG16 Atlas: draw units, compute example saliency maps, render the site pages.

Examples:
  python build.py --preview                          # CPU-sized preview of every layer, offline
  python build.py --layers block1..block5            # every conv filter (GPU work)
  python build.py --classes all --weights imagenet   # the 1,000 class images
  python build.py --layers block4_conv2 --filters 0:16 --steps 256
  python build.py --render-only                      # re-render pages from site_src, no model

Exit codes: 0 done, 2 bad input or unusable environment (one line on stderr), 130 interrupted.
A rerun resumes: units complete with the same settings are skipped.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from generator.errors import UserError  # noqa: E402
from generator.plan import PREVIEW_LAYERS, PREVIEW_PER_LAYER  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Draw VGG16 feature visualizations and render the atlas site.",
        epilog="Layer ids: block1..block5, block3_conv1, block2_conv1..block3_conv1, predictions (classes).",
    )
    select = parser.add_argument_group("what to draw")
    select.add_argument("--layers", help="layers: e.g. block1..block5, block4_conv2, block2..block3,predictions")
    select.add_argument("--filters", help="filter indices in every selected conv layer: 0:16, 0,5,9 (default all)")
    select.add_argument("--classes", help="ImageNet classes: indices, WordNet ids, names ('water ouzel'), or all")
    select.add_argument("--per-layer", type=int, metavar="N", help="draw a stable sample of N units per layer")
    select.add_argument("--preview", action="store_true",
                        help=f"CPU-sized preview: --layers {PREVIEW_LAYERS} --per-layer {PREVIEW_PER_LAYER}, "
                             "fewer steps and smaller images, unless given")
    select.add_argument("--shard", metavar="I/N", help="draw only shard I of N (split a run across machines)")
    how = parser.add_argument_group("how to draw")
    how.add_argument("--weights", default="auto",
                     help="auto (default: imagenet if available, else embedded) | imagenet | embedded | PATH")
    how.add_argument("--size", type=int, help="image side in pixels (default: per layer, by receptive field)")
    how.add_argument("--steps", type=int, help="optimization steps (default 512; preview 128)")
    how.add_argument("--learning-rate", type=float, help="Adam learning rate (default 0.05)")
    how.add_argument("--batch-size", type=int, help="units drawn together (default per layer)")
    how.add_argument("--seed", type=int, default=0, help="run-wide seed mixed into every unit's seed")
    how.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                     help="network compute precision while drawing; bfloat16 is about 2x faster on "
                          "GPUs and AVX512_BF16 CPUs (default float32)")
    how.add_argument("--negative", action="store_true", help="also draw the image that minimizes each unit")
    how.add_argument("--force", action="store_true", help="redraw units even if complete (no resume)")
    stages = parser.add_argument_group("stages")
    stages.add_argument("--out", default="site_src", help="output directory, the MkDocs docs_dir (default site_src)")
    stages.add_argument("--images", metavar="DIR", help="example photos for saliency maps (default: bundled photos)")
    stages.add_argument("--methods", help="saliency methods, comma list (default all: vanilla, smoothgrad, "
                        "guided_backprop, gradcam, gradcam_plus_plus, scorecam, integrated_gradients)")
    stages.add_argument("--top-k", type=int, default=3, metavar="K", help="top example photos kept per filter (default 3)")
    stages.add_argument("--no-builtin-images", action="store_true", help="use only the photos of --images")
    stages.add_argument("--no-examples", action="store_true", help="skip the saliency stage")
    stages.add_argument("--render-only", action="store_true", help="only re-render the pages from --out")
    stages.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    for name in ("size", "steps", "batch_size", "per_layer", "top_k"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.learning_rate is not None and not args.learning_rate > 0:
        parser.error("--learning-rate must be positive")
    return args


def log(message):
    print(message, file=sys.stderr, flush=True)


def select(args):
    """The units the arguments ask for (validated before any model is loaded)."""
    from generator.units import parse_shard, select_units

    layers, per_layer = args.layers, args.per_layer
    if args.preview:
        layers = layers or (None if args.classes else PREVIEW_LAYERS)
        per_layer = per_layer or PREVIEW_PER_LAYER
    if not layers and not args.classes:
        raise UserError("nothing to draw: give --layers, --classes or --preview (see --help)")
    shard = parse_shard(args.shard) if args.shard else None
    return select_units(layers=layers, filters=args.filters, classes=args.classes, per_layer=per_layer, shard=shard)


def draw_options(args):
    """The typed drawing options of the arguments (validated: one line and exit 2 when out of range)."""
    from generator.plan import DrawOptions, Precision, Quality

    return DrawOptions(
        quality=Quality.PREVIEW if args.preview else Quality.FULL, size=args.size, steps=args.steps,
        learning_rate=args.learning_rate, batch_size=args.batch_size, seed=args.seed,
        precision=Precision(args.precision), negative=args.negative, resume=not args.force,
    )


def check_example_options(args):
    """Fail before any drawing on saliency options that would fail after it."""
    if args.no_examples:
        return
    if args.images and not Path(args.images).is_dir():
        raise UserError(f"--images {args.images} is not a folder; give a folder of jpg, png or webp photos")
    if args.methods:
        from generator.attribution import METHODS

        unknown = sorted(set(args.methods.split(",")) - set(METHODS))
        if unknown:
            raise UserError(f"unknown saliency method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")


def progress_bar(total):
    from tqdm import tqdm

    return tqdm(total=total, unit="unit", desc="drawing", dynamic_ncols=True, file=sys.stderr)


def render(out):
    from generator.site import render_site

    stats = render_site(Path(out))
    log(f"rendered pages into {out}: {stats}")


def print_summary(summaries, seconds):
    log(f"{'layer':<14} {'drawn':>6} {'specificity':>12} {'robustness':>11} {'flat':>5}")
    for layer, summary in summaries.items():
        if summary is None:
            continue
        log(f"{layer:<14} {summary['units']:>6} {summary['specificity']:>12.2f} "
            f"{summary['robustness']:>11.2f} {summary['flat']:>5}")
    log(f"drawing took {seconds:.0f} s")


def run(args):
    out = Path(args.out)
    if args.render_only:
        render(out)
        return 0
    units = select(args)
    if not units:
        raise UserError("the selection is empty (check --filters / --shard)")
    check_example_options(args)
    options = draw_options(args)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create output directory {out}: {error.strerror}; choose another with --out") from None
    if not os.access(out, os.W_OK):
        raise UserError(f"output directory {out} is not writable; choose another with --out")

    import tensorflow as tf

    from generator.atlas import AtlasRun
    from generator.model import load_vgg16

    tf.get_logger().setLevel("ERROR")  # one tf.function per layer is by design, not a retracing bug

    loaded = load_vgg16(args.weights, log=log)
    log(f"weights: {loaded.source} (sha256 {loaded.sha256[:12]}), {len(units)} units to draw into {out}")
    began = time.perf_counter()
    atlas = AtlasRun(loaded, out, options, progress=None if args.no_progress else progress_bar, log=log)
    summaries = atlas.run(units)
    print_summary(summaries, time.perf_counter() - began)
    if not args.no_examples:
        from generator.examples import run_examples

        run_examples(loaded, out, Path(args.images) if args.images else None,
                     units=[(u.layer, u.index) for u in units if u.kind == "filter"],
                     classes=[u.index for u in units if u.kind == "class"],
                     methods=args.methods.split(",") if args.methods else None, top_k=args.top_k,
                     include_builtin=not args.no_builtin_images, progress=not args.no_progress, log=log)
    render(out)
    return 0


def main(argv=None):
    args = parse_args(argv)
    try:
        return run(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted: finished units are saved; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

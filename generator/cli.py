"""The command line: draw units, compute example saliency maps, render the site pages.

Run as `python build.py ...` or, once installed, `vgg16-atlas ...`.

Examples:
  python build.py --preview                          # CPU-sized preview of every layer, offline
  python build.py --layers block1..block5            # every conv filter (GPU or many machines)
  python build.py --classes all --weights imagenet   # the 1,000 class images
  python build.py --layers block4_conv2 --filters 0:16 --steps 256
  python build.py --layers block1..block5 --plan --shards 64          # cost, no model
  python build.py --layers block1..block5 --shard 3/64                # one shard -> shards/shard-3/
  python build.py --merge shards/shard-* --out site_src               # merge the shards
  python build.py --render-only                      # re-render pages from site_src, no model

Exit codes: 0 done, 2 bad input or unusable environment (one line on stderr), 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM). A rerun resumes: units complete with the same settings are
skipped.
"""

import argparse
import errno
import os
import re
import signal
import sys
import time
from pathlib import Path

from .dataset_photos import DEFAULT_PATCHES, MAX_PATCHES, UNLICENSED_CHOICES
from .errors import UserError
from .example_options import ExampleOptions
from .plan import CLASS_SCHEDULE, FULL_SCHEDULES, PREVIEW_LAYERS, PREVIEW_SCHEDULES, PREVIEW_PER_LAYER, SCHEDULES, DrawOptions, Precision, Quality
from .units import MAX_SHARDS

DEFAULT_OUT = "site_src"
MAX_TOP_K = 100  # example photos kept per unit
DEFAULT_SHARDS_OUT = "shards"
RESUME_HINT = "finished units are saved: {fix}, then rerun the same command to resume"
SAFE_OS_ERRORS = {  # errno -> (what happened, what to do)
    errno.ENOSPC: ("the disk is full", RESUME_HINT.format(fix="free space or choose another --out")),
    errno.EDQUOT: ("the disk quota is exceeded", RESUME_HINT.format(fix="free space or choose another --out")),
    errno.EROFS: ("the file system is read-only", RESUME_HINT.format(fix="choose another --out")),
    errno.EACCES: ("permission denied", RESUME_HINT.format(fix="fix the permissions or choose another --out")),
    errno.ENAMETOOLONG: ("a file name is too long", "shorten the path given"),
}


def whole_number(text):
    """An integer written with ASCII digits (int() would also read other scripts' digits)."""
    if not re.fullmatch(r"[+-]?[0-9]+", text.strip()):
        raise argparse.ArgumentTypeError(f"invalid whole number: {text[:40]!r}")
    return int(text)


def decimal_number(text):
    """A number written with ASCII characters, e.g. 0.05 or 5e-2 (inf and nan are read, then refused)."""
    if not text.isascii():
        raise argparse.ArgumentTypeError(f"invalid number: {text[:40]!r}")
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text[:40]!r}") from None


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one UserError line (exit 2), without the usage text."""

    def error(self, message):
        raise UserError(f"{message} (see --help)")


def _parser():
    """The argument parser: what to draw, how, splitting across machines, stages."""
    parser = _Parser(
        description="Draw VGG16 feature visualizations and render the atlas site.",
        epilog="Layer ids: block1..block5, block3_conv1, block2_conv1..block3_conv1, predictions (classes).",
    )
    select = parser.add_argument_group("what to draw")
    select.add_argument("--layers", help="layers: e.g. block1..block5, block4_conv2, block2..block3,predictions")
    select.add_argument("--filters", help="filter indices in every selected conv layer: 0:16, 0,5,9 (default all)")
    select.add_argument("--classes", help="ImageNet classes: indices, WordNet ids, names ('water ouzel'), or all")
    select.add_argument("--per-layer", type=whole_number, metavar="N", help="draw a stable sample of N units per layer")
    select.add_argument("--preview", action="store_true",
                        help=f"CPU-sized preview: --quality preview, and --layers {PREVIEW_LAYERS} --per-layer "
                             f"{PREVIEW_PER_LAYER} unless a selection is given")
    how = parser.add_argument_group("how to draw")
    how.add_argument("--quality", choices=[q.value for q in Quality],
                     help="drawing defaults: full (the atlas, default) or preview (fewer steps, smaller images; "
                          "the classes draw as in the full atlas)")
    how.add_argument("--weights", default="auto",
                     help="auto (default: imagenet if available, else embedded) | imagenet | embedded | PATH")
    how.add_argument("--size", type=whole_number, help="image side in pixels, 8-1024 (default: per layer, by receptive field)")
    how.add_argument("--steps", type=whole_number,
                     help="optimization steps, 1-100,000 (default per layer: 512, 256 for blocks 3-5, 80 for "
                          "classes; preview 128, classes 80); on a schedule with a detail phase (every default but "
                          "block1_conv1's), the steps before it: its steps at twice the side come on top (16; 12 "
                          "for block 5 of the full atlas; never more than --steps)")
    how.add_argument("--schedule", choices=sorted(SCHEDULES),
                     help=f"drawing schedule (default for the full atlas: {FULL_SCHEDULES[1]} for blocks 1-2, "
                          f"{FULL_SCHEDULES[3]} for blocks 3-4, {FULL_SCHEDULES[5]} for block 5; for the preview: "
                          f"{PREVIEW_SCHEDULES[1]} for blocks 1-2, {PREVIEW_SCHEDULES[3]} for blocks 3-5; "
                          f"{CLASS_SCHEDULE} for the classes of both; classes take only schedules without a "
                          "coarse phase; docs/QUALITY.md)")
    how.add_argument("--learning-rate", type=decimal_number,
                     help="Adam learning rate, above 0 and at most 10 (default: the schedule's; 0.05, and 0.08 "
                          "for the classes on their default schedule)")
    how.add_argument("--batch-size", type=whole_number, help="units drawn together, 1-1,024 (default per layer)")
    how.add_argument("--seed", type=whole_number, default=0, help="run-wide seed mixed into every unit's seed")
    how.add_argument("--precision", choices=[p.value for p in Precision], default="float32",
                     help="network compute precision while drawing; bfloat16 is about 2x faster on "
                          "GPUs and AVX512_BF16 CPUs (default float32)")
    how.add_argument("--negative", action="store_true", help="also draw the image that minimizes each unit")
    how.add_argument("--diversity", type=whole_number, metavar="K", default=DrawOptions.diversity,
                     help=f"images per unit, 1-16, pushed apart by a diversity term (default {DrawOptions.diversity}: "
                          "one image; K costs K x the drawing)")
    how.add_argument("--force", action="store_true", help="redraw units even if complete (no resume)")
    split = parser.add_argument_group("splitting across machines (docs/DISTRIBUTED.md)")
    split.add_argument("--plan", action="store_true",
                       help="print what the selection costs (per layer, per shard), without loading a model")
    split.add_argument("--shards", type=whole_number, metavar="N", help="shard count, for --plan or --shard auto")
    split.add_argument("--json", action="store_true", help="with --plan: one JSON object on stdout")
    split.add_argument("--shard", metavar="I/N|auto",
                       help="draw only shard I of N (cost-balanced) into OUT/shard-I/; auto: from SLURM or "
                            "Kubernetes Indexed Job variables")
    split.add_argument("--merge", nargs="+", metavar="DIR", help="merge shard directories into --out")
    stages = parser.add_argument_group("stages")
    stages.add_argument("--out", help=f"output directory, the MkDocs docs_dir (default {DEFAULT_OUT}; "
                                      f"with --shard, the parent of shard-I/, default {DEFAULT_SHARDS_OUT})")
    stages.add_argument("--images", metavar="DIR", help="photos for the dataset examples and saliency maps, with an optional "
                        "DIR/LICENSES.csv (file,licence,credit) (default: bundled photos)")
    stages.add_argument("--methods", help="saliency methods, comma list (default all: vanilla, smoothgrad, "
                        "guided_backprop, gradcam, gradcam_plus_plus, scorecam, integrated_gradients)")
    stages.add_argument("--top-k", type=whole_number, default=3, metavar="K",
                        help="top example photos kept per filter among the saliency pages' photos (default 3)")
    stages.add_argument("--example-pages", type=whole_number, default=ExampleOptions.max_pages, metavar="N",
                        help="photos given a saliency-map page: the built-in ones, then --images in name order "
                             f"(default {ExampleOptions.max_pages}); the dataset examples rank every photo")
    stages.add_argument("--patches", type=whole_number, default=DEFAULT_PATCHES, metavar="K",
                        help=f"dataset patches kept per filter, 1-{MAX_PATCHES} (default {DEFAULT_PATCHES})")
    stages.add_argument("--unlicensed", choices=UNLICENSED_CHOICES, default="keep",
                        help="--images photos without a row in DIR/LICENSES.csv: keep (as 'licence unknown', "
                             "default) or omit")
    stages.add_argument("--no-builtin-images", action="store_true", help="use only the photos of --images")
    stages.add_argument("--no-examples", action="store_true", help="skip the dataset-examples and saliency stages")
    stages.add_argument("--examples-only", action="store_true",
                        help="only the dataset-examples and saliency stages, then the pages: the dataset examples "
                             "of the selected filters, drawn or not (no selection: the units already in --out), "
                             "saliency maps over the drawn units")
    stages.add_argument("--render-only", action="store_true", help="only re-render the pages from --out")
    stages.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def parse_args(argv):
    """The arguments, with the checks argparse cannot express (one line and exit 2 when bad)."""
    parser = _parser()
    args = parser.parse_args(argv)
    for name, highest in (("per_layer", 100_000), ("top_k", MAX_TOP_K), ("patches", MAX_PATCHES), ("shards", MAX_SHARDS)):
        value = getattr(args, name)
        if value is not None and not 1 <= value <= highest:
            parser.error(f"--{name.replace('_', '-')} must be at least 1 and at most {highest:,} (got {value})")
    for name in ("shard", "filters", "classes", "layers", "images", "weights", "methods"):
        value = getattr(args, name)
        if value is not None and not value.strip():
            parser.error(f"--{name} is empty; give a value or leave the option out")
    if args.json and not args.plan:
        parser.error("--json goes with --plan")
    if args.no_builtin_images and not args.images and not args.no_examples:
        parser.error("--no-builtin-images leaves no photos for the saliency stage; give --images DIR or --no-examples")
    modes = [flag for flag in ("plan", "merge", "render_only", "examples_only") if getattr(args, flag)]
    if len(modes) > 1 or (args.shard is not None and modes and modes != ["plan"]):
        parser.error("choose one of --plan, --shard, --merge, --render-only, --examples-only")
    if args.out is not None and not args.out.strip():
        parser.error("--out is empty; give a directory")
    return args


def log(message):
    print(message, file=sys.stderr, flush=True)


def select(args):
    """The units the arguments ask for, in stable order (validated before any model is loaded)."""
    from .units import select_units

    layers, per_layer = args.layers, args.per_layer
    if args.preview:
        layers = layers or (None if args.classes else PREVIEW_LAYERS)
        per_layer = per_layer or PREVIEW_PER_LAYER
    if not layers and not args.classes:
        raise UserError("nothing to draw: give --layers, --classes or --preview (see --help)")
    units = select_units(layers=layers, filters=args.filters, classes=args.classes, per_layer=per_layer)
    if not units:
        raise UserError("the selection is empty (check --filters)")
    return units


def draw_options(args):
    """The typed drawing options of the arguments (validated: one line and exit 2 when out of range)."""
    quality = Quality(args.quality) if args.quality else Quality.PREVIEW if args.preview else Quality.FULL
    return DrawOptions(
        quality=quality, size=args.size, steps=args.steps, learning_rate=args.learning_rate,
        batch_size=args.batch_size, seed=args.seed, precision=Precision(args.precision),
        negative=args.negative, resume=not args.force, schedule=args.schedule, diversity=args.diversity,
    )


def check_weights_source(source, units):
    """Cheap checks of --weights before TensorFlow loads: the file exists, classes have a head."""
    from .sources import source_problem

    problem = source_problem(source, needs_head=any(unit.kind == "class" for unit in units))
    if problem:
        raise UserError(problem)


def example_options(args):
    """The saliency stage's options, checked before any model loads (one line, exit 2 when bad).

    The --images folder is checked by its files' headers only: no photo is decoded.
    """
    from .example_options import ExampleOptions
    from .photos import check_images_dir
    from .saliency_methods import parse_methods

    options = ExampleOptions(methods=parse_methods(args.methods), top_k=args.top_k, max_pages=args.example_pages,
                             include_builtin=not args.no_builtin_images, images_dir=args.images)
    if options.images_dir is not None:
        check_images_dir(options.images_dir)
    return options


def dataset_options(args):
    """The dataset-examples stage's options; reads --images DIR/LICENSES.csv (one line, exit 2 when malformed)."""
    from .dataset_photos import DatasetOptions, dataset_photos

    options = DatasetOptions(patches=args.patches, unlicensed=args.unlicensed, images_dir=args.images,
                             include_builtin=not args.no_builtin_images)
    dataset_photos(options)
    return options


def writable_directory(path):
    """Create `path` if needed and check it is writable; UserError naming it otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create output directory {path}: {error.strerror}; choose another with --out") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"output directory {path} is not writable; choose another with --out")
    return path


def progress_bar(total):
    from tqdm import tqdm

    return tqdm(total=total, unit="unit", desc="drawing", dynamic_ncols=True, file=sys.stderr)


def render(out):
    from .site import render_site

    stats = render_site(Path(out))
    log(f"rendered pages into {out}: {stats}")


def print_summary(summaries, seconds=None):
    log(f"{'layer':<14} {'drawn':>6} {'specificity':>12} {'robustness':>11} {'flat':>5}")
    for layer, summary in summaries.items():
        if summary is None:
            continue
        log(f"{layer:<14} {summary['units']:>6} {summary['specificity']:>12.2f} "
            f"{summary['robustness']:>11.2f} {summary['flat']:>5}")
    if seconds is not None:
        log(f"drawing took {seconds:.0f} s")


def quiet_tensorflow():
    """Import TensorFlow without its start-up chatter on stderr (absl and oneDNN lines that
    TF_CPP_MIN_LOG_LEVEL does not silence); its Python warnings stay, one tf.function per layer
    is by design. An import error still raises, after stderr is restored."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        import tensorflow as tf
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
    tf.get_logger().setLevel("ERROR")


# --- the commands -----------------------------------------------------------------------------


def run_plan(args):
    from .cost import plan_report
    from .planning import print_plan

    units = select(args)
    report = plan_report(units, args.shards, draw_options(args))
    print_plan(report, as_json=args.json)
    return 0


def run_draw(args):
    from . import store
    from .cost import check_memory, shard_units
    from .units import parse_shard

    selection, options = select(args), draw_options(args)
    shard = parse_shard(args.shard, args.shards) if args.shard is not None else None
    if args.shards and not shard:
        raise UserError("--shards goes with --plan or --shard auto")
    units = shard_units(selection, *shard, options) if shard else selection
    out = Path(args.out or (DEFAULT_SHARDS_OUT if shard else DEFAULT_OUT))
    out = out / f"shard-{shard[0]}" if shard else out
    check_weights_source(args.weights, selection)
    check_memory(list(dict.fromkeys(unit.layer for unit in units)), options)
    examples = None if shard or args.no_examples else example_options(args)
    dataset = None if examples is None else dataset_options(args)
    with store.output_lock(writable_directory(out)):
        if shard:
            from .shards import write_shard_manifest

            write_shard_manifest(out, shard, selection, units, options)
            if not units:
                log(f"shard {shard[0]}/{shard[1]} has no units (more shards than work); nothing to draw")
                return 0
        loaded = load_model(args.weights, units)
        draw(loaded, out, units, options, args)
        if shard:
            log(f"shard {shard[0]}/{shard[1]} complete in {out}; merge the shards with --merge")
            return 0
        if examples is not None:
            from .dataset import run_dataset
            from .examples import run_examples

            filters = [(u.layer, u.index) for u in units if u.kind == "filter"]
            run_dataset(loaded, out, filters, dataset, progress=not args.no_progress, log=log)
            run_examples(loaded, out, units=filters, classes=[u.index for u in units if u.kind == "class"],
                         options=examples, progress=not args.no_progress, log=log)
        render(out)
    return 0


def load_model(weights, units=()):
    """The VGG16 of --weights; with the ImageNet head required when `units` hold classes."""
    quiet_tensorflow()
    from .model import load_vgg16

    needs_head = any(unit.kind == "class" for unit in units)
    return load_vgg16(weights, include_top=True if needs_head else None, log=log)


def draw(loaded, out, units, options, args):
    from .atlas import AtlasRun

    log(f"weights: {loaded.source} (sha256 {loaded.sha256[:12]}), {len(units)} units to draw into {out}")
    began = time.perf_counter()
    atlas = AtlasRun(loaded, out, options, progress=None if args.no_progress else progress_bar, log=log)
    print_summary(atlas.run(units), time.perf_counter() - began)


def run_examples_only(args):
    """The dataset examples of the asked filters (a selection: drawn or not; none: every drawn
    filter), the saliency stage over the drawn units, then the pages."""
    from . import store
    out = Path(args.out or DEFAULT_OUT)
    examples, dataset = example_options(args), dataset_options(args)
    asked = None
    if args.layers or args.filters or args.preview or args.classes:
        asked = [(unit.layer, unit.index) for unit in select(args) if unit.kind == "filter"]
        if not asked:
            raise UserError("--examples-only ranks photos for filters; the selection holds none (classes have no "
                            "dataset examples)")
        writable_directory(out)
    elif not out.is_dir() or not store.read_records(out):
        raise UserError(f"{out} holds no drawn units; draw some first, give the --out of a drawing run, "
                        "or select filters (--layers) to rank photos for before they are drawn")
    with store.output_lock(out):
        loaded = load_model(args.weights)
        from .dataset import run_dataset
        from .examples import run_examples_over_drawn_units

        drawn = store.read_records(out)
        filters = asked or [(record["layer"], record["index"]) for record in drawn if record["kind"] == "filter"]
        run_dataset(loaded, out, filters, dataset, progress=not args.no_progress, log=log)
        if drawn:
            run_examples_over_drawn_units(loaded, out, examples, progress=not args.no_progress, log=log)
        else:
            log("saliency maps: no drawn unit in the output yet; skipped")
        render(out)
    return 0


def run_merge(args):
    from . import store
    from .shards import check_shards

    shards, sha = check_shards([Path(d) for d in args.merge])
    units = [unit for shard in shards for unit in shard["units"]]
    if not units:
        raise UserError("the shards hold no units; nothing to merge")
    out = writable_directory(Path(args.out or DEFAULT_OUT))
    with store.output_lock(out):
        log(f"merge: {len(shards)} shards, {len(units)} units, all complete")
        loaded = load_model(args.weights, units)
        if loaded.sha256 != sha:
            raise UserError(f"--weights {args.weights} has sha256 {loaded.sha256[:12]}, the shards were drawn with "
                            f"{sha[:12]}; give the --weights the shards used")
        from .merge import merge_shards

        print_summary(merge_shards(shards, out, loaded, log=log))
        render(out)
    return 0


def run_render_only(args):
    out = Path(args.out or DEFAULT_OUT)
    if not out.is_dir():
        raise UserError(f"site source {out} is not a directory; give the --out of a drawing run")
    from . import store

    with store.output_lock(out):
        render(out)
    return 0


def run(args):
    if args.plan:
        return run_plan(args)
    if args.merge:
        return run_merge(args)
    if args.render_only:
        return run_render_only(args)
    if args.examples_only:
        return run_examples_only(args)
    return run_draw(args)


class Terminated(Exception):
    """SIGTERM (a scheduler's cancel, `kill`): stop like Ctrl-C, finished units kept."""


def _terminate(signum, frame):
    raise Terminated


def main(argv=None):
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return run(parse_args(argv))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:
        if error.errno not in SAFE_OS_ERRORS:
            raise
        what, fix = SAFE_OS_ERRORS[error.errno]
        where = f" ({str(error.filename)[:80]})" if error.filename else ""
        print(f"error: {what}{where}; {fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished units are saved; rerun the same command to resume", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated: finished units are saved; rerun the same command to resume", file=sys.stderr)
        return 143


if __name__ == "__main__":
    sys.exit(main())

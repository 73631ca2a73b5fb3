#!/usr/bin/env python3
"""Quality against cost of the drawing settings, resumable (docs/QUALITY.md).

For each layer, a stable sample of units (generator.units.sample_indices) is drawn under every
setting, batch by batch, with the embedded ImageNet weights:

  steps-64, steps-128, steps-256, steps-512   snapshots of one run of the "plain" schedule (the
                                              512-step defaults before this round), the
                                              reference the others are held to
  c2f-256, c2f-512, cos-192, ...              the candidate schedules (generator.plan.SCHEDULES)
  bf16-512, bf16-SCHEDULE                     "plain" (or the schedule) with the network in bfloat16

Every (layer, setting, unit batch) is written to OUT/LAYER/SETTING/batch-NN.json (numbers) and
.npz (images) as soon as it is drawn; a rerun skips what exists, so a killed run resumes where
it stopped. `--summary` scores each (layer, setting) over all its drawn units together
(layer-wide specificity needs them all) and writes OUT/summary.json plus a Markdown table;
`--sheets DIR` writes contact sheets (rows: settings, columns: units).

Per image a batch records the objective (the unit's channel mean before the ReLU, of the uint8
image in its gray frame, scored in float32 whatever the drawing precision), the FLOPs
(generator.cost.image_flops, every phase at its own size), and the measured wall and process CPU
seconds of its batch (snapshot settings get the share of their steps in the run's time; the
machine is shared, so compare costs by the FLOP ratio). The summary adds, from the stored
images, the high-frequency share of the luminance energy (generator.quality.high_frequency_share:
above half Nyquist) and the share of saturated channel values.

    python bench/quality_study.py --layers block3_conv1 --units 16          # first signal
    python bench/quality_study.py --units 32                                # the three layers
    python bench/quality_study.py --summary --sheets docs/images/quality    # tables and sheets
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from generator.architecture import CONV_LAYER_BY_NAME  # noqa: E402
from generator.cost import image_flops  # noqa: E402
from generator.plan import SCHEDULES, DrawOptions, Precision, plan_layer  # noqa: E402
from generator.units import Unit, sample_indices  # noqa: E402

LAYERS = ("block3_conv1", "block4_conv2", "block5_conv3")
SNAPSHOTS = (64, 128, 256, 512)
DEFAULT_RUN, BFLOAT16_RUN, BFLOAT16_PREFIX = "default", "bf16-512", "bf16-"
REFERENCE = "steps-512"
DEFAULT_RUNS = (DEFAULT_RUN, "c2f-256", "c2f-512", "cos-192", "c2f-256-sub", "c2f-256-const")
OUT = ROOT / "bench" / "out" / "quality_study"


def run_settings(run):
    """The settings names a run produces: the default run gives one per snapshot."""
    return [f"steps-{steps}" for steps in SNAPSHOTS] if run == DEFAULT_RUN else [run]


def run_options(run):
    """DrawOptions of a run (full-atlas quality)."""
    if run == DEFAULT_RUN:
        return DrawOptions(schedule="plain")
    if run == BFLOAT16_RUN:
        return DrawOptions(schedule="plain", precision=Precision.BFLOAT16)
    if run.startswith(BFLOAT16_PREFIX):
        return DrawOptions(schedule=run[len(BFLOAT16_PREFIX):], precision=Precision.BFLOAT16)
    return DrawOptions(schedule=run)


def setting_plan(layer, setting):
    """The LayerPlan a setting's images were drawn with."""
    if setting.startswith("steps-"):
        return plan_layer(layer, DrawOptions(schedule="plain", steps=int(setting.split("-")[1])))
    return plan_layer(layer, run_options(setting))


def batches(layer, units):
    """The layer's sample of `units` units cut into plan batches: [(batch index, unit indices)].

    Batch b holds the units that the sample of (b + 1) x batch units adds to the sample of b x
    batch units (sorted), so a batch's units do not depend on `units`: a study grown from 16 to 32
    units keeps its first batches.
    """
    count, size = CONV_LAYER_BY_NAME[layer].filters, plan_layer(layer).settings.batch_size
    groups = []
    for b, start in enumerate(range(0, units, size)):
        before = set(sample_indices(layer, count, start))
        groups.append((b, [i for i in sample_indices(layer, count, min(start + size, units)) if i not in before]))
    return groups


def stored_units(path):
    """The unit indices a stored batch holds, or None when it is missing."""
    return json.loads(path.read_text(encoding="utf-8"))["units"] if path.exists() else None


def batch_path(out, layer, setting, batch):
    return out / layer / setting / f"batch-{batch:02d}.json"


def write_json_atomic(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def write_npz_atomic(path, **arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(temporary, **arrays)
    os.replace(temporary, path)


class Study:
    """Draws and records batches; holds the model and one float32 scorer per layer."""

    def __init__(self, out, log):
        from generator.model import load_vgg16

        self.out, self.log = out, log
        self.loaded = load_vgg16("embedded")
        self._models = {}
        self._scorers = {}

    def model(self, precision):
        from generator.model import with_precision

        if precision not in self._models:
            self._models[precision] = with_precision(self.loaded.model, precision)
        return self._models[precision]

    def scorer(self, layer):
        """float32 scores of every unit of `layer`: f(images (B, H, W, 3) in [0, 1]) -> (B, units)."""
        from generator.model import preprocess
        from generator.optvis.objectives import layer_scores

        if layer not in self._scorers:
            self._scorers[layer] = layer_scores(self.loaded.model, layer, preprocess)
        return self._scorers[layer]

    def draw(self, layer, run, batch, units):
        """Draw one batch of one run and write every setting it produces."""
        from generator.model import preprocess
        from generator.optvis.objectives import layer_scores, unit_objective
        from generator.optvis.render import Renderer

        options = run_options(run)
        plan = plan_layer(layer, options)
        objective = unit_objective(layer_scores(self.model(options.precision.value), layer, preprocess))
        renderer = Renderer(objective, plan.settings)
        seeds = [Unit(layer, i).seed(0) for i in units]
        load = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), time.process_time()
        steps = SNAPSHOTS if run == DEFAULT_RUN else (plan.settings.steps,)
        snapshots = renderer.render_snapshots(units, seeds, at=steps)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        for setting, step in zip(run_settings(run), steps):
            images = snapshots[step][0]
            share = step / plan.settings.steps
            self.record(layer, setting, batch, units, seeds, images, dict(
                wall_seconds_per_image=wall * share / len(units), cpu_seconds_per_image=cpu * share / len(units),
                load_average_at_start=load, timing="measured" if share == 1 else f"measured run x {share:g}"))
        self.log(f"{layer} {run} batch {batch}: {len(units)} images, {wall:.0f} s wall, load {load:.1f}")

    def record(self, layer, setting, batch, units, seeds, images, timing):
        import tensorflow as tf

        from generator.optvis.transform import frame

        from generator.quality import as_drawn

        plan = setting_plan(layer, setting)
        seen = as_drawn(images, plan.settings.size)
        framed = frame(tf.constant(seen, tf.float32) / 255.0, plan.settings.transforms.pad)
        own = self.scorer(layer)(framed).numpy()[np.arange(len(units)), units]
        path = batch_path(self.out, layer, setting, batch)
        write_npz_atomic(path.with_suffix(".npz"), images=images, units=np.asarray(units))
        write_json_atomic(path, {
            "layer": layer, "setting": setting, "batch": batch, "units": [int(u) for u in units],
            "seeds": seeds, "settings": plan.settings.describe(), "phases": plan.phases,
            "flops_per_image": image_flops(plan), "objective": [round(float(v), 3) for v in own],
            **timing,
        })


def pending(out, layers, units, runs):
    """[(layer, run, batch, unit indices)] not yet on disk, in the order they are drawn: batch by
    batch, each batch over the layers, each layer over the runs (early signal on every layer)."""
    jobs = []
    per_layer = {layer: batches(layer, units) for layer in layers}
    for b in range(max(len(groups) for groups in per_layer.values())):
        for layer in layers:
            if b >= len(per_layer[layer]):
                continue
            units_of_batch = per_layer[layer][b][1]
            for run in runs:  # a stored batch with other units (an older cut) is drawn again
                if any(stored_units(batch_path(out, layer, s, b)) != units_of_batch for s in run_settings(run)):
                    jobs.append((layer, run, b, units_of_batch))
    return jobs


# ------------------------------------------------------------------ summary


def load_setting(out, layer, setting):
    """(records in batch order, images uint8 (N, S, S, 3)) of one (layer, setting), or None."""
    paths = sorted((out / layer / setting).glob("batch-*.json"))
    if not paths:
        return None
    records, images, seen = [], [], set()
    for path in paths:  # a unit stored twice (batches cut differently before) counts once
        record = json.loads(path.read_text(encoding="utf-8"))
        keep = [j for j, unit in enumerate(record["units"]) if unit not in seen]
        seen.update(record["units"])
        if keep:
            records.append(dict(record, units=[record["units"][j] for j in keep],
                                objective=[record["objective"][j] for j in keep]))
            images.append(np.load(path.with_suffix(".npz"))["images"][keep])
    return records, np.concatenate(images)


def summarize_setting(study, layer, setting, records, images, reference):
    """One row of the summary: the setting's numbers over all its drawn units (the image measures
    are computed here from the stored images, so they follow the current definitions)."""
    from generator.quality import VARIANT_NAMES, as_drawn, high_frequency_share, layer_quality, saturated_share, \
        variant_activations

    units = [u for record in records for u in record["units"]]
    objective = dict(zip(units, [v for record in records for v in record["objective"]]))
    settings = setting_plan(layer, setting).settings
    pad, drawn = settings.transforms.pad, images
    images = as_drawn(drawn, settings.size)  # a detail phase's images as the network sees them
    _, quality = layer_quality(study.scorer(layer), images, units, pad)
    ratios = [objective[u] / reference[u] for u in units if u in reference and reference[u] > 0]
    own = np.asarray([objective[u] for u in units], np.float32)[:, None]
    by_variant = np.median(variant_activations(study.scorer(layer), images, units, pad) / np.maximum(own, 1e-6), axis=0)
    flops = records[0]["flops_per_image"]
    return {
        "layer": layer, "setting": setting, "units": len(units), "settings": records[0]["settings"],
        "objective_fraction_median": round(float(np.median(ratios)), 4) if ratios else None,
        "objective_fraction_units": len(ratios),
        "specificity": quality["specificity"], "robustness_median": quality["robustness"], "flat": quality["flat"],
        "kept_by_variant_median": {name: round(float(v), 4) for name, v in zip(VARIANT_NAMES, by_variant)},
        "high_frequency_share_median": round(float(np.median([high_frequency_share(i) for i in images])), 5),
        "saturated_share_median": round(float(np.median([saturated_share(i) for i in images])), 5),
        "image_side": int(drawn.shape[1]),
        "high_frequency_share_drawn_median": round(float(np.median([high_frequency_share(i) for i in drawn])), 5),
        "gflops_per_image": round(flops / 1e9, 1),
        "wall_seconds_per_image": round(float(np.mean([r["wall_seconds_per_image"] for r in records])), 2),
        "cpu_seconds_per_image": round(float(np.mean([r["cpu_seconds_per_image"] for r in records])), 2),
        "load_average_range": [min(r["load_average_at_start"] for r in records),
                               max(r["load_average_at_start"] for r in records)],
    }


def summarize(study, out):
    """Score every (layer, setting) on disk; write OUT/summary.json; return its rows."""
    rows = []
    for layer_dir in sorted(path for path in out.iterdir() if path.is_dir()):
        layer = layer_dir.name
        found = {s.name: load_setting(out, layer, s.name) for s in sorted(layer_dir.iterdir()) if s.is_dir()}
        reference = {}
        if found.get(REFERENCE):
            for record in found[REFERENCE][0]:
                reference.update(zip(record["units"], record["objective"]))
        default_flops = found[REFERENCE][0][0]["flops_per_image"] if found.get(REFERENCE) else None
        for setting in sorted(found, key=setting_order):
            if found[setting] is None:
                continue
            row = summarize_setting(study, layer, setting, *found[setting], reference)
            row["relative_flops"] = round(row["gflops_per_image"] * 1e9 / default_flops, 3) if default_flops else None
            rows.append(row)
            study.log(f"{layer} {setting}: {row['units']} units scored")
    write_json_atomic(out / "summary.json", {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                             "rows": rows})
    return rows


def setting_order(setting):
    """Snapshots first in step order, then the candidates by name."""
    if setting.startswith("steps-"):
        return (0, int(setting.split("-")[1]), "")
    return (1, 0, setting)


def kept(row):
    """The median kept activation per robustness variant, shifts first, as "0.96 0.96 / 0.79 / 0.87"."""
    values = list(row["kept_by_variant_median"].values())
    return f"{values[0]:.2f} {values[1]:.2f} / {values[2]:.2f} / {values[3]:.2f}"


def markdown(rows):
    """The summary as a Markdown table."""
    lines = ["| layer | setting | units | FLOPs vs 512 | objective vs 512 | specificity | robustness (median) "
             "| kept: shifts / x0.9 / x1.1 | flat | HF share (median) | saturated (median) | wall s / image "
             "| CPU s / image |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        fraction = "" if r["objective_fraction_median"] is None else f"{r['objective_fraction_median']:.3f}"
        lines.append(f"| {r['layer']} | {r['setting']} | {r['units']} | {r['relative_flops']} | {fraction} | "
                     f"{r['specificity']:.3f} | {r['robustness_median']:.3f} | {kept(r)} | {r['flat']} | "
                     f"{r['high_frequency_share_median']:.4f} | {r['saturated_share_median']:.3f} | "
                     f"{r['wall_seconds_per_image']:.1f} | {r['cpu_seconds_per_image']:.1f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------ contact sheets


def contact_sheet(out, layer, settings, columns=8):
    """A PIL image: one row per setting (label on the left), the first `columns` units drawn in
    every listed setting, in sample order, at the largest setting's pixels (smaller images enlarged
    by Lanczos); None when no unit is common to all of them."""
    from PIL import Image, ImageDraw

    loaded = {s: load_setting(out, layer, s) for s in settings}
    loaded = {s: v for s, v in loaded.items() if v is not None}
    if not loaded:
        return None
    by_setting = {s: dict(zip([u for r in recs for u in r["units"]], images)) for s, (recs, images) in loaded.items()}
    common = [u for u in next(iter(by_setting.values())) if all(u in m for m in by_setting.values())][:columns]
    if not common:
        return None
    tile, label, gap = max(m[common[0]].shape[0] for m in by_setting.values()), 160, 4
    sheet = Image.new("RGB", (label + len(common) * (tile + gap), 18 + len(by_setting) * (tile + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, unit in enumerate(common):
        draw.text((label + c * (tile + gap) + 2, 3), f"#{unit}", fill="black")
    for r, (setting, images) in enumerate(by_setting.items()):
        y = 18 + r * (tile + gap)
        draw.text((4, y + tile // 2 - 6), setting, fill="black")
        for c, unit in enumerate(common):  # smaller images (no detail phase) enlarged, as a browser would
            picture = Image.fromarray(images[unit])
            if picture.width < tile:
                picture = picture.resize((tile, tile), Image.LANCZOS)
            sheet.paste(picture, (label + c * (tile + gap), y))
    return sheet


def write_sheets(out, directory, settings):
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for layer_dir in sorted(path for path in out.iterdir() if path.is_dir()):
        sheet = contact_sheet(out, layer_dir.name, settings)
        if sheet is not None:
            path = directory / f"{layer_dir.name}.webp"
            sheet.save(path, quality=88, method=6)
            written.append(path)
    return written


# ------------------------------------------------------------------ command line


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", default=",".join(LAYERS))
    parser.add_argument("--units", type=int, default=32, help="units per layer (a stable sample)")
    parser.add_argument("--runs", default=",".join(DEFAULT_RUNS),
                        help=f"runs to draw: {DEFAULT_RUN} (the snapshots), {BFLOAT16_RUN}, bf16-SCHEDULE, or schedules: "
                             + ", ".join(SCHEDULES))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--summary", action="store_true", help="score what is drawn; write summary.json")
    parser.add_argument("--sheets", type=Path, help="write contact sheets to this folder")
    parser.add_argument("--sheet-settings", default="steps-128,steps-512,c2f-256,c2f-256-sub,c2f-512,cos-192")
    parser.add_argument("--copy-summary", type=Path, help="also copy summary.json here (for committing)")
    args = parser.parse_args(argv)
    layers = [layer.strip() for layer in args.layers.split(",") if layer.strip()]
    runs = [run.strip() for run in args.runs.split(",") if run.strip()]
    bad = [layer for layer in layers if layer not in CONV_LAYER_BY_NAME] + \
          [run for run in runs if run.removeprefix(BFLOAT16_PREFIX) not in SCHEDULES
           and run not in (DEFAULT_RUN, BFLOAT16_RUN)]
    if bad or args.units < 1:
        parser.exit(2, f"quality_study.py: unknown layer or run {', '.join(bad) or ''} (or --units < 1)\n")
    return args, layers, runs


def main(argv=None):
    args, layers, runs = parse_args(argv)

    def log(message):
        print(time.strftime("%H:%M:%S"), message, flush=True)

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    study = Study(args.out, log)
    if not (args.summary or args.sheets):
        jobs = pending(args.out, layers, args.units, runs)
        log(f"{len(jobs)} batches to draw")
        for layer, run, batch, units in jobs:
            study.draw(layer, run, batch, units)
    if args.summary:
        rows = summarize(study, args.out)
        print(markdown(rows))
        if args.copy_summary:
            write_json_atomic(args.copy_summary, json.loads((args.out / "summary.json").read_text()))
    if args.sheets:
        for path in write_sheets(args.out, args.sheets, args.sheet_settings.split(",")):
            log(f"wrote {path}")


if __name__ == "__main__":
    main()

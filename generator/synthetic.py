"""Synthetic atlas data for tests and benchmarks, built with the records contract's own builders.

No model is involved: every image is a smooth, deterministic colour pattern, and every record,
example and manifest comes from `generator.records` and is written through `generator.store`
like a real run. Importable (`make_synthetic_atlas`, `filter_record`, `class_record`, ...) and
runnable:

    python -m generator.synthetic OUT_DIR                 # full size: 4,224 filters + 1,000 classes
    python -m generator.synthetic OUT_DIR --filters-per-layer 4 --classes 10 --examples
"""

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import records, store
from .architecture import CLASS_LAYER, CONV_LAYER_BY_NAME, CONV_LAYERS, NUM_CLASSES
from .classes import load_classes
from .fileio import atomic_write_json
from .plan import DrawOptions, plan_layer

SYNTHETIC_SHA256 = "0" * 64
SYNTHETIC_VERSIONS = {"generator": "0.1.0", "tensorflow": "2.21.0", "keras": "3.15.1"}
SYNTHETIC_CREATED = "2026-11-28T01:02:03Z"
PHOTO_SIZE = 224

# Example photos: slug, title, licence, source. The title exercises quotes, apostrophes and "&".
SYNTHETIC_EXAMPLES = (
    ("chelsea", "Chelsea the cat, \"tabby\" & friends", "CC0", "Stefan van der Walt (scikit-image)"),
    ("coffee", "Coffee cup's saucer", "CC0", "Rachel Michetti (scikit-image)"),
)
SALIENCY_METHODS = ("vanilla", "smoothgrad", "gradcam")


def pattern_image(seed, size, noise=30.0):
    """A (size, size, 3) uint8 RGB pattern, a deterministic function of `seed`.

    A few oriented sinusoids per channel plus pixel noise of standard deviation `noise`: at 48 px
    its 96 px WebP thumbnail is about 6 KB, like the thumbnails of real feature visualizations
    (6-8 KB in a preview run), so page weights measured on a synthetic atlas are realistic.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    channels = []
    for _ in range(3):
        frequencies = rng.uniform(1.0, 6.0, size=(3, 2))
        phases = rng.uniform(0.0, 2 * np.pi, size=3)
        wave = sum(np.sin(2 * np.pi * (fy * y + fx * x) + phase) for (fy, fx), phase in zip(frequencies, phases))
        channels.append(wave / 3.0)
    rgb = (np.stack(channels, axis=-1) * 0.5 + 0.5) * 255.0 + rng.normal(0.0, noise, (size, size, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _settings(layer, size, seed, negative=False, diversity=1):
    """The record settings a real run would write for `layer`, at image side `size`."""
    options = DrawOptions(negative=negative, diversity=diversity)
    if layer != CLASS_LAYER:
        return plan_layer(layer, replace(options, size=size)).record_settings(seed, options)
    plan = plan_layer(layer)  # classes have a fixed size: only the synthetic image is smaller
    detail = 2 * size if plan.settings.detail_size else 0  # its detail phase keeps its ratio
    settings = replace(plan.settings, size=size, detail_size=detail)
    return replace(plan, settings=settings).record_settings(seed, options)


def _provenance():
    return {
        "weights_source": "embedded",
        "weights_sha256": SYNTHETIC_SHA256,
        "versions": dict(SYNTHETIC_VERSIONS),
        "created": SYNTHETIC_CREATED,
        "seconds": 1.25,
        "batch_size": 8,
    }


def _scored(record, specific, robustness, flat):
    quality = {"specificity": specific, "specificity_margin": 0.5 if specific else -0.5,
               "robustness": robustness, "flat": flat}
    return records.with_quality(record, quality)


def filter_record(layer, index, size=32, negative=False, diversity=1):
    """The record of filter `index` of conv layer `layer` (e.g. "block4_conv2", 17), drawn with
    `diversity` images."""
    seed = 1000 * CONV_LAYERS.index(CONV_LAYER_BY_NAME[layer]) + index
    record = records.unit_record(layer, index, _settings(layer, size, seed, negative, diversity), _provenance(),
                                 objective=1.0 + index / 10, negative=negative, diverse=diversity - 1)
    return _scored(record, specific=index % 5 != 4, robustness=0.75, flat=index % 7 == 6)


def class_record(imagenet_class, size=32):
    """The record of the `predictions` unit of an `ImageNetClass`."""
    record = records.unit_record(CLASS_LAYER, imagenet_class.index,
                                 _settings(CLASS_LAYER, size, 900_000 + imagenet_class.index), _provenance(),
                                 objective=20.0)
    return _scored(record, specific=True, robustness=0.8, flat=False)


def write_synthetic_unit(site_src, record):
    """Write a record and its images (master, thumbnail, optional negative, kernel and diverse
    images) via the store."""
    seed = record["settings"]["seed"]
    side = records.master_side(record["settings"])
    master = pattern_image(seed, side)
    images = {record["images"]["master"]: master, record["images"]["thumb"]: store.thumbnail(master)}
    if record["images"]["negative"]:
        images[record["images"]["negative"]] = 255 - master
    if record["images"]["kernel"]:
        kernel = pattern_image(seed + 1, 3, noise=0.0)
        images[record["images"]["kernel"]] = np.repeat(np.repeat(kernel, 32, axis=0), 32, axis=1)
    for number, name in enumerate(record["images"].get("diverse", []), start=1):
        images[name] = pattern_image(seed + 7 * number, side)
    store.write_unit(records.unit_dir(site_src, record["layer"], record["index"]), record, images)


def build_manifest(unit_records, has_top=True):
    """The manifest (generator.records.manifest) describing `unit_records`."""
    quality = {}
    for record in unit_records:
        quality[record["layer"]] = {"units": quality.get(record["layer"], {}).get("units", 0) + 1,
                                    "specificity": 0.8, "robustness": 0.75, "flat": 0}
    quality.pop(CLASS_LAYER, None)
    weights = {"source": "embedded", "sha256": SYNTHETIC_SHA256, "has_top": has_top}
    return records.manifest(records.sort_records(unit_records), weights, quality, SYNTHETIC_CREATED)


def write_synthetic_examples(site_src, unit_records, unit_indices=(0, 17)):
    """Write the example photos and top_examples.json for the filters among `records` whose
    index is in `unit_indices` (the "asked units"); every example is in every such unit's top-k.

    Files and fields follow generator.records except maps.npz, which the site does not read.
    Returns the example records.
    """
    examples_dir = Path(site_src, records.EXAMPLES_DIR)
    classes = load_classes()
    asked = [r for r in unit_records if r["kind"] == "filter" and r["index"] in unit_indices]
    examples = []
    top = {f"{r['layer']}/{r['index']}": [] for r in asked}
    for number, (slug, title, licence, source) in enumerate(SYNTHETIC_EXAMPLES):
        top_class, other_class = classes[281 + number], classes[607]
        maps = [{"method": m, "target": f"class {top_class.index} {top_class.name}", "overlay": f"{m}.webp",
                 "array": m, "scale": 1.0} for m in SALIENCY_METHODS]
        maps.append({"method": "gradcam", "target": f"class {other_class.index} {other_class.name}",
                     "overlay": f"class-{other_class.index}-gradcam.webp", "array": f"class-{other_class.index}-gradcam",
                     "scale": 1.0})
        units = []
        for record in asked:
            stem = f"units/{record['layer']}-{record['index']}"
            for suffix in ("attribution", "activation"):
                store.save_image(examples_dir / slug / f"{stem}-{suffix}.webp", pattern_image(record["index"] + number, 32))
            units.append({
                "layer": record["layer"], "index": record["index"], "target": record["label"], "rank": number,
                "activation": round(10.0 - number, 2), "method": "guided_backprop",
                "attribution": f"{stem}-attribution.webp", "activation_map": f"{stem}-activation.webp",
                "arrays": [f"{stem}-attribution".replace("/", "-"), f"{stem}-activation".replace("/", "-")],
                "scales": [1.0, 1.0],
            })
            top[f"{record['layer']}/{record['index']}"].append({
                "slug": slug, "activation": round(10.0 - number, 2), "photo": f"examples/{slug}/photo.webp",
                "attribution": f"examples/{slug}/{stem}-attribution.webp",
                "activation_map": f"examples/{slug}/{stem}-activation.webp",
            })
        example = {
            "schema": 1, "slug": slug, "title": title, "source": source, "licence": licence,
            "url": records.example_url(slug), "photo": "photo.webp",
            "predictions": [
                {"index": c.index, "wnid": c.wnid, "label": c.name, "probability": round(0.5 / (rank + 1), 4)}
                for rank, c in enumerate((top_class, classes[282], other_class))
            ],
            "maps": maps,
            "units": units,
            "diagnostics": {maps[0]["target"]: {"score": 15.0, "integrated_gradients_completeness": 0.98}},
            "settings": {"size": PHOTO_SIZE, "resize": "center_crop", "photo_sha256": SYNTHETIC_SHA256,
                         "methods": list(SALIENCY_METHODS), "targets": [maps[0]["target"]],
                         "units": [r["label"] for r in asked], "unit_method": "guided_backprop"},
            "provenance": _provenance(),
        }
        store.save_image(examples_dir / slug / "photo.webp", pattern_image(10 + number, PHOTO_SIZE))
        for offset, entry in enumerate(maps):
            store.save_image(examples_dir / slug / entry["overlay"], pattern_image(20 + 4 * number + offset, PHOTO_SIZE))
        atomic_write_json(examples_dir / slug / "example.json", example)
        examples.append(example)
    atomic_write_json(examples_dir / "top_examples.json", top)
    return examples


def make_synthetic_atlas(
    site_src,
    filters_per_layer=None,
    filter_indices=None,
    class_indices=None,
    image_size=48,
    examples=False,
    has_top=True,
):
    """Write a synthetic atlas under `site_src` and return its manifest.

    Args:
        site_src: the docs directory to fill (created if needed).
        filters_per_layer: computed filters per conv layer, the first N of each; None = all 4,224.
        filter_indices: {layer: [indices]} added on top of `filters_per_layer`.
        class_indices: class indices with an image; None = all 1,000.
        image_size: side of the master images (thumbnails are always 96x96); 48 (the size of
            block1 in a real run) gives thumbnails of realistic weight.
        examples: also write the example photos and top_examples.json.
        has_top: the manifest's weights.has_top (class images need the ImageNet head).
    """
    unit_records = []
    for layer in CONV_LAYERS:
        count = layer.filters if filters_per_layer is None else min(filters_per_layer, layer.filters)
        indices = sorted(set(range(count)) | set((filter_indices or {}).get(layer.name, ())))
        unit_records += [filter_record(layer.name, index, image_size, negative=index == 0) for index in indices]
    classes = load_classes()
    chosen = range(NUM_CLASSES) if class_indices is None else sorted(set(class_indices))
    unit_records += [class_record(classes[index], image_size) for index in chosen]
    for record in unit_records:
        write_synthetic_unit(site_src, record)
    if examples:
        write_synthetic_examples(site_src, unit_records)
    manifest = build_manifest(unit_records, has_top=has_top)
    store.write_manifest(site_src, manifest)
    return manifest


# The small atlas of the tests: search targets (filter 17 next to 170.., "tiger" next to
# "tiger shark"), labels with apostrophes and hyphens, and a few units per layer.
SMALL_ATLAS_FILTERS = {"block4_conv2": [17, 170, 171, 175]}
SMALL_ATLAS_CLASSES = (3, 20, 165, 282, 292, 607, 739)  # tiger shark, water ouzel, black-and-tan coonhound,
#                                                          tiger cat, tiger, jack-o'-lantern, potter's wheel
SMALL_ATLAS_DIVERSE = ("block4_conv2", 170, 3)  # one unit drawn with --diversity 3


def make_small_atlas(site_src):
    """The tests' atlas: 3 filters per layer plus SMALL_ATLAS_FILTERS, SMALL_ATLAS_CLASSES, examples;
    SMALL_ATLAS_DIVERSE's unit with several images."""
    manifest = make_synthetic_atlas(
        site_src, filters_per_layer=3, filter_indices=SMALL_ATLAS_FILTERS,
        class_indices=SMALL_ATLAS_CLASSES, image_size=32, examples=True,
    )
    layer, index, diversity = SMALL_ATLAS_DIVERSE
    write_synthetic_unit(site_src, filter_record(layer, index, 32, diversity=diversity))
    return manifest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="site_src directory to create (e.g. a temp dir)")
    parser.add_argument("--filters-per-layer", type=int, default=None, help="default: all filters")
    parser.add_argument("--classes", type=int, default=NUM_CLASSES, help="classes with an image (the first N)")
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--examples", action="store_true", help="also write example photos")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    manifest = make_synthetic_atlas(
        args.out, args.filters_per_layer, class_indices=range(args.classes),
        image_size=args.image_size, examples=args.examples,
    )
    print(f"{len(manifest['units'])} units written to {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()

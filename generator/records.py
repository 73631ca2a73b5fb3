"""The records contract: what the compute stages write under `site_src/` and the site reads.

One place for
- the URLs of units and example photos (stable: papers and issues cite them);
- the JSON Schemas of the unit record (`unit.json`), the manifest (`vgg16/manifest.json`) and
  the example record (`examples/<slug>/example.json`), checked with `jsonschema`;
- the builders of those documents, so every writer (the drawing stage, the merge, the saliency
  stage, the synthetic atlas of the tests and benchmarks) produces the same shape.

docs/ARCHITECTURE.md shows each document with an example. Records are plain JSON objects; the
`TypedDict`s below name their fields for readers and type checkers.
"""

from datetime import datetime, timezone
from pathlib import Path
from typing import NotRequired, TypedDict

import jsonschema

from . import __version__
from .architecture import (
    CLASS_LAYER,
    CONV_LAYER_BY_NAME,
    CONV_LAYERS,
    MODEL_NAME,
    NUM_CLASSES,
)
from .classes import load_classes
from .errors import UserError

SCHEMA = 1
UNIT_RECORD_NAME = "unit.json"
MANIFEST_NAME = "manifest.json"
EXAMPLES_DIR = "examples"
EXAMPLE_RECORD_NAME = "example.json"
TOP_EXAMPLES_NAME = "top_examples.json"
DATASET_RECORD_NAME = "dataset.json"
EXAMPLE_PHOTO_NAME, EXAMPLE_ARRAYS_NAME = "photo.webp", "maps.npz"
MASTER_NAME, THUMB_NAME, NEGATIVE_NAME, KERNEL_NAME = "image.webp", "thumb.webp", "negative.webp", "kernel.png"
DIVERSE_NAME = "diverse-{}.webp"  # --diversity K: the unit's images 1..K-1 beside the master (image 0)
MAX_DIVERSE = 15  # --diversity is at most 16


class InvalidRecord(UserError):
    """A record or manifest on disk that does not follow the contract; the message names the file."""


# --- URLs -------------------------------------------------------------------------------------


def unit_url(layer, index):
    """URL of a unit relative to the site root.

    Filters: "vgg16/<layer>/<index>/"; classes (layer "predictions"): "vgg16/classes/<index>-<slug>/".
    Raises KeyError / IndexError for a unit VGG16 does not have (see `is_unit`).
    """
    if layer == CLASS_LAYER:
        return f"{MODEL_NAME}/classes/{load_classes()[index].dir_name}/"
    CONV_LAYER_BY_NAME[layer]  # noqa: B018 - a KeyError names an unknown layer
    return f"{MODEL_NAME}/{layer}/{index}/"


def is_unit(layer, index):
    """True when VGG16 has unit (`layer`, `index`): a conv filter or one of the 1,000 classes."""
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        return False
    if layer == CLASS_LAYER:
        return index < NUM_CLASSES
    return layer in CONV_LAYER_BY_NAME and index < CONV_LAYER_BY_NAME[layer].filters


def unit_dir(site_src, layer, index):
    """Directory of a unit's files under `site_src`: its URL path."""
    return Path(site_src, unit_url(layer, index))


def layer_dir(site_src, layer):
    """Directory holding every unit directory of `layer` (classes: vgg16/classes/)."""
    return Path(site_src, MODEL_NAME, "classes" if layer == CLASS_LAYER else layer)


def manifest_path(site_src):
    return Path(site_src, MODEL_NAME, MANIFEST_NAME)


def example_url(slug):
    """URL of an example photo's page relative to the site root: "examples/<slug>/"."""
    return f"{EXAMPLES_DIR}/{slug}/"


# --- shapes -----------------------------------------------------------------------------------


class Images(TypedDict):
    master: str
    thumb: str
    negative: str | None
    kernel: str | None
    diverse: NotRequired[list]  # only with --diversity K > 1: the K - 1 other images, DIVERSE_NAME


class Provenance(TypedDict):
    weights_source: str  # imagenet | embedded | path:<file name>
    weights_sha256: str
    versions: dict  # {"generator", "tensorflow", "keras", "python", ...}
    created: str  # UTC, "2026-11-28T01:02:03Z"
    seconds: float
    batch_size: int


class Results(TypedDict):
    objective: float
    specific: bool | None
    specificity: float | None  # own activation minus the best other image's; None alone or unscored
    robustness: float | None
    flat: bool | None


class UnitRecord(TypedDict):
    schema: int
    model: str
    layer: str
    index: int
    kind: str  # "filter" | "class"
    label: str
    wnid: str | None
    url: str
    images: Images
    settings: dict  # how it was made; generator.plan.LayerPlan.record_settings
    provenance: Provenance
    results: Results


def _document_schema(title, required, properties):
    """A JSON Schema (draft 2020-12) of one of our documents: an object with `"schema": SCHEMA`
    and these required keys and properties."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, "type": "object",
            "required": ["schema", *required], "properties": {"schema": {"const": SCHEMA}, **properties}}


_FILE_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.(webp|png)$"}
_OPTIONAL_FILE_NAME = {"anyOf": [_FILE_NAME, {"type": "null"}]}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_TIMESTAMP = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"}
_LAYER = {"enum": [layer.name for layer in CONV_LAYERS] + [CLASS_LAYER]}

UNIT_SCHEMA = _document_schema(
    "unit.json",
    required=["model", "layer", "index", "kind", "label", "wnid", "url", "images", "settings",
              "provenance", "results"],
    properties={
        "model": {"const": MODEL_NAME},
        "layer": _LAYER,
        "index": {"type": "integer", "minimum": 0},
        "kind": {"enum": ["filter", "class"]},
        "label": {"type": "string", "minLength": 1},
        "wnid": {"type": ["string", "null"], "pattern": r"^n\d{8}$"},
        "url": {"type": "string"},
        "images": {
            "type": "object",
            "required": ["master", "thumb"],
            "properties": {"master": _FILE_NAME, "thumb": _FILE_NAME, "negative": _OPTIONAL_FILE_NAME,
                           "kernel": _OPTIONAL_FILE_NAME,
                           "diverse": {"type": "array", "items": _FILE_NAME, "minItems": 1,
                                       "maxItems": MAX_DIVERSE}},
            "additionalProperties": False,
        },
        "settings": {
            "type": "object",
            "required": ["objective", "size", "steps", "seed"],
            "properties": {
                "objective": {"enum": ["channel_preact", "neuron_preact", "class_logit"]},
                "size": {"type": "integer", "minimum": 1},
                "steps": {"type": "integer", "minimum": 1},
                "learning_rate": {"type": "number", "exclusiveMinimum": 0},
                "seed": {"type": "integer", "minimum": 0},
                "diversity": {
                    "type": "object",
                    "required": ["images", "weight", "layer"],
                    "properties": {"images": {"type": "integer", "minimum": 2, "maximum": 16},
                                   "weight": {"type": "number", "minimum": 0}, "layer": _LAYER},
                },
                "detail": {  # a detail phase: the master is `size` pixels wide, the drawing `settings.size`
                    "type": "object",
                    "required": ["size", "steps"],
                    "properties": {"size": {"type": "integer", "minimum": 2}, "steps": {"type": "integer", "minimum": 1},
                                   "view": {"type": "integer", "minimum": 1}},  # the network saw random views this wide
                },
            },
        },
        "provenance": {
            "type": "object",
            "required": ["weights_source", "weights_sha256", "versions", "created"],
            "properties": {
                "weights_source": {"type": "string"},
                "weights_sha256": _SHA256,
                "versions": {"type": "object", "additionalProperties": {"type": "string"}},
                "created": _TIMESTAMP,
                "seconds": {"type": "number", "minimum": 0},
                "batch_size": {"type": "integer", "minimum": 1},
            },
        },
        "results": {
            "type": "object",
            "required": ["objective"],
            "properties": {
                "objective": {"type": "number"},
                "specific": {"type": ["boolean", "null"]},
                "specificity": _NUMBER_OR_NULL,
                "robustness": _NUMBER_OR_NULL,
                "flat": {"type": ["boolean", "null"]},
            },
        },
    },
)

_QUALITY = {
    "anyOf": [
        {"type": "null"},
        {
            "type": "object",
            "required": ["units", "specificity", "robustness", "flat"],
            "properties": {"units": {"type": "integer", "minimum": 1}, "specificity": {"type": "number"},
                           "robustness": {"type": "number"}, "flat": {"type": "integer", "minimum": 0}},
        },
    ]
}

MANIFEST_SCHEMA = _document_schema(
    "manifest.json",
    required=["model", "weights", "layers", "units"],
    properties={
        "model": {"const": MODEL_NAME},
        "generator_version": {"type": "string"},
        "weights": {
            "type": "object",
            "properties": {"source": {"type": ["string", "null"]}, "sha256": {"type": ["string", "null"]},
                           "has_top": {"type": "boolean"}},
        },
        "updated": _TIMESTAMP,
        "layers": {
            "type": "object",
            "propertyNames": _LAYER,
            "additionalProperties": {
                "type": "object",
                "required": ["filters", "computed", "quality"],
                "properties": {"filters": {"type": "integer"}, "computed": {"type": "integer", "minimum": 0},
                               "receptive_field": {"type": "integer"}, "quality": _QUALITY},
            },
        },
        "units": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["layer", "index", "kind", "label", "url", "thumb"],
                "properties": {"layer": _LAYER, "index": {"type": "integer", "minimum": 0},
                               "kind": {"enum": ["filter", "class"]}, "label": {"type": "string"},
                               "url": {"type": "string"}, "thumb": {"type": "string"}},
            },
        },
    },
)

_SLUG = {"type": "string", "pattern": r"^[a-z0-9]+(-[a-z0-9]+)*$"}
_EXAMPLE_FILE = {"type": "string", "pattern": r"^(units/)?[A-Za-z0-9_][A-Za-z0-9_.-]*\.webp$"}

EXAMPLE_SCHEMA = _document_schema(
    "example.json",
    required=["slug", "title", "source", "licence", "url", "photo", "predictions", "maps", "units",
              "settings", "provenance"],
    properties={
        "slug": _SLUG,
        "title": {"type": "string"},
        "source": {"type": "string"},
        "licence": {"type": "string"},
        "url": {"type": "string"},
        "photo": _EXAMPLE_FILE,
        "predictions": {
            "type": "array",
            "items": {"type": "object", "required": ["index", "label", "probability"],
                      "properties": {"index": {"type": "integer", "minimum": 0, "maximum": NUM_CLASSES - 1},
                                     "probability": {"type": "number"}}},
        },
        "maps": {
            "type": "array",
            "items": {"type": "object", "required": ["method", "target", "overlay"],
                      "properties": {"method": {"type": "string"}, "target": {"type": "string"},
                                     "overlay": _EXAMPLE_FILE}},
        },
        "primary": {
            "type": "object",
            "required": ["target", "reason"],
            "properties": {"target": {"type": ["string", "null"]}, "reason": {"type": "string"}},
        },
        "units": {
            "type": "array",
            "items": {"type": "object", "required": ["layer", "index", "rank", "attribution", "activation_map"],
                      "properties": {"layer": _LAYER, "index": {"type": "integer", "minimum": 0},
                                     "rank": {"type": "integer", "minimum": 0},
                                     "attribution": _EXAMPLE_FILE, "activation_map": _EXAMPLE_FILE}},
        },
        "settings": {"type": "object"},
        "provenance": {"type": "object"},
    },
)

_TOP_EXAMPLE_PATH = {"type": "string", "pattern": r"^examples/[a-z0-9-]+/(units/)?[A-Za-z0-9_][A-Za-z0-9_.-]*\.webp$"}
TOP_EXAMPLES_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "top_examples.json",
    "type": "object",
    "additionalProperties": {
        "type": "array",
        "items": {"type": "object", "required": ["slug", "activation"],
                  "properties": {"slug": _SLUG, "activation": {"type": "number"}, "photo": _TOP_EXAMPLE_PATH,
                                 "attribution": _TOP_EXAMPLE_PATH, "activation_map": _TOP_EXAMPLE_PATH}},
    },
}

_CONV_LAYER = {"enum": [layer.name for layer in CONV_LAYERS]}
_PATCH_FILE = {"type": "string", "pattern": r"^dataset-[0-9a-f]{16}\.webp$"}
_PIXEL = {"type": "integer", "minimum": 0}
DATASET_SCHEMA = _document_schema(
    "dataset.json",
    required=["layer", "index", "settings", "patches"],
    properties={
        "layer": _CONV_LAYER,
        "index": {"type": "integer", "minimum": 0},
        "settings": {
            "type": "object",
            "required": ["size", "resize", "patches", "weights_source", "weights_sha256"],
            "properties": {"size": {"type": "integer", "minimum": 1}, "resize": {"type": "string"},
                           "patches": {"type": "integer", "minimum": 1}, "weights_source": {"type": "string"},
                           "weights_sha256": _SHA256},
        },
        "patches": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["file", "activation", "photo", "photo_sha256", "licence", "credit", "box", "position"],
                "properties": {
                    "file": _PATCH_FILE,
                    "activation": {"type": "number", "exclusiveMinimum": 0},
                    "photo": {"type": "string", "minLength": 1},
                    "photo_sha256": _SHA256,
                    "licence": {"type": "string", "minLength": 1},
                    "credit": {"type": "string"},
                    "box": {"type": "array", "items": _PIXEL, "minItems": 4, "maxItems": 4},
                    "position": {"type": "array", "items": _PIXEL, "minItems": 2, "maxItems": 2},
                },
                "additionalProperties": False,
            },
        },
    },
)

_VALIDATORS = {}  # id(schema) -> its validator, made on first use


def schema_problem(document, schema):
    """A short description of the first way `document` breaks the JSON Schema `schema` (a
    module-level constant), or None when it follows it."""
    if id(schema) not in _VALIDATORS:
        _VALIDATORS[id(schema)] = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(_VALIDATORS[id(schema)].iter_errors(document))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "the top level"
    message = error.message if len(error.message) <= 120 else error.message[:117] + "..."
    return f"{where}: {message}"


def unit_problem(record):
    """Why `record` is not a valid unit record (None when it is): schema, unit and URL checked."""
    problem = schema_problem(record, UNIT_SCHEMA)
    if problem:
        return problem
    layer, index = record["layer"], record["index"]
    if not is_unit(layer, index):
        return f"names no VGG16 unit ({layer} #{index})"
    if record["kind"] != ("class" if layer == CLASS_LAYER else "filter"):
        return f"kind {record['kind']!r} does not fit layer {layer}"
    if record["url"] != unit_url(layer, index):
        return f"url {record['url']!r} is not the contract's {unit_url(layer, index)!r}"
    return None


def manifest_problem(manifest):
    """Why `manifest` is not a valid manifest (None when it is)."""
    return schema_problem(manifest, MANIFEST_SCHEMA)


def example_problem(example, slug=None):
    """Why `example` is not a valid example record (None when it is); `slug`: its folder name."""
    problem = schema_problem(example, EXAMPLE_SCHEMA)
    if problem is None and slug is not None and example["slug"] != slug:
        problem = f"slug {example['slug']!r} differs from its folder {slug!r}"
    return problem


def top_examples_problem(top_examples):
    """Why `top_examples` (examples/top_examples.json) is invalid (None when it is valid)."""
    return schema_problem(top_examples, TOP_EXAMPLES_SCHEMA)


def dataset_problem(record, layer=None, index=None):
    """Why `record` (a unit's dataset.json) is invalid (None when it is valid): its schema, a filter
    VGG16 has, and when given the (`layer`, `index`) of the folder it was read from."""
    problem = schema_problem(record, DATASET_SCHEMA)
    if problem is None and not is_unit(record["layer"], record["index"]):
        problem = f"names no VGG16 filter ({record['layer']} #{record['index']})"
    if problem is None and layer is not None and (record["layer"], record["index"]) != (layer, index):
        problem = f"is for {record['layer']} #{record['index']}, not the folder's {layer} #{index}"
    return problem


# --- builders ---------------------------------------------------------------------------------


def utc_now():
    """The current time as the records write it: "2026-11-28T01:02:03Z"."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def software_versions(*modules):
    """{"generator", "python", and each given module's name: its __version__} for provenance."""
    import platform

    return {"generator": __version__, **{module.__name__: module.__version__ for module in modules},
            "python": platform.python_version()}


def unit_label(layer, index):
    """(label, wnid): "block4_conv2 #17" and None for a filter; the class name and WordNet id for a class."""
    if layer == CLASS_LAYER:
        imagenet_class = load_classes()[index]
        return imagenet_class.name, imagenet_class.wnid
    return f"{layer} #{index}", None


def image_files(record):
    """Every image file name of a unit record: master, thumb, and those it has of negative,
    kernel and the diverse images."""
    images = record["images"]
    return [name for key, name in images.items() if name and key != "diverse"] + images.get("diverse", [])


def master_side(settings):
    """The side in pixels of a unit's master under its record `settings`: the detail phase's side
    when it was drawn with one (settings["detail"]), its drawing size otherwise."""
    return (settings.get("detail") or settings)["size"]


def unit_record(layer, index, settings, provenance, objective, negative=False, diverse=0):
    """A unit record before its layer is scored (results other than the objective are None).

    Args:
        layer, index: the unit ("predictions" for classes).
        settings: what changes the image (generator.plan.LayerPlan.record_settings).
        provenance: a `Provenance` dict.
        objective: the final objective value reached (by the master).
        negative: whether negative.webp was drawn too.
        diverse: how many images beside the master were drawn (--diversity K: K - 1); listed
            under images.diverse only when there are some.
    """
    label, wnid = unit_label(layer, index)
    images = {"master": MASTER_NAME, "thumb": THUMB_NAME, "negative": NEGATIVE_NAME if negative else None,
              "kernel": KERNEL_NAME if layer == CONV_LAYERS[0].name else None}
    if diverse:
        images["diverse"] = [DIVERSE_NAME.format(number) for number in range(1, diverse + 1)]
    return {
        "schema": SCHEMA,
        "model": MODEL_NAME,
        "layer": layer,
        "index": index,
        "kind": "class" if layer == CLASS_LAYER else "filter",
        "label": label,
        "wnid": wnid,
        "url": unit_url(layer, index),
        "images": images,
        "settings": settings,
        "provenance": provenance,
        "results": {"objective": round(float(objective), 4), "specificity": None, "robustness": None,
                    "flat": None},
    }


def with_quality(record, quality):
    """A copy of `record` with its layer-wide quality (generator.quality per-unit dict) in results."""
    results = dict(record["results"], specificity=quality["specificity_margin"], robustness=quality["robustness"],
                   flat=quality["flat"], specific=quality["specificity"])
    return dict(record, results=results)


def is_scored(record):
    """True when the record's layer-wide quality figures have been filled in."""
    return record["results"].get("robustness") is not None


def manifest(records, weights, quality, updated):
    """The manifest of the units in `records`.

    Args:
        records: every unit record of the atlas, in `sort_records` order.
        weights: {"source", "sha256", "has_top"} of the weights the atlas was drawn with.
        quality: {layer: summary from generator.quality.layer_quality, or None}.
        updated: the UTC timestamp to record (`utc_now()`; keep the old one when nothing changed).
    """
    layers = {}
    for layer in [layer.name for layer in CONV_LAYERS] + [CLASS_LAYER]:
        total = NUM_CLASSES if layer == CLASS_LAYER else CONV_LAYER_BY_NAME[layer].filters
        entry = {"filters": total, "computed": sum(r["layer"] == layer for r in records)}
        if layer != CLASS_LAYER:
            entry["receptive_field"] = CONV_LAYER_BY_NAME[layer].receptive_field
        entry["quality"] = quality.get(layer) if entry["computed"] else None
        layers[layer] = entry
    return {
        "schema": SCHEMA,
        "model": MODEL_NAME,
        "generator_version": __version__,
        "weights": dict(weights),
        "updated": updated,
        "layers": layers,
        "units": [
            {"layer": r["layer"], "index": r["index"], "kind": r["kind"], "label": r["label"], "url": r["url"],
             "thumb": r["url"] + r["images"]["thumb"]}
            for r in records
        ],
    }


def sort_records(records):
    """Records in atlas order: filters in VGG16 layer order, then classes, each by index."""
    order = {layer.name: position for position, layer in enumerate(CONV_LAYERS)}
    return sorted(records, key=lambda r: (order.get(r["layer"], len(order)), r["index"]))


def example_unit_files(layer, index):
    """(attribution, activation map): a unit's files on an example page, relative to the page's folder.

    e.g. ("units/block4_conv2-17-attribution.webp", "units/block4_conv2-17-activation.webp").
    """
    stem = f"units/{layer}-{index}"
    return f"{stem}-attribution.webp", f"{stem}-activation.webp"


def example_record(*, slug, title, source, licence, predictions, primary, maps, units, diagnostics, settings,
                   provenance):
    """The record of one example photo (`examples/<slug>/example.json`, EXAMPLE_SCHEMA).

    Args:
        slug, title, source, licence: the photo (generator.photos.Photo) and its credit.
        predictions: top-5 [{"index", "wnid", "label", "probability"}]; [] without a class head.
        primary: {"target": label or None, "reason"}: what the main maps explain, and why.
        maps: [{"method", "target", "overlay", "array", "scale"}].
        units: [{"layer", "index", "target", "rank", "activation", "method", "attribution",
            "activation_map", "arrays", "scales"}] of the asked units whose top-k holds the photo.
        diagnostics: {target label: {"score", ...}}.
        settings: everything that changes the page's files (a rerun with equal settings keeps them).
        provenance: {"weights_source", "weights_sha256", "versions", "created", "seconds"}.
    """
    return {
        "schema": SCHEMA,
        "slug": slug,
        "title": title,
        "source": source,
        "licence": licence,
        "url": example_url(slug),
        "photo": EXAMPLE_PHOTO_NAME,
        "predictions": predictions,
        "primary": primary,
        "maps": maps,
        "units": units,
        "diagnostics": diagnostics,
        "settings": settings,
        "provenance": provenance,
    }


def top_example(slug, layer, index, activation):
    """One entry of `examples/top_examples.json`: a photo in unit (layer, index)'s top-k, with its files."""
    base = example_url(slug)
    attribution, activation_map = example_unit_files(layer, index)
    return {"slug": slug, "activation": activation, "photo": base + EXAMPLE_PHOTO_NAME,
            "attribution": base + attribution, "activation_map": base + activation_map}


def dataset_patch_name(photo_sha256):
    """The file of a photo's patch in a unit's folder: "dataset-<first 16 hex of its sha256>.webp"."""
    return f"dataset-{photo_sha256[:16]}.webp"


def dataset_record(layer, index, settings, patches):
    """A filter's dataset examples (`vgg16/<layer>/<index>/dataset.json`, DATASET_SCHEMA).

    Args:
        layer, index: the filter.
        settings: {"size", "resize", "patches" (k), "weights_source", "weights_sha256"}.
        patches: best first, [{"file" (dataset_patch_name), "activation" (the filter's max post-ReLU
            activation on the photo, > 0), "photo" (its name), "photo_sha256", "licence", "credit",
            "box" ([left, top, right, bottom) in the model's size x size view of the photo, clipped),
            "position" ([row, column] of the max in the layer's map)}].
    """
    return {"schema": SCHEMA, "layer": layer, "index": index, "settings": settings, "patches": patches}

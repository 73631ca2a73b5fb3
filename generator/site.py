"""Render the atlas website's Markdown pages from the data under `site_src/` alone (no model).

Inputs: the unit records (`site_src/vgg16/**/unit.json`), the manifest (optional), the class
index shipped in `generator/data/`, and the example photo records under `site_src/examples/`.
Outputs, all written atomically and only when their content changed:

    index.md, methods.md, credits.md, downloads.md,     hand-written content from templates/pages/
    compare.md                                          (home: a mosaic of the best drawn units)
    vgg16/<layer>/index.md                              one page per conv layer: the whole layer's grid
    vgg16/<layer>/<index>/index.md                      one page per filter, drawn or not (then: how to draw it)
    vgg16/classes/index.md                              all 1,000 classes, by index and by name
    vgg16/classes/<index>-<slug>/index.md               one page per class, computed or not
    examples/index.md, examples/<slug>/index.md         the example photos and their saliency maps
    vgg16/units.csv                                     every computed unit, for download
    vgg16/compare.json                                  every drawn unit, compact, for the compare page

Pages under vgg16/ and examples/ that the data no longer backs are removed, so rendering twice
gives the same tree. Pages are Markdown with raw-HTML blocks; every label reaches the HTML escaped.
"""

import csv
import io
import json
import logging
import posixpath
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import jinja2
import markupsafe
import numpy as np
from PIL import Image

from . import heatmap, records, store
from .architecture import (
    CLASS_LAYER,
    CONV_LAYERS,
    MODEL_NAME,
    NUM_CLASSES,
    TOTAL_FILTERS,
)
from .classes import class_index_credit, load_classes
from .errors import UserError
from .fileio import write_if_changed
from .saliency_methods import METHOD_TITLES

PROJECT_DIR = Path(__file__).resolve().parents[1]
TEMPLATES_DIR = PROJECT_DIR / "templates" / "pages"
MKDOCS_CONFIG = PROJECT_DIR / "mkdocs.yml"
GENERATED_TREES = (MODEL_NAME, "examples")  # every index.md below these is an output of this module
CSV_NAME = "units.csv"
CSV_COLUMNS = (
    "model", "layer", "index", "kind", "label", "wnid", "url", "image", "thumb",
    "objective", "specificity", "robustness", "flat", "seed", "size", "steps",
    "weights_source", "weights_sha256",
)
COMPARE_NAME = "compare.json"  # vgg16/compare.json: what the compare page (compare/) reads
PIXELATED_BELOW = 64  # images smaller than this (px, longest side) are enlarged with hard pixel edges
# The robustness shift of generator/quality.py `variants` (kept here: that module imports TensorFlow).
ROBUSTNESS_SHIFT_PIXELS, ROBUSTNESS_SHIFT_FRACTION = 4, 12
MOSAIC_CLASSES = 6  # class tiles on the home page mosaic
_MARKDOWN_SPECIALS = set("\\`*_{}[]()#+-.!|")  # Python-Markdown's backslash escapes (+ tables' "|")


@dataclass(frozen=True)
class RenderStats:
    """What one `render_site` call did.

    Attributes:
        pages: generated pages (Markdown files) in the rendered site.
        written: pages whose content changed and were rewritten.
        removed: stale pages deleted (their unit or example no longer exists).
        filters: computed filter units with a page.
        classes_with_images: class pages that show a computed class image.
        examples: example photo pages.
        seconds: wall time of the call.
    """

    pages: int
    written: int
    removed: int
    filters: int
    classes_with_images: int
    examples: int
    seconds: float


def markdown_text(text):
    """Escape plain text for a Markdown inline context: Markdown punctuation backslashed, then HTML-escaped.

    Use it for text in Markdown; in raw-HTML blocks, where Markdown is not parsed, plain
    autoescaping is right (a backslash would show).
    """
    escaped = "".join("\\" + char if char in _MARKDOWN_SPECIALS else char for char in str(text))
    return markupsafe.escape(escaped)


def front_matter_string(text):
    """A YAML front-matter scalar (title, description) holding HTML-escaped text.

    Material's templates put `page.meta.title` and `description` into the HTML unescaped
    (<title>, the header, <meta content="...">), so the escaping happens here.
    """
    return markupsafe.Markup(json.dumps(str(markupsafe.escape(text))))


def _number(value):
    """Format a result for a table: floats to 4 significant digits, booleans as yes/no, None as "-"."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _rounded(value):
    """A float rounded to 4 significant digits (other values unchanged), for compact JSON."""
    return float(f"{value:.4g}") if isinstance(value, float) else value


def _percent(fraction):
    """Format a fraction 0..1 as a whole percentage, "-" when missing."""
    return "-" if fraction is None else f"{100 * fraction:.0f} %"


def _setting(value):
    """Format one settings value: lists joined by commas, mappings as key=value."""
    if isinstance(value, dict):
        return ", ".join(f"{key}={_setting(item)}" for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_setting(item) for item in value)
    return _number(value)


def make_environment(templates_dir=TEMPLATES_DIR):
    """The Jinja2 environment of the page templates (autoescaping, strict undefined)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(
        md=markdown_text, yaml=front_matter_string, number=_number, setting=_setting, percent=_percent,
        method_name=lambda method: METHOD_TITLES.get(method, method),
        thousands="{:,}".format,
    )
    return environment


def _url_dir(page_path):
    """The directory URL a page source is served at: "vgg16/b/17/index.md" -> "vgg16/b/17", "methods.md" -> "methods"."""
    parts = PurePosixPath(page_path).with_suffix("").parts
    return "/".join(parts[:-1] if parts[-1] == "index" else parts) or "."


def page_root(page_path):
    """Relative prefix from the page built from `page_path` back to the site root.

    With directory URLs, "vgg16/block4_conv2/17/index.md" is served at vgg16/block4_conv2/17/
    (prefix "../../../") and "methods.md" at methods/ (prefix "../").
    """
    url_dir = _url_dir(page_path)
    return "" if url_dir == "." else "../" * len(url_dir.split("/"))


def relative_page(from_page, to_page):
    """Markdown link from one page source to another, e.g. "../../vgg16/classes/20-water-ouzel/index.md"."""
    return posixpath.relpath(to_page, posixpath.dirname(from_page) or ".")


def relative_url(from_page, target):
    """URL of `target` (a path relative to the site root) as seen from the page of `from_page`."""
    url = posixpath.relpath(target, _url_dir(from_page))
    return url + "/" if target.endswith("/") else url


# --------------------------------------------------------------------------------------------
# Reading the data


def _class_url(imagenet_class):
    return records.unit_url(CLASS_LAYER, imagenet_class.index)


def _example_url(example):
    return records.example_url(example["slug"])


SALIENCY_REMEDY = "delete it or rerun the saliency stage"


def _read_examples(site_src):
    """Example photo records (sorted by slug) and the top-examples table, both possibly empty."""
    examples_dir = Path(site_src, records.EXAMPLES_DIR)
    examples = [
        store.read_valid(path, lambda example, slug=path.parent.name: records.example_problem(example, slug),
                         SALIENCY_REMEDY)
        for path in sorted(examples_dir.glob(f"*/{records.EXAMPLE_RECORD_NAME}"))
    ]
    top = store.read_valid(examples_dir / records.TOP_EXAMPLES_NAME, records.top_examples_problem, SALIENCY_REMEDY)
    return examples, top or {}


@dataclass(frozen=True)
class AtlasData:
    """Everything the pages are rendered from."""

    manifest: dict | None
    filters_by_layer: dict  # conv layer name -> records sorted by index
    class_records: dict  # class index -> record
    examples: list
    top_examples: dict


def load_atlas_data(site_src):
    """Read the records, manifest and examples under `site_src`."""
    filters_by_layer = {layer.name: [] for layer in CONV_LAYERS}
    class_records = {}
    for record in store.read_records(site_src):
        if record["layer"] == CLASS_LAYER:
            class_records[record["index"]] = record
        else:
            filters_by_layer[record["layer"]].append(record)
    examples, top_examples = _read_examples(site_src)
    return AtlasData(store.read_manifest(site_src), filters_by_layer, class_records, examples, top_examples)


# --------------------------------------------------------------------------------------------
# Page contexts


def _layer_summary(layer, layer_records, manifest):
    quality = ((manifest or {}).get("layers", {}).get(layer.name) or {}).get("quality")
    return {
        "name": layer.name, "block": layer.block, "filters": layer.filters,
        "receptive_field": layer.receptive_field, "stride": layer.stride,
        "computed": len(layer_records), "quality": quality, "url": f"{MODEL_NAME}/{layer.name}/",
    }


def image_size(path, fallback):
    """(width, height) in pixels of the image at `path` (header only), or (fallback, fallback) when unreadable."""
    try:
        with Image.open(path) as image:
            return image.size
    except OSError:
        return fallback, fallback


def robustness_shift(height):
    """Pixels the quality measure shifted an image of `height` px by: a twelfth of the side, 1 to 4.

    The same rule as generator/quality.py `variants` (shape[0] of the image, i.e. its height).
    """
    return max(1, min(ROBUSTNESS_SHIFT_PIXELS, height // ROBUSTNESS_SHIFT_FRACTION))


def _unit_images(record, site_src=None):
    """The record's images with their real pixel sizes (width, height) for attributes and captions.

    The sizes come from the master image's header under `site_src`; without it, from settings.size.
    """
    names = record["images"]
    declared = int(record["settings"].get("size") or 224)
    width, height = (declared, declared) if site_src is None else \
        image_size(Path(site_src, record["url"], names["master"]), declared)
    return {
        "master": names["master"], "width": width, "height": height, "thumb": names["thumb"],
        "negative": names.get("negative"), "kernel": names.get("kernel"),
        "pixelated": max(width, height) < PIXELATED_BELOW, "shift": robustness_shift(height),
    }


def inferno_gradient(stops=17):
    """CSS linear-gradient of the overlays' colormap (generator/heatmap.py), low values left."""
    colours = heatmap.colorize(np.linspace(0.0, 1.0, stops, dtype=np.float32)[None, :])[0]
    return "linear-gradient(to right, " + ", ".join("#%02x%02x%02x" % tuple(int(c) for c in rgb) for rgb in colours) + ")"


def _margin(record):
    """The record's specificity margin, -inf when not measured."""
    margin = (record.get("results") or {}).get("specificity")
    return margin if isinstance(margin, (int, float)) and not isinstance(margin, bool) else float("-inf")


def _best_record(records):
    """The record with the best specificity margin among the non-flat ones (any, if all are flat); None if none."""
    return max(records, key=lambda record: (not (record.get("results") or {}).get("flat"), _margin(record)), default=None)


def _filter_label(layer_name, index):
    """The label of a filter, as records spell it: "block4_conv2 #17"."""
    return f"{layer_name} #{index}"


def draw_command(layer_name, index):
    """The build.py command that draws one unit: a filter, or a class (layer "predictions")."""
    if layer_name == CLASS_LAYER:
        return f"python build.py --classes {index} --weights imagenet"
    return f"python build.py --layers {layer_name} --filters {index}"


def _display_settings(settings):
    """Example settings for the reproducibility table: ranks of `units` counted from 1, like the pages."""
    shown = dict(settings)
    units = shown.get("units")
    if isinstance(units, list):
        shown["units"] = [
            f"{unit.get('target')} (rank {unit['rank'] + 1})" if isinstance(unit, dict) and isinstance(unit.get("rank"), int)
            else (unit.get("target") if isinstance(unit, dict) else unit)
            for unit in units
        ]
    return shown


def _map_groups(example, classes):
    """The example's maps grouped by target, primary target first, each with what and why it explains.

    Returns [{"target", "maps", "kind": "top1" | "class" | "filter", "url" (site-root relative or None)}].
    With the ImageNet head the primary target is the top-1 predicted class; without it, the drawn
    filter this photo excites most relative to the other photos (generator/examples.py).
    """
    groups = {}
    for entry in example.get("maps", []):
        groups.setdefault(entry["target"], []).append(entry)
    predictions = example.get("predictions") or []
    top1 = predictions[0]["index"] if predictions else None
    result = []
    for target, maps in groups.items():
        words = target.split()
        if words[0] == "class" and len(words) > 1 and words[1].isdigit():
            index = int(words[1])
            kind = "top1" if index == top1 and not result else "class"
            url = _class_url(classes[index]) if 0 <= index < NUM_CLASSES else None
        else:
            kind = "filter"
            layer, _, number = target.partition(" #")
            index = int(number) if number.isascii() and number.isdigit() else None
            url = records.unit_url(layer, index) if records.is_unit(layer, index) else None
        result.append({"target": target, "maps": maps, "kind": kind, "url": url, "primary": not result})
    return result


def _examples_by_predicted_class(examples):
    """Class index -> [{"example", "rank" (1-5), "probability"}] for every example whose top-5
    predictions hold that class, most confident first."""
    by_class = {}
    for example in examples:
        for rank, prediction in enumerate(example.get("predictions", [])[:5], start=1):
            by_class.setdefault(prediction["index"], []).append(
                {"example": example, "rank": rank, "probability": prediction["probability"]}
            )
    for entries in by_class.values():
        entries.sort(key=lambda entry: -entry["probability"])
    return by_class


def _top_examples_for(record, page, top_examples, examples_by_slug):
    entries = []
    for entry in top_examples.get(f"{record['layer']}/{record['index']}", []):
        example = examples_by_slug.get(entry.get("slug"))
        if example is None:
            continue
        method = next((unit.get("method") for unit in example.get("units", [])
                       if (unit.get("layer"), unit.get("index")) == (record["layer"], record["index"])), None)
        entries.append({
            "title": example["title"],
            "method_label": METHOD_TITLES.get(method, method or "attribution method not recorded"),
            "url": relative_url(page, _example_url(example)),
            "activation": entry.get("activation"),
            "attribution": relative_url(page, entry["attribution"]) if entry.get("attribution") else None,
            "activation_map": relative_url(page, entry["activation_map"]) if entry.get("activation_map") else None,
        })
    return entries


class SiteRenderer:
    """Turns `AtlasData` into {page path relative to site_src: text}.

    `site_src`, when given, is where image sizes are read from (else the records' settings.size).
    """

    def __init__(self, data, environment=None, site_src=None):
        self.data = data
        self.site_src = site_src
        self.environment = environment or make_environment()
        self.classes = load_classes()
        self.examples_by_slug = {example["slug"]: example for example in data.examples}
        self.examples_by_class = _examples_by_predicted_class(data.examples)
        self.layers = [_layer_summary(layer, data.filters_by_layer[layer.name], data.manifest) for layer in CONV_LAYERS]

    def _render(self, template, page, **context):
        try:
            return self.environment.get_template(template).render(root=page_root(page), page=page, **context)
        except jinja2.UndefinedError as error:
            raise UserError(
                f"cannot render {page}: {error.message}; its record, example or manifest lacks a field "
                "of docs/ARCHITECTURE.md"
            ) from None

    def _common(self):
        manifest = self.data.manifest or {}
        weights = manifest.get("weights")
        if isinstance(weights, dict):
            weights = {"source": weights.get("source") or "unknown", "sha256": weights.get("sha256") or "unknown",
                       "has_top": bool(weights.get("has_top"))}
        return {
            "manifest": self.data.manifest,
            "updated": manifest.get("updated") or "unknown",
            "weights": weights or None,
            "layers": self.layers,
            "total_filters": TOTAL_FILTERS,
            "num_classes": NUM_CLASSES,
            "computed_filters": sum(layer["computed"] for layer in self.layers),
            "computed_classes": len(self.data.class_records),
            "examples": self.data.examples,
            "csv_columns": CSV_COLUMNS,
            "inferno": inferno_gradient(),
            "draw_command": draw_command,
        }

    def mosaic(self):
        """Home page tiles: the best drawn filter of each layer, then the best few drawn classes.

        "Best" is the largest specificity margin among non-flat images. Each tile is
        {"label", "url" (site-root relative directory), "thumb" (site-root relative image)}.
        """
        tiles = []
        for layer in CONV_LAYERS:
            best = _best_record(self.data.filters_by_layer[layer.name])
            if best is not None:
                tiles.append({"label": best["label"], "url": best["url"], "thumb": best["url"] + best["images"]["thumb"]})
        drawn_classes = [record for record in self.data.class_records.values() if not (record.get("results") or {}).get("flat")]
        drawn_classes.sort(key=lambda record: (-_margin(record), record["index"]))
        for record in drawn_classes[:MOSAIC_CLASSES]:
            tiles.append({"label": record["label"], "url": record["url"], "thumb": record["url"] + record["images"]["thumb"]})
        return tiles

    def pages(self):
        """Yield (page path, Markdown text) for every page of the site."""
        common = self._common()
        yield "index.md", self._render("home.md.j2", "index.md", mosaic=self.mosaic(), **common)
        for page, template in (("methods.md", "methods.md.j2"), ("downloads.md", "downloads.md.j2"),
                               ("compare.md", "compare.md.j2")):
            yield page, self._render(template, page, **common)
        yield "credits.md", self._render("credits.md.j2", "credits.md", class_credit=class_index_credit(), **common)
        yield from self._layer_pages(common)
        yield from self._class_pages(common)
        yield from self._example_pages(common)

    def _layer_pages(self, common):
        for summary in self.layers:
            drawn = {record["index"]: record for record in self.data.filters_by_layer[summary["name"]]}
            page = f"{summary['url']}index.md"
            cells = [{"index": index, "record": drawn.get(index)} for index in range(summary["filters"])]
            yield page, self._render("layer.md.j2", page, layer=summary, cells=cells, **common)
            for index in range(summary["filters"]):
                record = drawn.get(index)
                unit_page = f"{summary['url']}{index}/index.md"
                yield unit_page, self._render(
                    "unit.md.j2", unit_page, record=record, layer=summary, index=index,
                    label=_filter_label(summary["name"], index),
                    images=_unit_images(record, self.site_src) if record else None,
                    previous=index - 1 if index > 0 else None,
                    next=index + 1 if index + 1 < summary["filters"] else None,
                    top_examples=_top_examples_for(record, unit_page, self.data.top_examples, self.examples_by_slug)
                    if record else [],
                    **common,
                )

    def _class_pages(self, common):
        classes = self.classes
        page = f"{MODEL_NAME}/classes/index.md"
        yield page, self._render("classes.md.j2", page, classes=classes, class_records=self.data.class_records, **common)
        for imagenet_class in classes:
            class_page = f"{_class_url(imagenet_class)}index.md"
            record = self.data.class_records.get(imagenet_class.index)
            yield class_page, self._render(
                "class.md.j2", class_page, imagenet_class=imagenet_class, record=record,
                images=_unit_images(record, self.site_src) if record else None,
                predicted_in=[
                    dict(entry, url=relative_url(class_page, _example_url(entry["example"])))
                    for entry in self.examples_by_class.get(imagenet_class.index, [])
                ],
                previous=classes[imagenet_class.index - 1] if imagenet_class.index > 0 else None,
                next=classes[imagenet_class.index + 1] if imagenet_class.index + 1 < NUM_CLASSES else None,
                class_url=_class_url, **common,
            )

    def _example_pages(self, common):
        yield "examples/index.md", self._render("examples.md.j2", "examples/index.md", **common)
        computed = {(r["layer"], r["index"]) for layer_records in self.data.filters_by_layer.values() for r in layer_records}
        for example in self.data.examples:
            page = f"{_example_url(example)}index.md"
            predictions = [
                dict(prediction, page=relative_page(page, _class_url(self.classes[prediction["index"]]) + "index.md"))
                for prediction in example.get("predictions", [])
            ]
            units = [
                dict(unit, url=relative_url(page, records.unit_url(unit["layer"], unit["index"]))
                     if (unit["layer"], unit["index"]) in computed else None)
                for unit in example.get("units", [])
            ]
            groups = [dict(group, url=relative_url(page, group["url"]) if group["url"] else None)
                      for group in _map_groups(example, self.classes)]
            yield page, self._render(
                "example.md.j2", page, example=example, predictions=predictions, units=units, map_groups=groups,
                settings=_display_settings(example.get("settings") or {}), **common,
            )

    def compare_json(self):
        """The data of the compare page (compact: it holds every drawn unit of the atlas).

        {"layers": {name: filters}, "classes": [dir name by class index],
         "units": {"<layer>/<index>": {"w": width, "h": height, "r": [objective, specificity margin,
                   robustness, flat], "s": [size, steps, seed], and only when they differ from the
                   usual: "image" (master file name if not image.webp), "label" (classes: the name),
                   "pixel": 1 (shown with hard pixel edges)}}}
        The page URL follows from the key (docs/ARCHITECTURE.md); results are rounded to 4 digits.
        """
        units = {}
        records = [r for layer in CONV_LAYERS for r in self.data.filters_by_layer[layer.name]]
        records += [self.data.class_records[index] for index in sorted(self.data.class_records)]
        for record in records:
            images = _unit_images(record, self.site_src)
            results, settings = record.get("results") or {}, record["settings"]
            entry = {
                "w": images["width"], "h": images["height"],
                "r": [_rounded(results.get(key)) for key in ("objective", "specificity", "robustness", "flat")],
                "s": [settings.get(key) for key in ("size", "steps", "seed")],
            }
            if images["master"] != "image.webp":
                entry["image"] = images["master"]
            if record["layer"] == CLASS_LAYER:
                entry["label"] = record["label"]
            if images["pixelated"]:
                entry["pixel"] = 1
            units[f"{record['layer']}/{record['index']}"] = entry
        return json.dumps({
            "layers": {layer.name: layer.filters for layer in CONV_LAYERS},
            "classes": [imagenet_class.dir_name for imagenet_class in self.classes],
            "units": units,
        }, separators=(",", ":"))

    def units_csv(self):
        """The CSV of every computed unit (filters in layer order, then classes by index)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        records = [r for layer in CONV_LAYERS for r in self.data.filters_by_layer[layer.name]]
        records += [self.data.class_records[index] for index in sorted(self.data.class_records)]
        for record in records:
            results, settings, provenance = record.get("results") or {}, record["settings"], record["provenance"]
            writer.writerow([
                record["model"], record["layer"], record["index"], record["kind"], record["label"],
                record.get("wnid") or "", record["url"], record["url"] + record["images"]["master"],
                record["url"] + record["images"]["thumb"], results.get("objective", ""),
                results.get("specificity", ""), results.get("robustness", ""), results.get("flat", ""),
                settings.get("seed", ""), settings.get("size", ""), settings.get("steps", ""),
                provenance.get("weights_source", ""), provenance.get("weights_sha256", ""),
            ])
        return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# Writing


def _write_if_changed(path, text):
    """Atomically write `text` to `path` unless it already holds exactly that; True when written."""
    return write_if_changed(path, text.encode("utf-8"))


def _remove_stale_pages(site_src, keep):
    """Delete generated index.md files not in `keep`, and the directories that leaves empty."""
    removed = 0
    for tree in GENERATED_TREES:
        for path in sorted(Path(site_src, tree).glob("**/index.md"), reverse=True):
            if path.relative_to(site_src).as_posix() in keep:
                continue
            path.unlink()
            removed += 1
            directory = path.parent
            while directory != Path(site_src) and not any(directory.iterdir()):
                directory.rmdir()
                directory = directory.parent
    return removed


def render_site(site_src: Path) -> RenderStats:
    """Render every page of the atlas into `site_src` from its data files, then prune stale pages.

    Works on an empty `site_src` (class pages and the architecture come from static tables).
    Raises UserError when `site_src` is not a directory or holds a record of no VGG16 unit.
    """
    start = time.perf_counter()
    site_src = Path(site_src)
    if not site_src.is_dir():
        raise UserError(f"site source {site_src} is not a directory; create it or pass the right path")
    data = load_atlas_data(site_src)
    renderer = SiteRenderer(data, site_src=site_src)
    written, keep = 0, set()
    for page, text in renderer.pages():
        keep.add(page)
        written += _write_if_changed(site_src / page, text)
    written += _write_if_changed(site_src / MODEL_NAME / CSV_NAME, renderer.units_csv())
    written += _write_if_changed(site_src / MODEL_NAME / COMPARE_NAME, renderer.compare_json())
    removed = _remove_stale_pages(site_src, keep)
    return RenderStats(
        pages=len(keep),
        written=written,
        removed=removed,
        filters=sum(len(records) for records in data.filters_by_layer.values()),
        classes_with_images=len(data.class_records),
        examples=len(data.examples),
        seconds=time.perf_counter() - start,
    )


def build_html(site_src: Path, site_dir: Path, config_file: Path = MKDOCS_CONFIG) -> None:
    """Run `mkdocs build --strict` on `site_src` into `site_dir` with the project's mkdocs.yml.

    Raises UserError naming the first MkDocs warning (a broken link, a missing page) if any.
    """
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    warnings = _WarningCollector()
    logger = logging.getLogger("mkdocs")
    logger.addHandler(warnings)
    try:
        config = load_config(str(config_file), docs_dir=str(Path(site_src).resolve()),
                             site_dir=str(Path(site_dir).resolve()), strict=True)
        build(config)
    except MkDocsException as error:
        first = f" (first: {warnings.messages[0]})" if warnings.messages else ""
        raise UserError(f"mkdocs build of {site_src} failed: {error}{first}") from None
    finally:
        logger.removeHandler(warnings)


class _WarningCollector(logging.Handler):
    """Keeps the messages of MkDocs' warnings, one line each."""

    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(" ".join(record.getMessage().split()))

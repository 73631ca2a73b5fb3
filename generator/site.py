"""Render the atlas website's Markdown pages from the data under `site_src/` alone (no model).

Inputs: the unit records (`site_src/vgg16/**/unit.json`), the manifest (optional), the class
index shipped in `generator/data/`, and the example photo records under `site_src/examples/`.
Outputs, all written atomically and only when their content changed:

    index.md, methods.md, credits.md, downloads.md      hand-written content from templates/pages/
    vgg16/<layer>/index.md                              one page per conv layer: the thumbnail grid
    vgg16/<layer>/<index>/index.md                      one page per computed filter
    vgg16/classes/index.md                              all 1,000 classes, by index and by name
    vgg16/classes/<index>-<slug>/index.md               one page per class, computed or not
    examples/index.md, examples/<slug>/index.md         the example photos and their saliency maps
    vgg16/units.csv                                     every computed unit, for download

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

from . import records, store
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


def _unit_images(record):
    """The record's images with their pixel sizes for width/height attributes."""
    size = int(record["settings"].get("size") or 224)
    names = record["images"]
    return {
        "master": names["master"], "size": size, "thumb": names["thumb"],
        "negative": names.get("negative"), "kernel": names.get("kernel"),
    }


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
        entries.append({
            "title": example["title"],
            "url": relative_url(page, _example_url(example)),
            "activation": entry.get("activation"),
            "attribution": relative_url(page, entry["attribution"]) if entry.get("attribution") else None,
            "activation_map": relative_url(page, entry["activation_map"]) if entry.get("activation_map") else None,
        })
    return entries


class SiteRenderer:
    """Turns `AtlasData` into {page path relative to site_src: text}."""

    def __init__(self, data, environment=None):
        self.data = data
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
        }

    def pages(self):
        """Yield (page path, Markdown text) for every page of the site."""
        common = self._common()
        for page, template in (("index.md", "home.md.j2"), ("methods.md", "methods.md.j2"),
                               ("downloads.md", "downloads.md.j2")):
            yield page, self._render(template, page, **common)
        yield "credits.md", self._render("credits.md.j2", "credits.md", class_credit=class_index_credit(), **common)
        yield from self._layer_pages()
        yield from self._class_pages(common)
        yield from self._example_pages(common)

    def _layer_pages(self):
        for summary in self.layers:
            records = self.data.filters_by_layer[summary["name"]]
            page = f"{summary['url']}index.md"
            yield page, self._render("layer.md.j2", page, layer=summary, records=records)
            for position, record in enumerate(records):
                unit_page = f"{record['url']}index.md"
                yield unit_page, self._render(
                    "unit.md.j2", unit_page, record=record, layer=summary, images=_unit_images(record),
                    previous=records[position - 1] if position > 0 else None,
                    next=records[position + 1] if position + 1 < len(records) else None,
                    top_examples=_top_examples_for(record, unit_page, self.data.top_examples, self.examples_by_slug),
                )

    def _class_pages(self, common):
        classes = self.classes
        by_name = sorted(classes, key=lambda c: (c.name.casefold(), c.index))
        page = f"{MODEL_NAME}/classes/index.md"
        yield page, self._render("classes.md.j2", page, classes=classes, by_name=by_name,
                                 class_records=self.data.class_records, **common)
        for imagenet_class in classes:
            class_page = f"{_class_url(imagenet_class)}index.md"
            record = self.data.class_records.get(imagenet_class.index)
            yield class_page, self._render(
                "class.md.j2", class_page, imagenet_class=imagenet_class, record=record,
                images=_unit_images(record) if record else None,
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
            yield page, self._render("example.md.j2", page, example=example, predictions=predictions, units=units)

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
    renderer = SiteRenderer(data)
    written, keep = 0, set()
    for page, text in renderer.pages():
        keep.add(page)
        written += _write_if_changed(site_src / page, text)
    written += _write_if_changed(site_src / MODEL_NAME / CSV_NAME, renderer.units_csv())
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

"""The compute stage: draw the selected units of VGG16 and store them under site_src/.

For each layer: pick its drawing plan (image size matched to the receptive field, steps,
transforms), skip units already complete with the same settings (resume), draw the rest in
batches, write each batch as soon as it is done (a killed run loses at most one batch), then
measure the layer's quality over all of its drawn units and write the manifest.
"""

import platform
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from . import __version__, store
from .architecture import CLASS_LAYER, CONV_LAYER_BY_NAME, CONV_LAYERS, MODEL_NAME, NUM_CLASSES
from .classes import load_classes
from .errors import UserError
from .model import conv_base_of, preprocess, with_precision
from .optvis.objectives import layer_scores, unit_objective
from .optvis.render import Renderer, RenderSettings
from .optvis.transform import Transforms
from .quality import layer_quality

# Image side per block, matched to the receptive field: a channel image holds a few copies of
# the unit's feature. Classes see the full 224 px input of the dense head.
FULL_SIZES = {1: 48, 2: 64, 3: 96, 4: 128, 5: 160}
PREVIEW_SIZES = {1: 48, 2: 48, 3: 64, 4: 80, 5: 80}
CLASS_INPUT_SIZE = 224
FULL_STEPS, PREVIEW_STEPS = 512, 128
# block1_conv1 is linear in the pixels: its channel mean is maximized by a flat colour, so it is
# drawn as a neuron (the central 3x3 window), which recovers the kernel's pattern.
NEURON_LAYERS = {"block1_conv1": 11}
KERNEL_DISPLAY = 96


@dataclass(frozen=True)
class LayerPlan:
    """How one layer is drawn: render settings plus where the objective reads the layer."""

    layer: str
    settings: RenderSettings
    position: str  # "mean" (channel), "center" (neuron), or "logit" (class)

    def record_settings(self, seed, negative=False, precision="float32"):
        """The settings part of a unit record (everything that changes the images)."""
        objective = {"mean": "channel_preact", "center": "neuron_preact", "logit": "class_logit"}
        return {"objective": objective[self.position], **self.settings.describe(), "seed": seed,
                "negative": negative, "precision": precision}


def plan_layer(layer, preview=False, size=None, steps=None, learning_rate=None, batch_size=None):
    """The drawing plan of `layer`, with optional overrides (None keeps the default)."""
    overrides = {
        key: value
        for key, value in dict(steps=steps, learning_rate=learning_rate, batch_size=batch_size).items()
        if value is not None
    }
    steps_default = PREVIEW_STEPS if preview else FULL_STEPS
    if layer == CLASS_LAYER:
        transforms = Transforms(pad=16, jitter=16)
        settings = RenderSettings(size=CLASS_INPUT_SIZE - 2 * transforms.pad, steps=steps_default,
                                  batch_size=8, transforms=transforms)
        if size is not None and size != settings.size:
            raise UserError(f"class images have a fixed size ({settings.size} px + padding = 224 px, "
                            "the dense head's input); drop --size for classes")
        return LayerPlan(layer, replace(settings, **overrides), "logit")
    if layer in NEURON_LAYERS:
        transforms = Transforms(pad=2, jitter=1, scale_range=(1.0, 1.0), rotate_degrees=0.0)
        settings = RenderSettings(size=size or NEURON_LAYERS[layer], steps=steps_default,
                                  batch_size=64, transforms=transforms)
        return LayerPlan(layer, replace(settings, **overrides), "center")
    block = CONV_LAYER_BY_NAME[layer].block
    default_size = (PREVIEW_SIZES if preview else FULL_SIZES)[block]
    transforms = Transforms(pad=max(4, default_size // 12), jitter=max(2, default_size // 16))
    settings = RenderSettings(size=size or default_size, steps=steps_default,
                              batch_size={1: 64, 2: 32, 3: 16}.get(block, 8), transforms=transforms)
    return LayerPlan(layer, replace(settings, **overrides), "mean")


def unit_url(unit):
    """URL of a unit relative to the site root: vgg16/<layer>/<index>/ or vgg16/classes/<index>-<slug>/."""
    if unit.kind == "class":
        return f"{MODEL_NAME}/classes/{load_classes()[unit.index].dir_name}/"
    return f"{MODEL_NAME}/{unit.layer}/{unit.index}/"


def unit_dir(site_src, unit):
    """Directory of a unit's files under `site_src` (its URL path)."""
    return Path(site_src, unit_url(unit))


def kernel_image(kernel):
    """A block1_conv1 kernel as an RGB picture.

    Args:
        kernel: float (3, 3, 3, filters) in Keras layout, input channels in BGR order.
    Returns:
        function index -> uint8 (KERNEL_DISPLAY, KERNEL_DISPLAY, 3), RGB, 0.5 gray = zero weight,
        scaled by the largest absolute weight of the layer, nearest-neighbour upscaled.
    """
    scale = float(np.abs(kernel).max())

    def picture(index):
        rgb = kernel[:, :, ::-1, index] / (2 * scale) + 0.5
        pixels = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
        return np.asarray(Image.fromarray(pixels).resize((KERNEL_DISPLAY, KERNEL_DISPLAY), Image.NEAREST))

    return picture


class AtlasRun:
    """One compute run over a selection of units.

    Args:
        loaded: a generator.model.LoadedModel.
        site_src: output directory (the MkDocs docs_dir).
        preview: use the CPU-sized preview defaults.
        overrides: dict of size / steps / learning_rate / batch_size overrides (None = default).
        base_seed: run-wide seed mixed into every unit's seed.
        resume: skip units already complete with the same settings.
        negative: also draw the image that minimizes each unit (negative.webp).
        precision: "float32", or "bfloat16" to draw with a bfloat16 copy of the network
            (quality is always measured in float32).
        progress: a callable(total) -> object with update(n) and close(), e.g. tqdm; or None.
        log: callable(str) for one-line messages.
    """

    def __init__(self, loaded, site_src, preview=False, overrides=None, base_seed=0, resume=True,
                 negative=False, precision="float32", progress=None, log=print):
        self.loaded = loaded
        self.site_src = Path(site_src)
        self.preview = preview
        self.overrides = overrides or {}
        self.base_seed = base_seed
        self.resume = resume
        self.negative = negative
        self.precision = precision
        self._networks = {}  # (class layer?, drawing?) -> keras.Model, see _network
        self.progress = progress
        self.log = log
        self._kernel_picture = None

    def run(self, units):
        """Draw `units` (list of generator.units.Unit); returns {layer: quality summary}."""
        if any(unit.kind == "class" for unit in units) and not self.loaded.has_top:
            raise UserError(
                f"class images need the 1,000-class ImageNet head, which the '{self.loaded.source}' "
                "weights lack; use --weights imagenet (or a full weights file), or drop --classes/predictions"
            )
        layers = list(dict.fromkeys(unit.layer for unit in units))
        plans = {layer: plan_layer(layer, self.preview, **self.overrides) for layer in layers}
        pending = [u for u in units if not (self.resume and self._is_complete(u, plans[u.layer]))]
        skipped = len(units) - len(pending)
        if skipped:
            self.log(f"resume: {skipped} of {len(units)} units already complete with these settings")
        measured = {
            layer: entry["quality"]
            for layer, entry in ((store.read_manifest(self.site_src) or {}).get("layers") or {}).items()
            if entry.get("quality")
        }
        bar = self.progress(len(pending)) if self.progress and pending else None
        summaries = {}
        try:
            for layer in layers:
                layer_units = [u for u in pending if u.layer == layer]
                if layer_units:
                    self._draw_layer(plans[layer], layer_units, bar)
                # A layer with nothing new keeps its measured quality; it is measured only when
                # it changed or was never measured (e.g. shards merged without a manifest).
                if layer_units or layer not in measured:
                    measured[layer] = self._measure_layer(plans[layer])
                summaries[layer] = measured[layer]
        finally:
            if bar is not None:
                bar.close()
        self.write_manifest(measured)
        return summaries

    def _network(self, plan, drawing=False):
        """The model that scores `plan`'s layer: the loaded model for classes; for filters, a conv
        base of any input size (a model with the head takes 224 x 224 input only). `drawing`:
        in the run's precision (quality is always measured in float32)."""
        key = (plan.layer == CLASS_LAYER, drawing)
        if key not in self._networks:
            if drawing:
                self._networks[key] = with_precision(self._network(plan), self.precision)
            elif key[0] or not self.loaded.has_top:
                self._networks[key] = self.loaded.model
            else:
                self._networks[key] = conv_base_of(self.loaded.model)
        return self._networks[key]

    def _scores(self, plan, drawing=False):
        return layer_scores(self._network(plan, drawing), plan.layer, preprocess,
                            position="center" if plan.position == "center" else "mean")

    def _is_complete(self, unit, plan):
        settings = plan.record_settings(unit.seed(self.base_seed), self.negative, self.precision)
        return store.is_complete(unit_dir(self.site_src, unit), settings, self.loaded.sha256)

    def _draw_layer(self, plan, units, bar):
        renderer = Renderer(unit_objective(self._scores(plan, drawing=True)), plan.settings)
        batch = plan.settings.batch_size
        for start in range(0, len(units), batch):
            chunk = units[start : start + batch]
            began = time.perf_counter()
            indices, seeds = [u.index for u in chunk], [u.seed(self.base_seed) for u in chunk]
            images, scores = renderer.render(indices, seeds)
            negatives = [None] * len(chunk)
            if self.negative:
                negatives, _ = renderer.render(indices, seeds, signs=[-1] * len(chunk))
            seconds = (time.perf_counter() - began) / len(chunk)
            for unit, image, negative, score in zip(chunk, images, negatives, scores):
                self._write_unit(plan, unit, image, negative, float(score), seconds)
            if bar is not None:
                bar.update(len(chunk))

    def _write_unit(self, plan, unit, image, negative, score, seconds):
        files = {"image.webp": image, "thumb.webp": store.thumbnail(image)}
        if negative is not None:
            files["negative.webp"] = negative
        if unit.layer == "block1_conv1":
            files["kernel.png"] = self._kernel(unit.index)
        store.write_unit(unit_dir(self.site_src, unit), self._record(plan, unit, score, seconds), files)

    def _kernel(self, index):
        if self._kernel_picture is None:
            self._kernel_picture = kernel_image(self.loaded.model.get_layer("block1_conv1").get_weights()[0])
        return self._kernel_picture(index)

    def _record(self, plan, unit, score, seconds):
        if unit.kind == "class":
            imagenet_class = load_classes()[unit.index]
            label, wnid = imagenet_class.name, imagenet_class.wnid
        else:
            label, wnid = f"{unit.layer} #{unit.index}", None
        return {
            "schema": store.RECORD_SCHEMA,
            "model": MODEL_NAME,
            "layer": unit.layer,
            "index": unit.index,
            "kind": unit.kind,
            "label": label,
            "wnid": wnid,
            "url": unit_url(unit),
            "images": {"master": "image.webp", "thumb": "thumb.webp",
                       "negative": "negative.webp" if self.negative else None,
                       "kernel": "kernel.png" if unit.layer == "block1_conv1" else None},
            "settings": plan.record_settings(unit.seed(self.base_seed), self.negative, self.precision),
            "provenance": {
                "weights_source": self.loaded.source,
                "weights_sha256": self.loaded.sha256,
                "versions": {"generator": __version__, "tensorflow": tf.__version__,
                             "keras": keras.__version__, "python": platform.python_version()},
                "created": _now(),
                "seconds": round(seconds, 3),
                "batch_size": plan.settings.batch_size,
            },
            "results": {"objective": round(score, 4), "specificity": None, "robustness": None,
                        "flat": None},
        }

    def _measure_layer(self, plan):
        """Quality over every drawn unit of the layer (this run's and earlier ones'); updates records."""
        drawn = [(d, store.read_record(d)) for d in self._layer_dirs(plan.layer)]
        drawn = [
            (d, r) for d, r in drawn
            if r is not None and r["provenance"]["weights_sha256"] == self.loaded.sha256
            and r["settings"]["size"] == plan.settings.size
        ]
        if not drawn:
            return None
        directories, records = zip(*drawn)
        images = [np.asarray(Image.open(d / "image.webp").convert("RGB")) for d in directories]
        pad = plan.settings.transforms.pad

        def frame(batch):
            return np.pad(batch, [(0, 0), (pad, pad), (pad, pad), (0, 0)], constant_values=128)

        per_unit, summary = layer_quality(self._scores(plan), np.stack(images),
                                          [r["index"] for r in records], frame)
        for directory, record, quality in zip(directories, records, per_unit):
            record["results"].update(
                specificity=quality["specificity_margin"], robustness=quality["robustness"],
                flat=quality["flat"], specific=quality["specificity"],
            )
            store.atomic_write_json(directory / store.RECORD_NAME, record)
        return summary

    def _layer_dirs(self, layer):
        if layer == CLASS_LAYER:
            return sorted(Path(self.site_src, MODEL_NAME, "classes").glob("*/"))
        return sorted(Path(self.site_src, MODEL_NAME, layer).glob("*/"))

    def write_manifest(self, quality):
        """Write site_src/vgg16/manifest.json from the records on disk and {layer: quality summary}."""
        records = store.read_records(self.site_src)
        layers = {}
        for layer in [layer.name for layer in CONV_LAYERS] + [CLASS_LAYER]:
            total = NUM_CLASSES if layer == CLASS_LAYER else CONV_LAYER_BY_NAME[layer].filters
            entry = {"filters": total, "computed": sum(r["layer"] == layer for r in records)}
            if layer != CLASS_LAYER:
                entry["receptive_field"] = CONV_LAYER_BY_NAME[layer].receptive_field
            entry["quality"] = quality.get(layer) if entry["computed"] else None
            layers[layer] = entry
        manifest = {
            "schema": 1,
            "model": MODEL_NAME,
            "generator_version": __version__,
            "weights": {"source": self.loaded.source, "sha256": self.loaded.sha256,
                        "has_top": self.loaded.has_top},
            "updated": _now(),
            "layers": layers,
            "units": [
                {"layer": r["layer"], "index": r["index"], "kind": r["kind"], "label": r["label"],
                 "url": r["url"], "thumb": r["url"] + r["images"]["thumb"]}
                for r in records
            ],
        }
        store.write_manifest(self.site_src, manifest)
        return manifest


def _now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

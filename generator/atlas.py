"""The compute stage: draw the selected units of VGG16 and store them under site_src/.

For each layer: take its drawing plan (generator.plan), skip units already complete with the
same settings (resume), draw the rest in batches, write each batch as soon as it is done (a
killed run loses at most one batch), then measure the layer's quality over all of its drawn
units (generator.scoring) and write the manifest.
"""

import time
from dataclasses import replace

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from . import records, scoring, store
from .architecture import CLASS_LAYER, CONV_LAYERS
from .errors import UserError
from .model import preprocess, with_precision
from .optvis.objectives import gram_similarity, layer_scores, unit_objective
from .optvis.render import Renderer
from .plan import DrawOptions, kept_options, plan_layer

KERNEL_DISPLAY = 96
KERNEL_LAYER = CONV_LAYERS[0].name  # its 3x3 RGB kernels are shown beside its images


def kernel_image(kernel):
    """A first-layer kernel as an RGB picture.

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
        options: a generator.plan.DrawOptions.
        progress: a callable(total) -> object with update(n) and close(), e.g. tqdm; or None.
        log: callable(str) for one-line messages.
    """

    def __init__(self, loaded, site_src, options=DrawOptions(), progress=None, log=print):
        self.loaded = loaded
        self.site_src = site_src
        self.options = options
        self.progress = progress
        self.log = log
        self._drawing_models = {}  # is a class layer -> its network in the run's precision
        self._kernel_picture = None

    def run(self, units):
        """Draw `units` (list of generator.units.Unit); returns {layer: quality summary}."""
        if any(unit.kind == "class" for unit in units) and not self.loaded.has_top:
            raise UserError(
                f"class images need the 1,000-class ImageNet head, which the '{self.loaded.source}' "
                "weights lack; use --weights imagenet (or a full weights file), or drop --classes/predictions"
            )
        layers = list(dict.fromkeys(unit.layer for unit in units))
        plans = {layer: plan_layer(layer, self.options) for layer in layers}
        kept = kept_options(self.options)
        accepted = {layer: [(self.options, plan)] + [(other, plan_layer(layer, other)) for other in kept]
                    for layer, plan in plans.items()}
        pending = [u for u in units if not (self.options.resume and self._is_complete(u, accepted[u.layer]))]
        skipped = len(units) - len(pending)
        if skipped:
            self.log(f"resume: {skipped} of {len(units)} units already complete with these settings")
        measured = store.recorded_quality(self.site_src, self.log)
        bar = self.progress(len(pending)) if self.progress and pending else None
        summaries = {}
        try:
            for layer in layers:
                layer_units = [u for u in pending if u.layer == layer]
                if layer_units:
                    self._draw_layer(plans[layer], layer_units, bar)
                # A layer with nothing new keeps its measured quality; it is measured when it
                # changed, was never measured, or holds units a killed run left unscored.
                if layer_units or layer not in measured or store.needs_scoring(self.site_src, layer):
                    measured[layer] = scoring.score_layer(self.loaded.network_for(layer), self.site_src,
                                                          plans[layer], self.loaded.sha256, self.log)
                summaries[layer] = measured[layer]
        finally:
            if bar is not None:
                bar.close()
        store.update_manifest(self.site_src, self.loaded.manifest_weights, measured)
        return summaries

    def _settings(self, unit, plan):
        return plan.record_settings(unit.seed(self.options.seed), self.options)

    def _is_complete(self, unit, accepted):
        """Complete under one of `accepted` [(options, plan of the unit's layer)]: the run's own, then
        those of the options it keeps (kept_options)."""
        directory = records.unit_dir(self.site_src, unit.layer, unit.index)
        seed = unit.seed(self.options.seed)
        return any(store.is_complete(directory, plan.record_settings(seed, options), self.loaded.sha256)
                   for options, plan in accepted)

    def _drawing_model(self, layer):
        """The network of `layer` in the run's precision (quality is always measured in float32)."""
        kind = layer == CLASS_LAYER
        if kind not in self._drawing_models:
            self._drawing_models[kind] = with_precision(self.loaded.network_for(layer), self.options.precision.value)
        return self._drawing_models[kind]

    def _draw_layer(self, plan, units, bar):
        # A job smaller than a batch is one batch of its own size: padding it to the layer's batch
        # would draw copies for nothing (a unit's image does not depend on its batch).
        plan = replace(plan, settings=replace(plan.settings, batch_size=min(plan.settings.batch_size, len(units))))
        model, readout = self._drawing_model(plan.layer), plan.objective.readout
        renderer = Renderer(unit_objective(layer_scores(model, plan.layer, preprocess, readout, plan.diversity_layer)),
                            plan.settings, gram_similarity)
        batch, k = plan.settings.batch_size, plan.settings.diversity
        single = renderer  # negatives: one image per unit (a master does not depend on its siblings)
        if self.options.negative and k > 1:
            single = Renderer(unit_objective(layer_scores(model, plan.layer, preprocess, readout)),
                              replace(plan.settings, diversity=1))
        for start in range(0, len(units), batch):
            chunk = units[start : start + batch]
            began = time.perf_counter()
            indices, seeds = [u.index for u in chunk], [u.seed(self.options.seed) for u in chunk]
            images, objectives = renderer.render(indices, seeds)
            negatives = [None] * len(chunk)
            if self.options.negative:
                negatives, _ = single.render(indices, seeds, signs=[-1] * len(chunk))
            seconds = (time.perf_counter() - began) / len(chunk)
            for i, (unit, negative) in enumerate(zip(chunk, negatives)):
                self._write_unit(plan, unit, images[i * k : (i + 1) * k], negative, objectives[i * k], seconds)
            if bar is not None:
                bar.update(len(chunk))

    def _write_unit(self, plan, unit, images, negative, objective, seconds):
        """Write one unit: `images` (K, S, S, 3) uint8 (S the plan's image_size), the master first;
        `negative` or None."""
        provenance = {
            "weights_source": self.loaded.source,
            "weights_sha256": self.loaded.sha256,
            "versions": records.software_versions(tf, keras),
            "created": records.utc_now(),
            "seconds": round(seconds, 3),
            "batch_size": plan.settings.batch_size,
        }
        record = records.unit_record(unit.layer, unit.index, self._settings(unit, plan), provenance, objective,
                                     negative=negative is not None, diverse=len(images) - 1)
        names = record["images"]
        files = {names["master"]: images[0], names["thumb"]: store.thumbnail(images[0]),
                 **dict(zip(names.get("diverse", []), images[1:]))}
        if negative is not None:
            files[names["negative"]] = negative
        if names["kernel"]:
            files[names["kernel"]] = self._kernel(unit.index)
        store.write_unit(records.unit_dir(self.site_src, unit.layer, unit.index), record, files)

    def _kernel(self, index):
        if self._kernel_picture is None:
            self._kernel_picture = kernel_image(self.loaded.model.get_layer(KERNEL_LAYER).get_weights()[0])
        return self._kernel_picture(index)

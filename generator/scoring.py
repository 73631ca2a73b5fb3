"""Layer-wide figures over the units on disk: each layer's quality, and the manifest.

Quality (generator.quality) is a property of a whole layer: a unit is specific when its image
excites it more than every other drawn image of the layer does. So it is measured over every
drawn unit of the layer, after a run draws into it, after shards are merged, or when a killed
run left units unscored, and written back into the records. Nothing here draws.
"""

import numpy as np

from . import records, store
from .model import preprocess
from .optvis.objectives import layer_scores
from .quality import layer_quality


def layer_records(site_src, layer, on_invalid=None):
    """[(unit directory, record)] of every valid record of `layer` under `site_src`, by index."""
    found = []
    for directory in store.unit_dirs(site_src, layer):
        try:
            found.append((directory, store.read_record(directory)))
        except records.InvalidRecord as error:
            if on_invalid is None:
                raise
            on_invalid(error)
    return sorted(found, key=lambda pair: pair[1]["index"])


def needs_scoring(site_src, layer):
    """True when some unit of `layer` has no quality figures yet (e.g. a run killed before scoring)."""
    return any(not records.is_scored(record) for _, record in layer_records(site_src, layer, on_invalid=_ignore))


def _ignore(_error):
    pass


def score_layer(model, site_src, plan, weights_sha256, log=print):
    """Measure `plan.layer`'s quality over its units drawn with these weights at the plan's size.

    Writes each record whose figures changed (only those: an unchanged layer leaves the files
    byte-identical). Invalid records are skipped with one warning line each.

    Args:
        model: the float32 Keras model the units were drawn on.
        site_src: the output directory.
        plan: the layer's generator.plan.LayerPlan.
        weights_sha256: only units drawn with these weights are measured.
    Returns:
        The layer summary of generator.quality.layer_quality, or None when no unit qualifies.
    """
    drawn = [
        (directory, record)
        for directory, record in layer_records(site_src, plan.layer, on_invalid=lambda e: log(f"warning: {e}"))
        if record["provenance"]["weights_sha256"] == weights_sha256 and record["settings"]["size"] == plan.settings.size
    ]
    if not drawn:
        return None
    images = np.stack([store.load_rgb(directory / record["images"]["master"]) for directory, record in drawn])
    scores = layer_scores(model, plan.layer, preprocess, plan.objective.readout)
    per_unit, summary = layer_quality(scores, images, [record["index"] for _, record in drawn],
                                      pad=plan.settings.transforms.pad)
    for (directory, record), quality in zip(drawn, per_unit):
        scored = records.with_quality(record, quality)
        if scored != record:
            store.atomic_write_json(directory / records.UNIT_RECORD_NAME, scored)
    return summary


def write_manifest(site_src, weights, quality):
    """Write site_src/vgg16/manifest.json from the records on disk and {layer: quality summary}.

    `weights`: {"source", "sha256", "has_top"}. The `updated` timestamp changes only when the
    rest of the manifest does, so a run that changed nothing leaves the file byte-identical.
    Returns the manifest.
    """
    unit_records = store.read_records(site_src, on_invalid=_ignore)
    try:
        previous = store.read_manifest(site_src)
    except records.InvalidRecord:
        previous = None
    if previous is not None:
        unchanged = records.manifest(unit_records, weights, quality, previous.get("updated"))
        if unchanged == previous:
            return previous
    manifest = records.manifest(unit_records, weights, quality, records.utc_now())
    store.write_manifest(site_src, manifest)
    return manifest

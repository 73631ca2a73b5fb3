"""Each layer's quality, measured over all of its units on disk and written into their records.

Quality (generator.quality) is a property of a whole layer: a unit is specific when its image
excites it more than every other drawn image of the layer does. So it is measured over every
drawn unit of the layer, after a run draws into it, after shards are merged, or when a killed
run left units unscored (store.needs_scoring). Nothing here draws.
"""

import numpy as np

from . import records, store
from .model import preprocess
from .optvis.objectives import layer_scores
from .quality import as_drawn, layer_quality


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
        for directory, record in store.layer_records(site_src, plan.layer, on_invalid=lambda e: log(f"warning: {e}"))
        if record["provenance"]["weights_sha256"] == weights_sha256 and record["settings"]["size"] == plan.settings.size
    ]
    if not drawn:
        return None
    size = plan.settings.size  # masters of a detail phase are measured area-averaged back to it
    images = np.concatenate([as_drawn(store.load_rgb(directory / record["images"]["master"])[None], size)
                             for directory, record in drawn])
    scores = layer_scores(model, plan.layer, preprocess, plan.objective.readout)
    per_unit, summary = layer_quality(scores, images, [record["index"] for _, record in drawn],
                                      pad=plan.settings.transforms.pad)
    for (directory, record), quality in zip(drawn, per_unit):
        scored = records.with_quality(record, quality)
        if scored != record:
            store.atomic_write_json(directory / records.UNIT_RECORD_NAME, scored)
    return summary

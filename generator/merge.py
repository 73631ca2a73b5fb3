"""Merge the shards of a distributed build into one atlas: bookkeeping plus the layer-wide figures.

After generator.shards.check_shards has passed (any error is one line before the output
directory is touched), every unit is copied into the output directory (each file atomically,
its record last; a unit already there unchanged is skipped), every touched layer is re-scored
over all of its units (generator.scoring), and the manifest is written. The result equals one
run of the whole selection: the same images byte for byte, records equal but for `created`,
`seconds` and `batch_size`, the manifest equal but for `updated`.
"""

from . import records, scoring, store
from .architecture import CLASS_LAYER, CONV_LAYERS
from .plan import plan_layer


def _copy_unit(source_dir, target_dir):
    """Copy one complete unit: the old record removed first, files atomically, the record last."""
    record = store.read_record(source_dir)
    try:
        if store.read_record(target_dir) == record and all(
            (target_dir / name).read_bytes() == (source_dir / name).read_bytes()
            for name in records.image_files(record)
        ):
            return False
    except (records.InvalidRecord, OSError):
        pass
    files = {name: (source_dir / name).read_bytes() for name in records.image_files(record)}
    store.write_unit_files(target_dir, record, files)
    return True


def merge_shards(shards, out, loaded, log=print):
    """Merge checked shards into `out` (see the module docstring).

    Args:
        shards: from generator.shards.check_shards (the shards of one run, complete).
        out: the output directory (e.g. site_src), already locked by the caller.
        loaded: the generator.model.LoadedModel the shards were drawn with (to re-score the layers).
    Returns:
        {layer: quality summary} of the merged layers.
    """
    options = shards[0]["options"]
    units = [unit for shard in shards for unit in shard["units"]]
    copied = sum(_copy_unit(records.unit_dir(shard["dir"], u.layer, u.index), records.unit_dir(out, u.layer, u.index))
                 for shard in shards for u in shard["units"])
    log(f"merge: copied {copied} units into {out} ({len(units) - copied} already there)")
    quality = store.recorded_quality(out, log)
    touched = {unit.layer for unit in units}
    layers = [layer for layer in [conv.name for conv in CONV_LAYERS] + [CLASS_LAYER] if layer in touched]
    for layer in layers:
        quality[layer] = scoring.score_layer(loaded.network_for(layer), out, plan_layer(layer, options), loaded.sha256, log)
    store.update_manifest(out, loaded.manifest_weights, quality)
    return {layer: quality[layer] for layer in layers}


"""Shard directories of a distributed build, and the checks before they are merged.

A shard run (`build.py --shard I/N`) draws its part of a selection (generator.cost.shard_units)
into OUT/shard-I/ with the same per-unit layout as a full run, and writes `shard.json` there
first: which shard of which selection it is, with what options, and the units it owes.
`check_shards` reads the shards given to a merge, without TensorFlow: every shard of one
selection must be there once, every unit it owes complete with the run's settings, and all
drawn with one set of weights. generator.merge then combines them.
"""

import hashlib
import json
from dataclasses import asdict
from enum import Enum
from pathlib import Path

from . import records, store
from .errors import UserError
from .fileio import UnreadableJson, json_bytes, read_json, write_if_changed
from .plan import DrawOptions, Precision, Quality, plan_layer
from .units import MAX_SHARDS, Unit

SHARD_RECORD_NAME = "shard.json"
SHARD_SCHEMA = 1
SHARD_JSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "shard.json",
    "type": "object",
    "required": ["schema", "shard", "shards", "selection", "selection_units", "options", "units"],
    "properties": {
        "schema": {"const": SHARD_SCHEMA},
        "shard": {"type": "integer", "minimum": 0},
        "shards": {"type": "integer", "minimum": 1, "maximum": MAX_SHARDS},
        "selection": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "selection_units": {"type": "integer", "minimum": 0},
        "options": {"type": "object"},
        "units": {"type": "array", "items": {"type": "string", "pattern": "^[a-z0-9_]+/[0-9]+$"}},
    },
}


def _options_record(options):
    return {key: value.value if isinstance(value, Enum) else value for key, value in asdict(options).items()}


def _options_from_record(fields):
    fields = dict(fields, quality=Quality(fields["quality"]), precision=Precision(fields["precision"]))
    return DrawOptions(**fields)


def _unit_key(unit):
    return f"{unit.layer}/{unit.index}"


def selection_id(selection, options):
    """A short digest of a whole selection and its options: the shards of one run share it."""
    what = {"units": [_unit_key(u) for u in selection], "options": _options_record(options)}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def write_shard_manifest(shard_dir, shard, selection, units, options):
    """Write `shard.json` into `shard_dir` (unchanged bytes when rerun with the same arguments).

    Args:
        shard: (index, count).
        selection: every unit of the run, in selection order; `units`: this shard's.
        options: the run's DrawOptions.
    """
    document = {
        "schema": SHARD_SCHEMA,
        "shard": shard[0],
        "shards": shard[1],
        "selection": selection_id(selection, options),
        "selection_units": len(selection),
        "options": _options_record(options),
        "units": [_unit_key(u) for u in units],
    }
    write_if_changed(Path(shard_dir) / SHARD_RECORD_NAME, json_bytes(document))


def read_shard_manifest(shard_dir):
    """The shard.json of `shard_dir`; UserError (one line) when it is missing or malformed."""
    path = Path(shard_dir) / SHARD_RECORD_NAME
    try:
        document = read_json(path)
    except UnreadableJson as error:
        raise UserError(f"{path}: {error}; rerun that shard") from None
    if document is None:
        raise UserError(f"{shard_dir} is not a shard directory (no {SHARD_RECORD_NAME}); give the OUT/shard-I "
                        "directories that build.py --shard wrote")
    problem = records.schema_problem(document, SHARD_JSON_SCHEMA)
    if problem is None and document["shard"] >= document["shards"]:
        problem = f"shard {document['shard']} is not below shards {document['shards']}"
    if problem is None:
        units = [Unit(layer, int(index)) for layer, index in (key.split("/") for key in document["units"])]
        if not all(records.is_unit(unit.layer, unit.index) for unit in units):
            problem = "units: names a unit VGG16 does not have"
    if problem is not None:
        raise UserError(f"{path} is malformed ({problem}); rerun that shard")
    try:
        options = _options_from_record(document["options"])
    except (KeyError, TypeError, ValueError, UserError):
        raise UserError(f"{path} is malformed (options); rerun that shard") from None
    return {**document, "units": units, "options": options, "dir": Path(shard_dir)}


def _check_one_run(shards):
    """All shards of one selection and shard count, each once, none missing."""
    first = shards[0]
    for shard in shards[1:]:
        if (shard["selection"], shard["shards"]) != (first["selection"], first["shards"]):
            raise UserError(f"{shard['dir']} is shard {shard['shard']}/{shard['shards']} of selection "
                            f"{shard['selection']}, but {first['dir']} is of {first['selection']} with "
                            f"{first['shards']} shards; merge the shards of one run")
    seen = {}
    for shard in shards:
        if shard["shard"] in seen:
            raise UserError(f"shard {shard['shard']} is given twice: {seen[shard['shard']]} and {shard['dir']}")
        seen[shard["shard"]] = shard["dir"]
    missing = sorted(set(range(first["shards"])) - set(seen))
    if missing:
        raise UserError(f"{len(missing)} of {first['shards']} shards are missing: {_list(missing)}; give every "
                        "OUT/shard-I directory of the run")


def _list(items, limit=12):
    items = [str(item) for item in items]
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _incomplete_units(shard):
    """The units `shard` owes that are not complete there with the run's settings, and the weights seen."""
    options, missing, weights = shard["options"], [], {}
    plans = {layer: plan_layer(layer, options) for layer in {unit.layer for unit in shard["units"]}}
    for unit in shard["units"]:
        settings = plans[unit.layer].record_settings(unit.seed(options.seed), options)
        record = store.complete_record(records.unit_dir(shard["dir"], unit.layer, unit.index), settings)
        if record is None:
            missing.append(unit)
        else:
            weights.setdefault(record["provenance"]["weights_sha256"], unit)
    return missing, weights


def check_shards(shard_dirs):
    """Read and check the shards of one run; returns (shards, weights sha256) or raises UserError."""
    unique = list(dict.fromkeys(Path(d).resolve() for d in shard_dirs))
    if len(unique) < len(shard_dirs):
        twice = next(d for d in shard_dirs if [Path(e).resolve() for e in shard_dirs].count(Path(d).resolve()) > 1)
        raise UserError(f"{twice} is given twice; give each OUT/shard-I directory once")
    shards = sorted((read_shard_manifest(d) for d in unique), key=lambda s: s["shard"])
    _check_one_run(shards)
    incomplete, weights = {}, {}
    for shard in shards:
        missing, seen = _incomplete_units(shard)
        if missing:
            incomplete[shard["shard"]] = missing
        for sha, unit in seen.items():
            weights.setdefault(sha, (shard["dir"], unit))
    if incomplete:
        count = sum(len(units) for units in incomplete.values())
        example = next(iter(incomplete.values()))[0]
        raise UserError(f"{count} units are missing or incomplete, in shards {_list(sorted(incomplete))} (e.g. "
                        f"{example.layer} #{example.index}); rerun those shards, they resume")
    if len(weights) > 1:
        (sha_a, (dir_a, unit_a)), (sha_b, (dir_b, unit_b)) = list(weights.items())[:2]
        raise UserError(f"{unit_b.layer} #{unit_b.index} in {dir_b} was drawn with weights {sha_b[:12]}, "
                        f"{unit_a.layer} #{unit_a.index} in {dir_a} with {sha_a[:12]}; merge shards drawn with "
                        "the same --weights")
    return shards, next(iter(weights)) if weights else None

"""What to draw: layer ranges, filter and class selections, per-unit seeds, shards.

A selection is parsed from the command line into a list of `Unit`s in a stable order
(VGG16 layer order, then index), so shards and resumes see the same list every time.
"""

import difflib
import os
import re
import zlib
from dataclasses import dataclass

import numpy as np

from .architecture import (
    CLASS_LAYER,
    CONV_LAYER_BY_NAME,
    CONV_LAYERS,
    MODEL_NAME,
    NUM_CLASSES,
)
from .classes import find_class, load_classes
from .errors import UserError

_LAYER_NAMES = [layer.name for layer in CONV_LAYERS]
_BLOCK = re.compile(r"^block([1-5])$")


@dataclass(frozen=True)
class Unit:
    """One thing to draw: a conv filter (`layer`, channel `index`) or a class (`predictions`, index)."""

    layer: str
    index: int

    @property
    def kind(self):
        return "class" if self.layer == CLASS_LAYER else "filter"

    def seed(self, base_seed=0):
        """Deterministic 31-bit seed from the unit's identity and a run-wide base seed."""
        return zlib.crc32(f"{MODEL_NAME}/{self.layer}/{self.index}/{base_seed}".encode()) & 0x7FFFFFFF


def _layer_position(token):
    """Positions in _LAYER_NAMES of a layer or block name: (first, last), inclusive."""
    block = _BLOCK.match(token)
    if block:
        names = [i for i, name in enumerate(_LAYER_NAMES) if name.startswith(f"block{block.group(1)}_")]
        return names[0], names[-1]
    if token in CONV_LAYER_BY_NAME:
        position = _LAYER_NAMES.index(token)
        return position, position
    nearest = difflib.get_close_matches(token, _LAYER_NAMES + ["block1", "block5", CLASS_LAYER], n=3)
    hint = f"did you mean {', '.join(nearest)}?" if nearest else "valid: block1..block5, block1_conv1..block5_conv3, predictions"
    raise UserError(f"unknown layer {token!r}; {hint}")


def parse_layers(spec):
    """Parse a layer selection into layer names, in VGG16 order, without duplicates.

    Accepts comma lists of: a block ("block3"), a layer ("block4_conv2"), an inclusive range of
    either ("block1..block5", "block2_conv1..block3_conv1"), and "predictions" (the classes).
    """
    selected = set()
    for token in [part.strip() for part in spec.split(",") if part.strip()]:
        if token == CLASS_LAYER:
            selected.add(CLASS_LAYER)
            continue
        if ".." in token:
            ends = token.split("..")
            if len(ends) != 2 or not all(ends):
                raise UserError(f"malformed layer range {token!r}; write FIRST..LAST, e.g. block1..block5")
            first, last = _layer_position(ends[0])[0], _layer_position(ends[1])[1]
            if first > last:
                raise UserError(f"layer range {token!r} runs backwards; write it from the shallower layer")
        else:
            first, last = _layer_position(token)
        selected.update(_LAYER_NAMES[first : last + 1])
    if not selected:
        raise UserError("empty --layers; e.g. --layers block1..block5")
    return [name for name in _LAYER_NAMES + [CLASS_LAYER] if name in selected]


def parse_indices(spec, count, what="filter"):
    """Parse "0:16", "0,5,9", "3", "all" or mixes ("0:4,10") into sorted indices below `count`."""
    if spec.strip() == "all":
        return list(range(count))
    indices = set()
    for token in [part.strip() for part in spec.split(",") if part.strip()]:
        match = re.fullmatch(r"([0-9]*):([0-9]*)", token)
        if match:
            start = int(match.group(1) or 0)
            stop = int(match.group(2)) if match.group(2) else count
            if start >= stop:
                raise UserError(f"empty {what} range {token!r}; write START:STOP with START < STOP")
            if stop > count:
                raise UserError(f"{what} range {token!r} goes past {count - 1}, the last {what} here")
            indices.update(range(start, stop))
        elif re.fullmatch(r"[0-9]+", token):
            if int(token) >= count:
                raise UserError(f"{what} index {token} is out of range: valid are 0..{count - 1}")
            indices.add(int(token))
        else:
            raise UserError(f"malformed {what} selection {_clip(token)!r}; use e.g. 0:16 or 0,5,9")
    return sorted(indices)


def parse_classes(spec):
    """Class indices from a comma list of indices, index ranges, WordNet ids or names, or "all"."""
    if spec.strip() == "all":
        return list(range(len(load_classes())))
    indices = set()
    for token in [part.strip() for part in spec.split(",") if part.strip()]:
        if re.fullmatch(r"[0-9]*:[0-9]*", token):
            indices.update(parse_indices(token, NUM_CLASSES, "class"))
        else:
            indices.add(find_class(token).index)
    return sorted(indices)


def sample_indices(layer, count, per_layer):
    """A stable sample of `per_layer` indices of `count`; a smaller sample is a prefix of a larger."""
    order = np.random.default_rng(zlib.crc32(layer.encode())).permutation(count)
    return sorted(int(i) for i in order[:per_layer])


def select_units(layers=None, filters=None, classes=None, per_layer=None):
    """The units to draw, in stable order (split into shards by generator.cost.shard_units).

    Args:
        layers: layer spec for `parse_layers`, or None.
        filters: filter spec for `parse_indices`, applied to every selected conv layer; None = all.
        classes: class spec for `parse_classes`; selects the "predictions" layer too.
        per_layer: if set, a stable sample of at most this many units per layer (previews).
    Returns:
        list of Unit.
    """
    names = parse_layers(layers) if layers else []
    units = []
    for name in names:
        if name == CLASS_LAYER:
            continue
        count = CONV_LAYER_BY_NAME[name].filters
        indices = parse_indices(filters, count) if filters else list(range(count))
        if per_layer is not None:
            chosen = set(indices)
            indices = [i for i in sample_indices(name, count, per_layer) if i in chosen]
        units += [Unit(name, i) for i in indices]
    if classes:
        units += [Unit(CLASS_LAYER, i) for i in parse_classes(classes)]
    elif CLASS_LAYER in names:
        count = NUM_CLASSES
        indices = sample_indices(CLASS_LAYER, count, per_layer) if per_layer is not None else range(count)
        units += [Unit(CLASS_LAYER, i) for i in indices]
    return units


MAX_SHARDS = 10_000


def parse_shard(spec, shards=None, environ=None):
    """The (I, N) of `--shard I/N`, or of `--shard auto` from the scheduler's environment.

    auto: a SLURM job array gives I = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN and
    N = SLURM_ARRAY_TASK_COUNT; a Kubernetes Indexed Job gives I = JOB_COMPLETION_INDEX, with N
    from `shards` (--shards N). `shards`, when given, must agree with N.
    """
    environ = os.environ if environ is None else environ
    spec = spec.strip()
    if spec == "auto":
        index, count, source = _scheduler_shard(environ, shards)
    else:
        match = re.fullmatch(r"([0-9]+)/([0-9]+)", spec)
        if not match:
            raise UserError(f"malformed --shard {_clip(spec)!r}; write I/N with 0 <= I < N, e.g. 0/4, or auto")
        index, count, source = int(match.group(1)), int(match.group(2)), "--shard"
    if not 0 <= index < count <= MAX_SHARDS:
        raise UserError(f"malformed --shard {index}/{count} (from {source}); need 0 <= I < N <= {MAX_SHARDS:,}")
    if shards is not None and shards != count:
        raise UserError(f"--shards {shards} disagrees with {count} shards from {source}")
    return index, count


def _scheduler_shard(environ, shards):
    """(I, N, where they came from) of --shard auto."""
    if environ.get("SLURM_ARRAY_TASK_ID"):
        task, low, count = (environ.get(name, "") for name in
                            ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT"))
        if not all(re.fullmatch(r"[0-9]+", value) for value in (task, low or "0", count)):
            raise UserError("--shard auto: SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT "
                            "must be whole numbers; submit with sbatch --array=0-N")
        return int(task) - int(low or 0), int(count), "SLURM_ARRAY_TASK_*"
    if environ.get("JOB_COMPLETION_INDEX"):
        index = environ["JOB_COMPLETION_INDEX"]
        if not re.fullmatch(r"[0-9]+", index):
            raise UserError(f"--shard auto: JOB_COMPLETION_INDEX {_clip(index)!r} is not a whole number")
        if shards is None:
            raise UserError("--shard auto with JOB_COMPLETION_INDEX needs --shards N (the Job's completions)")
        return int(index), shards, "JOB_COMPLETION_INDEX"
    raise UserError("--shard auto found no scheduler: set SLURM_ARRAY_TASK_ID (sbatch --array) or "
                    "JOB_COMPLETION_INDEX (Kubernetes Indexed Job), or write --shard I/N")


def _clip(text, limit=40):
    """`text` cut to `limit` characters for an error message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."

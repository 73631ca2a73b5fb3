"""Dataset patches: where a filter's strongest activation sits in a photo, the best k photos per
filter, and the patch files and `dataset.json` of each filter's folder. No TensorFlow.

Geometry (VGG16: 3x3 'same' convs at stride 1, 2x2 max-pools at stride 2; generator.architecture):
a unit of a layer with receptive field r and stride s at map position (row, col) sees the input
rows s * row + (s - r) / 2 up to r rows further (and likewise columns); the box is clipped to
the photo. E.g. block1_conv2 (r 5, s 1) at (10, 20): columns 18..22, rows 8..12.
"""

from pathlib import Path

import numpy as np

from . import records, store
from .architecture import CONV_LAYER_BY_NAME
from .fileio import UnreadableJson, atomic_write_json, read_json, write_if_changed

PATCH_QUALITY = 80  # WebP quality of the patches
ACTIVATION_DIGITS = 4  # significant digits of the activations written


def map_side(layer, size):
    """Side of `layer`'s activation map for a size x size input (VGG16: halved by each pool before it)."""
    return size // CONV_LAYER_BY_NAME[layer].stride


def receptive_box(layer, row, col, size):
    """[left, top, right, bottom) in input pixels of the receptive field of `layer` at (row, col),
    clipped to the size x size input (module docstring)."""
    facts = CONV_LAYER_BY_NAME[layer]
    field, stride = facts.receptive_field, facts.stride
    offset = (stride - field) // 2  # (s - r) is even for every VGG16 layer
    top, left = row * stride + offset, col * stride + offset
    return [max(0, left), max(0, top), min(size, left + field), min(size, top + field)]


class TopPatches:
    """The k photos with the highest max activation of each unit, and where that max is.

    Memory is O(units x k) whatever the number of photos. A photo whose max is 0 (the filter
    stays silent) never enters; ties keep the earlier photo.

    Args:
        units: number of units (columns of the offered arrays).
        k: photos kept per unit.
    """

    def __init__(self, units, k):
        self.values = np.full((units, k), -np.inf, np.float32)
        self.photo_ids = np.full((units, k), -1, np.int64)
        self.positions = np.zeros((units, k), np.int64)

    def add(self, photo_ids, maxima, positions):
        """Offer a batch: photo_ids int (B,) increasing, maxima float (B, units), positions int (B, units)."""
        maxima = np.asarray(maxima, np.float32).T
        values = np.concatenate([self.values, np.where(maxima > 0, maxima, -np.inf)], axis=1)
        ids = np.concatenate([self.photo_ids, np.broadcast_to(np.asarray(photo_ids, np.int64), maxima.shape)], axis=1)
        where = np.concatenate([self.positions, np.asarray(positions, np.int64).T], axis=1)
        order = np.argsort(-values, axis=1, kind="stable")[:, : self.values.shape[1]]
        self.values = np.take_along_axis(values, order, axis=1)
        self.photo_ids = np.take_along_axis(ids, order, axis=1)
        self.positions = np.take_along_axis(where, order, axis=1)

    def live_photos(self):
        """The photo ids held by some unit (sorted)."""
        return [int(i) for i in np.unique(self.photo_ids[np.isfinite(self.values)])]

    def best(self, unit):
        """[(photo id, activation, flat position)] of column `unit`, best first (fewer than k when
        fewer photos excite it)."""
        return [(int(i), float(v), int(p))
                for i, v, p in zip(self.photo_ids[unit], self.values[unit], self.positions[unit]) if np.isfinite(v)]


def patch_entries(layer, best, photos, sha_of, size):
    """The `patches` list of a unit's dataset record (records.dataset_record) from TopPatches.best."""
    side = map_side(layer, size)
    entries = []
    for photo_id, activation, position in best:
        row, col = divmod(position, side)
        photo, sha = photos[photo_id], sha_of[photo_id]
        entries.append({"file": records.dataset_patch_name(sha), "activation": float(f"{activation:.{ACTIVATION_DIGITS}g}"),
                        "photo": photo.name, "photo_sha256": sha, "licence": photo.licence, "credit": photo.credit,
                        "box": receptive_box(layer, row, col, size), "position": [row, col]})
    return entries


def _old_record(unit_dir, layer, index):
    """The valid dataset.json in `unit_dir`, or None (missing or invalid: then its files are not ours to delete)."""
    try:
        record = read_json(unit_dir / records.DATASET_RECORD_NAME)
    except UnreadableJson:
        return None
    return record if record is not None and records.dataset_problem(record, layer, index) is None else None


def write_dataset_records(site_src, new_records, photos, read):
    """Write each unit's patches and dataset.json, touching only units whose record or files changed.

    For such a unit: its old dataset.json is removed first, then the patch files only it listed,
    then the patches are cut (each photo decoded once for all its patches) and the record is
    written last, so a killed run leaves no record beside patches it does not describe.

    Args:
        site_src: the MkDocs docs_dir; a unit's files go to its folder (records.unit_dir).
        new_records: {(layer, index): (records.dataset_record, [photo id of each patch])}.
        photos: the DatasetPhotos the photo ids index.
        read: DatasetPhoto -> uint8 (size, size, 3) RGB, or None when unreadable (its patches are
            then left out of the records; the reader warns).
    Returns:
        The number of units written.
    """
    changed = []
    for (layer, index), (record, photo_ids) in new_records.items():
        unit_dir = records.unit_dir(site_src, layer, index)
        old = _old_record(unit_dir, layer, index)
        if old == record and all((unit_dir / patch["file"]).is_file() for patch in record["patches"]):
            continue
        (unit_dir / records.DATASET_RECORD_NAME).unlink(missing_ok=True)
        kept = {patch["file"] for patch in record["patches"]}
        for patch in (old or {}).get("patches", []):
            if patch["file"] not in kept:
                (unit_dir / patch["file"]).unlink(missing_ok=True)
        changed.append((unit_dir, record, photo_ids))
    cuts = {}  # photo id -> [(unit dir, file, box)]
    for unit_dir, record, photo_ids in changed:
        for patch, photo_id in zip(record["patches"], photo_ids):
            cuts.setdefault(photo_id, []).append((unit_dir, patch["file"], patch["box"]))
    unreadable = set()
    for photo_id in sorted(cuts):
        rgb = read(photos[photo_id])
        if rgb is None:
            unreadable.add(photo_id)
            continue
        for unit_dir, file_name, (left, top, right, bottom) in cuts[photo_id]:
            write_if_changed(unit_dir / file_name, store.encode_image(rgb[top:bottom, left:right], file_name, PATCH_QUALITY))
    for unit_dir, record, photo_ids in changed:
        patches = [patch for patch, photo_id in zip(record["patches"], photo_ids) if photo_id not in unreadable]
        atomic_write_json(Path(unit_dir, records.DATASET_RECORD_NAME), dict(record, patches=patches))
    return len(changed)

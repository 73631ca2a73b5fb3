"""The atlas data on disk under `site_src/`: unit images and records, the manifest, the run lock.

A unit is complete when its `unit.json` is in place: a run writes the unit's images first and
its record last, each atomically (generator.fileio), and removes an old record before it
replaces the images it describes, so a killed run never leaves a record beside images it does
not describe. Records are validated against the contract (generator.records) as they are read.
"""

import io
import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

import filelock
import numpy as np
from PIL import Image

from . import records
from .architecture import MODEL_NAME
from .errors import UserError
from .fileio import (
    UnreadableJson,
    atomic_write_bytes,
    atomic_write_json,
    read_json,
    remove_stale_temporaries,
)

THUMB_SIZE = 96
THUMB_QUALITY = 80
# Masters, negatives and diverse images: 85 since 2026-12-05 (90 before), which keeps the full site
# with the classes' 384 px masters under its 500 MB budget (docs/SITE.md); shown at half their side.
MASTER_QUALITY = 85
LOCK_NAME = ".atlas.lock"
LOCK_HOLDER_NAME = ".atlas.lock.json"


def encode_image(rgb, file_name, quality=MASTER_QUALITY):
    """Encode an image for `file_name`'s extension (.webp or .png).

    Args:
        rgb: uint8 array of shape (H, W, 3), RGB.
        file_name: target name; WebP is written at `quality` (0-100, method 6), PNG losslessly.
        quality: WebP quality; thumbnails use THUMB_QUALITY.
    Returns:
        The encoded bytes.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3) RGB, got {rgb.dtype} {rgb.shape}")
    buffer = io.BytesIO()
    image = Image.fromarray(rgb, "RGB")
    if file_name.endswith(".webp"):
        image.save(buffer, "WEBP", quality=quality, method=6)
    elif file_name.endswith(".png"):
        image.save(buffer, "PNG", optimize=True)
    else:
        raise ValueError(f"unsupported image type: {file_name}")
    return buffer.getvalue()


def encode_for(name, rgb):
    """`rgb` encoded for the file `name`: thumbnails at THUMB_QUALITY, others at MASTER_QUALITY."""
    return encode_image(rgb, name, THUMB_QUALITY if name.startswith("thumb") else MASTER_QUALITY)


def save_image(path, rgb):
    """Atomically save a uint8 (H, W, 3) RGB array as WebP or PNG, by `path`'s extension."""
    atomic_write_bytes(path, encode_for(Path(path).name, rgb))


def thumbnail(rgb, size=THUMB_SIZE):
    """Return a (size, size, 3) uint8 Lanczos-resized copy of a square (H, W, 3) uint8 image."""
    image = Image.fromarray(np.asarray(rgb), "RGB").resize((size, size), Image.LANCZOS)
    return np.asarray(image)


def load_rgb(path):
    """A stored image as uint8 (H, W, 3) RGB."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def write_unit(unit_dir, record, images):
    """Write one unit's images, then its record, each atomically.

    An existing record is removed first: if the run dies while the images are replaced, the
    unit counts as incomplete and is redrawn, never as complete with images of other settings.

    Args:
        unit_dir: the unit's directory, e.g. site_src/vgg16/block4_conv2/17.
        record: the unit record (generator.records); written last as unit.json.
        images: file name -> uint8 (H, W, 3) RGB array, e.g. {"image.webp": ..., "thumb.webp": ...}.
    """
    write_unit_files(unit_dir, record, {name: encode_for(name, rgb) for name, rgb in images.items()})


def write_unit_files(unit_dir, record, files):
    """Write one unit's encoded files ({name: bytes}), then its record, as `write_unit` does.

    Diverse images of an earlier drawing that this one does not have (a smaller --diversity)
    are removed before the record is written, so the site does not publish them.
    """
    unit_dir = Path(unit_dir)
    (unit_dir / records.UNIT_RECORD_NAME).unlink(missing_ok=True)
    for file_name, data in files.items():
        atomic_write_bytes(unit_dir / file_name, data)
    for number in range(1, records.MAX_DIVERSE + 1):
        if records.DIVERSE_NAME.format(number) not in files:
            (unit_dir / records.DIVERSE_NAME.format(number)).unlink(missing_ok=True)
    atomic_write_json(unit_dir / records.UNIT_RECORD_NAME, record)


def read_valid(path, problem_of, remedy="delete it, or rerun the drawing to redo it"):
    """The JSON document at `path`, checked by `problem_of` (document -> None or why it is
    invalid); None when there is no such file.

    Raises records.InvalidRecord, one line naming the file, the problem and `remedy`.
    """
    try:
        document = read_json(path)
    except UnreadableJson as error:
        raise records.InvalidRecord(f"{path}: {error}; {remedy}") from None
    problem = problem_of(document) if document is not None else None
    if problem:
        raise records.InvalidRecord(f"{path}: {problem}; {remedy}")
    return document


def read_record(unit_dir):
    """The unit record in `unit_dir`, or None when there is none (the unit is not complete).

    Raises records.InvalidRecord (one line naming the file) when it breaks the contract or names
    an image outside its folder.
    """
    return read_valid(Path(unit_dir) / records.UNIT_RECORD_NAME, records.unit_problem)


def image_side(path):
    """The width of a stored image, read from its header; None when it is unreadable."""
    try:
        with Image.open(path) as image:
            return image.size[0] if image.size[0] == image.size[1] else None
    except (OSError, ValueError):
        return None


def complete_record(unit_dir, settings):
    """The record of `unit_dir` when it is valid, made with these settings, and its images are
    there, the master at the recorded size; None otherwise (the unit is to be drawn)."""
    try:
        record = read_record(unit_dir)
    except records.InvalidRecord:
        return None
    if record is None or record["settings"] != settings:
        return None
    if not all((Path(unit_dir) / name).is_file() for name in records.image_files(record)):
        return None
    return record if image_side(Path(unit_dir) / record["images"]["master"]) == records.master_side(settings) else None


def is_complete(unit_dir, settings, weights_sha256):
    """True when `unit_dir` holds a complete record (`complete_record`) drawn with these weights."""
    record = complete_record(unit_dir, settings)
    return record is not None and record["provenance"]["weights_sha256"] == weights_sha256


def unit_dirs(site_src, layer):
    """Every directory of `layer` under `site_src` that holds a unit.json, sorted by path."""
    return sorted(path.parent for path in records.layer_dir(site_src, layer).glob(f"*/{records.UNIT_RECORD_NAME}"))


def read_records(site_src, on_invalid=None):
    """Every unit record under site_src/vgg16/, in atlas order (generator.records.sort_records).

    Args:
        on_invalid: called with each records.InvalidRecord and the record skipped; None raises it.
    """
    found = []
    for path in sorted(Path(site_src, MODEL_NAME).glob(f"*/*/{records.UNIT_RECORD_NAME}")):
        try:
            found.append(read_record(path.parent))
        except records.InvalidRecord as error:
            if on_invalid is None:
                raise
            on_invalid(error)
    return records.sort_records(found)


def write_manifest(site_src, manifest):
    """Atomically write site_src/vgg16/manifest.json."""
    atomic_write_json(records.manifest_path(site_src), manifest)


def read_manifest(site_src):
    """site_src/vgg16/manifest.json parsed, or None when absent; records.InvalidRecord when invalid."""
    return read_valid(records.manifest_path(site_src), records.manifest_problem)


def layer_records(site_src, layer, on_invalid=None):
    """[(unit directory, record)] of every valid record of `layer` under `site_src`, by index."""
    found = []
    for directory in unit_dirs(site_src, layer):
        try:
            found.append((directory, read_record(directory)))
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


def recorded_quality(site_src, log=print):
    """{layer: quality} of the manifest on disk; {} when there is none or it is invalid (said in one line)."""
    try:
        manifest = read_manifest(site_src) or {}
    except records.InvalidRecord as error:
        log(f"warning: {error}")
        manifest = {}
    return {layer: entry["quality"] for layer, entry in manifest.get("layers", {}).items() if entry["quality"]}


def update_manifest(site_src, weights, quality):
    """Write site_src/vgg16/manifest.json from the records on disk and {layer: quality summary}.

    `weights`: {"source", "sha256", "has_top"}. The `updated` timestamp changes only when the
    rest of the manifest does, so a run that changed nothing leaves the file byte-identical.
    Returns the manifest.
    """
    unit_records = read_records(site_src, on_invalid=_ignore)
    try:
        previous = read_manifest(site_src)
    except records.InvalidRecord:
        previous = None
    if previous is not None:
        unchanged = records.manifest(unit_records, weights, quality, previous.get("updated"))
        if unchanged == previous:
            return previous
    manifest = records.manifest(unit_records, weights, quality, records.utc_now())
    write_manifest(site_src, manifest)
    return manifest


@contextmanager
def output_lock(site_src):
    """Hold the lock of an output directory for the duration of a run.

    The lock is an advisory file lock (`filelock`), released by the system when its process
    dies, so a killed run never blocks the next one. Beside it, `.atlas.lock.json` says who
    holds it. Raises UserError (one line naming the holder) when another run holds it. Once
    held, the temporaries a killed run left behind are removed (no live run owns them).
    """
    site_src = Path(site_src)
    lock = filelock.FileLock(site_src / LOCK_NAME, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        holder = _lock_holder(site_src)
        raise UserError(f"{site_src} is in use by another run ({holder}); wait for it to finish, "
                        "or give this run another --out") from None
    try:
        atomic_write_json(site_src / LOCK_HOLDER_NAME, {
            "pid": os.getpid(), "host": socket.gethostname(), "since": records.utc_now(),
            "command": " ".join(sys.argv)[:300],
        })
        remove_stale_temporaries(site_src)
        yield
    finally:
        (site_src / LOCK_HOLDER_NAME).unlink(missing_ok=True)
        lock.release()


def _lock_holder(site_src):
    try:
        holder = read_json(Path(site_src) / LOCK_HOLDER_NAME) or {}
        return f"pid {holder['pid']} on {holder['host']} since {holder['since']}: {holder['command']}"
    except (UnreadableJson, KeyError, TypeError):
        return "holder unknown"

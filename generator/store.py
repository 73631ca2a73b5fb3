"""Atomic, resumable storage of the atlas data under `site_src/`.

Every file is written to a temporary name in its final directory and moved into place with
`os.replace`, so a killed run never leaves a half-written file. A unit's `unit.json` is written
last: its presence marks the unit complete (see docs/ARCHITECTURE.md).
"""

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from .architecture import CONV_LAYERS
from .errors import UserError

RECORD_NAME = "unit.json"
MANIFEST_NAME = "manifest.json"
THUMB_SIZE = 96
THUMB_QUALITY = 80
RECORD_SCHEMA = 1


def atomic_write_bytes(path, data):
    """Write `data` (bytes) to `path` atomically, creating parent directories."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise UserError(f"cannot write to {path.parent}: {error.strerror}; choose a writable --out") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; the site is served to everyone
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_json(path, obj):
    """Write `obj` as indented UTF-8 JSON to `path` atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))


def read_json(path):
    """Return the parsed JSON at `path`, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def encode_image(rgb, file_name, quality=90):
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


def save_image(path, rgb):
    """Atomically save a uint8 (H, W, 3) RGB array as WebP or PNG, by `path`'s extension."""
    name = Path(path).name
    quality = THUMB_QUALITY if name.startswith("thumb") else 90
    atomic_write_bytes(path, encode_image(rgb, name, quality))


def thumbnail(rgb, size=THUMB_SIZE):
    """Return a (size, size, 3) uint8 Lanczos-resized copy of a square (H, W, 3) uint8 image."""
    image = Image.fromarray(np.asarray(rgb), "RGB").resize((size, size), Image.LANCZOS)
    return np.asarray(image)


def write_unit(unit_dir, record, images):
    """Write one unit's images, then its record, each atomically.

    Args:
        unit_dir: the unit's directory, e.g. site_src/vgg16/block4_conv2/17.
        record: the unit record (docs/ARCHITECTURE.md); written last as unit.json.
        images: file name -> uint8 (H, W, 3) RGB array, e.g. {"image.webp": ..., "thumb.webp": ...}.
    """
    unit_dir = Path(unit_dir)
    for file_name, rgb in images.items():
        save_image(unit_dir / file_name, rgb)
    atomic_write_json(unit_dir / RECORD_NAME, record)


def read_record(unit_dir):
    """Return the unit record in `unit_dir`, or None when the unit is not complete."""
    record = read_json(Path(unit_dir) / RECORD_NAME)
    return record if isinstance(record, dict) and record.get("schema") == RECORD_SCHEMA else None


def is_complete(unit_dir, settings, weights_sha256):
    """True when `unit_dir` holds a record made with these settings and weights, and its images."""
    record = read_record(unit_dir)
    if record is None:
        return False
    if record["settings"] != settings or record["provenance"]["weights_sha256"] != weights_sha256:
        return False
    return all((Path(unit_dir) / name).is_file() for name in record["images"].values() if name)


def read_records(site_src, model="vgg16"):
    """Return every complete unit record under site_src/<model>/, sorted by (layer order, index).

    Filters come in VGG16 layer order, then classes ("predictions") by index.
    """
    order = {layer.name: position for position, layer in enumerate(CONV_LAYERS)}
    records = []
    for path in sorted(Path(site_src, model).glob(f"*/*/{RECORD_NAME}")):
        record = read_record(path.parent)
        if record is not None:
            records.append(record)
    records.sort(key=lambda r: (order.get(r["layer"], len(order)), r["index"]))
    return records


def write_manifest(site_src, manifest, model="vgg16"):
    """Atomically write site_src/<model>/manifest.json."""
    atomic_write_json(Path(site_src, model, MANIFEST_NAME), manifest)


def read_manifest(site_src, model="vgg16"):
    """Return site_src/<model>/manifest.json parsed, or None when absent."""
    return read_json(Path(site_src, model, MANIFEST_NAME))

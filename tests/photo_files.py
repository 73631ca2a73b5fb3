"""Photo files for the tests of generator.photos and the saliency stage: good ones and every kind of bad one."""

import struct
import zlib

import numpy as np
from PIL import Image


def save(tmp_path, name, array, mode=None, **options):
    path = tmp_path / name
    Image.fromarray(np.asarray(array), mode).save(path, **options)
    return path


def stripes(height, width, colours):
    """uint8 (height, width, 3): vertical stripes of equal width, one per colour."""
    image = np.zeros((height, width, 3), np.uint8)
    for number, colour in enumerate(colours):
        image[:, number * width // len(colours):(number + 1) * width // len(colours)] = colour
    return image


def png_header_only(path, width, height):
    """A PNG whose header claims width x height pixels (no pixel data): a decompression bomb."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IEND", b""))
    return path


def truncated(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def bad_files(folder):
    """Write every kind of unusable photo into `folder`; {file name: words of its reason}."""
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a photo")
    Image.new("RGB", (8, 8)).save(folder / "animation.png", format="GIF")
    truncated(save(folder, "cut.png", noise))
    truncated(save(folder, "cut.jpg", noise, quality=90))
    png_header_only(folder / "bomb.png", 50_000, 50_000)  # over twice PIL's limit: an error
    png_header_only(folder / "big.png", 10_000, 10_000)  # over the limit: a warning, made an error
    return {
        "empty.png": "empty file",
        "notes.jpg": "not a JPEG, PNG or WebP",
        "animation.png": "not a JPEG, PNG or WebP",
        "cut.png": "truncated or corrupt",
        "cut.jpg": "truncated or corrupt",
        "bomb.png": "decompression bomb",
        "big.png": "decompression bomb",
    }

"""Per-photo cache of every filter's strongest activation, so a rerun over a folder needs no forward pass.

One file per photo under `<cache>/activations/v<FORMAT>-<weights sha256[:16]>-<size>px/<aa>/<sha256>.npy`
(`<cache>`: `$VGG16_ATLAS_CACHE`, else ~/.cache/vgg16-atlas, as generator.weights), keyed by the
sha256 of the photo file's bytes, the weights checksum and the model input size. The file is a
NumPy array of UNIT_DTYPE, shape (units,): per filter its max post-ReLU activation (float16)
and where it is (uint16: row * width + column in the filter's layer map). 4 bytes a filter:
17,024 bytes a photo for VGG16's 4,224 filters. Written atomically; a file that cannot be read
or has another shape counts as missing and is rewritten. Bump FORMAT when what is stored, or how
photos are loaded (generator.photos.load_photo), changes.

No TensorFlow here.
"""

import io

import numpy as np

from .fileio import atomic_write_bytes
from .weights import cache_dir

FORMAT = 1
UNIT_DTYPE = np.dtype([("max", "<f2"), ("argmax", "<u2")])
MAX_POSITIONS = 1 << 16  # positions a uint16 can name: layer maps up to 256 x 256


class ActivationCache:
    """The cached (max, argmax) of every filter for photos seen before with these weights and size.

    Args:
        weights_sha256: the weights checksum (generator.model.LoadedModel.sha256).
        size: the model input side in pixels (at most 256, so positions fit in uint16).
        units: the number of filters per photo (4,224 for VGG16).
        root: the cache directory (default: generator.weights.cache_dir()).
    """

    def __init__(self, weights_sha256, size, units, root=None):
        if size * size > MAX_POSITIONS:
            raise ValueError(f"input size {size} px is over the cache's 256 px limit")
        self.units = units
        self.directory = (root or cache_dir()) / "activations" / f"v{FORMAT}-{weights_sha256[:16]}-{size}px"

    def path(self, photo_sha256):
        return self.directory / photo_sha256[:2] / f"{photo_sha256}.npy"

    def get(self, photo_sha256):
        """(max float16 (units,), argmax uint16 (units,)) of the photo, or None when not cached."""
        try:
            array = np.load(self.path(photo_sha256), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if array.dtype != UNIT_DTYPE or array.shape != (self.units,):
            return None
        return array["max"], array["argmax"]

    def put(self, photo_sha256, maxima, positions):
        """Store the photo's float16 maxima and uint16 positions, each (units,), atomically."""
        array = np.empty(self.units, UNIT_DTYPE)
        array["max"], array["argmax"] = maxima, positions
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        atomic_write_bytes(self.path(photo_sha256), buffer.getvalue())

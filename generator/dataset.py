"""The dataset-examples stage: rank a folder of photos for every filter, keep each filter's top-k patches.

Streaming: photos go through the conv base in batches (`DatasetOptions.batch_size`, 8); one
forward pass gives every filter of the 13 conv layers (VGG16: 4,224) its max post-ReLU
activation over the photo and where it is (`MaxActivations`). Each photo's result is cached
(generator.activation_cache: a rerun decodes no photo and runs no forward pass) and offered to a
bounded top-k table (patches.TopPatches), so memory grows with units x k, never with the number
of photos. At the end each asked filter's folder gets one patch per photo in its top-k (the crop
of the filter's receptive field around the max, patches.receptive_box) and a dataset.json.
Photos and licences: generator.dataset_photos. Files: docs/ARCHITECTURE.md.
"""

import time
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from . import records
from .errors import UserError
from .activation_cache import ActivationCache
from .dataset_photos import dataset_photos
from .fileio import sha256_file
from .patches import TopPatches, patch_entries, write_dataset_records
from .photos import MODEL_INPUT_SIZE, RESIZE_MODE, PhotoReader
from .targets import checked_targets, conv_layers, image_spec

FLOAT16_MAX = 65504.0  # cached maxima saturate here


class MaxActivations:
    """Every conv filter's max post-ReLU activation over each image, and where it is, in one pass.

    `units[i]` = (layer name, filter index) of column i (VGG16: 4,224 columns, layer order).
    The Keras model and its tf.function are built on the first call, so a run that finds
    everything cached never builds them. `calls` counts forward passes.

    Args:
        model: Keras CNN taking preprocessed images; its Conv2D layers end in ReLU.
        preprocess: RGB (B, H, W, 3) 0..255 -> model input.
    """

    def __init__(self, model, preprocess):
        self._layers = conv_layers(model)
        self.units = [(layer.name, index) for layer in self._layers for index in range(layer.filters)]
        self._source, self._preprocess = model, preprocess
        self._function = None
        self.calls = self.images = 0

    def _max_and_where(self, x):
        maxima, positions = [], []
        for output in self._model(x):
            flat = tf.reshape(output, [tf.shape(output)[0], -1, output.shape[-1]])
            maxima.append(tf.reduce_max(flat, axis=1))
            positions.append(tf.argmax(flat, axis=1, output_type=tf.int32))
        return tf.concat(maxima, axis=-1), tf.concat(positions, axis=-1)

    def __call__(self, rgb_batch):
        """uint8 RGB (B, H, W, 3) -> (float32 (B, units) maxima, int32 (B, units) positions: row * map
        width + column in the unit's layer map; the first one when the max is reached twice)."""
        if self._function is None:
            import keras

            self._model = keras.Model(self._source.inputs, [layer.output for layer in self._layers])
            self._function = tf.function(self._max_and_where, input_signature=[image_spec(self._source)])
        self.calls += 1
        self.images += len(rgb_batch)
        x = self._preprocess(tf.constant(np.asarray(rgb_batch, np.float32)))
        maxima, positions = self._function(tf.convert_to_tensor(x, dtype=tf.float32))
        return maxima.numpy(), positions.numpy()


def _file_sha256(path):
    """sha256 of the file, None when it cannot be read (the reader then skips it with its warning)."""
    try:
        return sha256_file(path)
    except OSError:
        return None


def rank_dataset(photos, read, forward, cache, columns, k, batch_size, progress=False):
    """Stream the photos in batches through the cache or the forward pass, keeping each column's top k.

    Args:
        photos: DatasetPhotos.
        read: DatasetPhoto -> uint8 (size, size, 3) RGB, or None when unreadable (skipped).
        forward: a MaxActivations (called only for photos not in the cache).
        cache: an ActivationCache of the model's weights and input size.
        columns: int array, the columns of `forward.units` to rank (the asked filters).
        k: photos kept per column.
        batch_size: photos per forward pass.
        progress: show a tqdm bar (photos/s and ETA).
    Returns:
        (TopPatches over `columns`, {photo id: sha256} of the photos it holds, readable photo count).
    """
    top, sha_of, readable = TopPatches(len(columns), k), {}, 0
    with tqdm(total=len(photos), desc="ranking photos", unit="photo", disable=not progress, dynamic_ncols=True) as bar:
        for start in range(0, len(photos), batch_size):
            ids = range(start, min(start + batch_size, len(photos)))
            shas = {photo_id: _file_sha256(photos[photo_id].path) for photo_id in ids}
            found = {photo_id: cache.get(sha) if sha else None for photo_id, sha in shas.items()}
            missing = [(photo_id, read(photos[photo_id])) for photo_id in ids if found[photo_id] is None]
            missing = [(photo_id, rgb) for photo_id, rgb in missing if rgb is not None and shas[photo_id]]
            if missing:
                maxima, positions = forward(np.stack([rgb for _, rgb in missing]))
                for (photo_id, _), photo_max, photo_where in zip(missing, maxima, positions):
                    found[photo_id] = (np.minimum(photo_max, FLOAT16_MAX).astype(np.float16), photo_where.astype(np.uint16))
                    cache.put(shas[photo_id], *found[photo_id])
            done = [photo_id for photo_id in ids if found[photo_id] is not None]
            if done:
                readable += len(done)
                top.add(done, np.stack([found[i][0][columns] for i in done]), np.stack([found[i][1][columns] for i in done]))
                sha_of.update((photo_id, shas[photo_id]) for photo_id in done)
                sha_of = {photo_id: sha_of[photo_id] for photo_id in top.live_photos()}
            bar.update(len(ids))
    return top, sha_of, readable


@dataclass(frozen=True)
class DatasetStats:
    """What one run_dataset call did.

    Attributes:
        photos: photos offered; readable: of them ranked (the others were skipped with a warning).
        forward_passes: batches that ran through the network (0 when every photo was cached).
        filters: filters asked; written: of them whose patches or dataset.json were (re)written.
        rank_seconds, write_seconds: wall time of the ranking and of cutting and writing the patches.
    """

    photos: int
    readable: int
    forward_passes: int
    filters: int
    written: int
    rank_seconds: float
    write_seconds: float


def run_dataset(loaded, site_src, units, options, *, preprocess=None, cache_root=None, progress=True, log=print):
    """Rank the dataset photos for the asked filters and write their patches and dataset.json.

    Args:
        loaded: generator.model.LoadedModel (its conv base is run).
        site_src: the MkDocs docs_dir.
        units: [(conv layer name, filter index)] to write patches for (none: nothing is done).
        options: dataset_photos.DatasetOptions.
        preprocess: RGB 0..255 -> model input (default generator.model.preprocess).
        cache_root: the activation cache's directory (default: the user cache).
        progress: show the progress bar.
        log: receives warnings and one summary line.
    Returns:
        DatasetStats.
    Raises:
        UserError: a bad folder or LICENSES.csv, an unknown unit, no readable photo.
    """
    if preprocess is None:
        from .model import preprocess
    targets, _ = checked_targets(loaded.model, units)
    photos = dataset_photos(options)
    model = loaded.conv_base
    size = model.inputs[0].shape[1] or MODEL_INPUT_SIZE
    forward = MaxActivations(model, preprocess)
    if not targets:
        return DatasetStats(len(photos), 0, 0, 0, 0, 0.0, 0.0)
    column_of = {unit: column for column, unit in enumerate(forward.units)}
    columns = np.array([column_of[(target.layer, target.index)] for target in targets], np.int64)
    cache = ActivationCache(loaded.sha256, size, len(forward.units), cache_root)
    read = PhotoReader(size, log)
    started = time.perf_counter()
    top, sha_of, readable = rank_dataset(photos, read, forward, cache, columns, options.patches,
                                         options.batch_size, progress)
    if not readable:
        raise UserError("none of the dataset photos could be read; see the warnings above")
    ranked = time.perf_counter()
    settings = {"size": size, "resize": RESIZE_MODE, "patches": options.patches,
                "weights_source": loaded.source, "weights_sha256": loaded.sha256}
    new_records = {}
    for column, target in enumerate(targets):
        best = top.best(column)
        patches = patch_entries(target.layer, best, photos, sha_of, size)
        new_records[(target.layer, target.index)] = (
            records.dataset_record(target.layer, target.index, settings, patches), [photo_id for photo_id, _, _ in best])
    written = write_dataset_records(site_src, new_records, photos, read)
    stats = DatasetStats(len(photos), readable, forward.calls, len(targets), written, ranked - started,
                         time.perf_counter() - ranked)
    log(f"dataset examples: {readable} of {len(photos)} photos ranked in {stats.rank_seconds:.0f} s "
        f"({forward.calls} forward passes, {readable - forward.images} photos from the cache), "
        f"{written} of {len(targets)} filters written")
    return stats

"""Writing the example pages' data under site_src/examples/ (docs/ARCHITECTURE.md).

Per photo: photo.webp, one overlay per method and target, the per-unit attribution and
activation overlays, maps.npz, and example.json last (`records.example_record`). A page whose
example.json holds equal settings and weights checksum, and all its files, is kept as it is.
Then examples/top_examples.json, rewritten only when its content changed beyond float noise.
"""

import hashlib
import io
import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import records
from .attribution import Attributor
from .fileio import (
    UnreadableJson,
    atomic_write_bytes,
    atomic_write_json,
    read_json,
    sha256_file,
)
from .heatmap import OVERLAY_SETTINGS, overlay
from .photos import RESIZE_MODE
from .store import save_image
from .targets import target_label

ACTIVATION_TOLERANCE = 1e-4  # relative: top_examples.json keeps its bytes when values moved less


def _seed(*parts):
    """A stable 32-bit seed from strings (SmoothGrad noise of one photo and target)."""
    return int(hashlib.sha256("/".join(parts).encode("utf-8")).hexdigest()[:8], 16)


def _encode_npz(arrays):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


class _PageFiles:
    """The overlays of one page, written as their maps come, and the raw maps for maps.npz."""

    def __init__(self, directory, rgb):
        self.directory = directory
        self.rgb = rgb
        self.arrays = {}

    def add(self, file_name, saliency):
        """Write the overlay `file_name` (e.g. "gradcam.webp") of a map (h, w) >= 0 and stage the
        map, divided by its maximum, as float16 under the file name's stem with "/" as "-".

        Returns {"overlay": file_name, "array": npz key, "scale": the map's maximum}.
        """
        scale, key = float(saliency.max()), file_name.removesuffix(".webp").replace("/", "-")
        self.arrays[key] = (saliency / scale if scale > 0 else saliency).astype(np.float16)
        save_image(self.directory / file_name, overlay(self.rgb, saliency))
        return {"overlay": file_name, "array": key, "scale": scale}

    def write_arrays(self):
        atomic_write_bytes(self.directory / records.EXAMPLE_ARRAYS_NAME, _encode_npz(self.arrays))


class ExampleWriter:
    """Writes the example pages of one run.

    Args:
        loaded: generator.model.LoadedModel (model, source, sha256).
        site_src: the MkDocs docs_dir; pages go to site_src/examples/<slug>/.
        options: ExampleOptions (methods, unit_method, attribution settings).
        preprocess: RGB 0..255 -> model input.
        size: side of the model input the photos were loaded at.
        class_names: explain.class_names of the class head, or None without one.
    """

    def __init__(self, loaded, site_src, options, preprocess, size, class_names):
        self.loaded = loaded
        self.root = Path(site_src) / records.EXAMPLES_DIR
        self.options = options
        self.attributor = Attributor(loaded.model, preprocess, options.attribution)
        self.size = size
        self.class_names = class_names

    def settings(self, photo_sha256, targets, unit_entries):
        """What makes a page: a rerun with equal settings (and weights) keeps the page."""
        return {
            "size": self.size,
            "resize": RESIZE_MODE,
            "photo_sha256": photo_sha256,
            "methods": list(self.options.methods),
            "targets": [target_label(target, self.class_names) for target in targets],
            "units": [{"target": target_label(entry["target"]), "rank": entry["rank"]} for entry in unit_entries],
            "unit_method": self.options.unit_method,
            "attribution": self.options.attribution.as_record(),
            "overlay": OVERLAY_SETTINGS,
        }

    def is_complete(self, directory, settings):
        """True when `directory` holds a record with these settings and weights, and its files."""
        try:
            record = read_json(directory / records.EXAMPLE_RECORD_NAME)
            if record["schema"] != records.SCHEMA or record["settings"] != settings:
                return False
            if record["provenance"]["weights_sha256"] != self.loaded.sha256:
                return False
            files = [entry["overlay"] for entry in record["maps"]]
            files += [name for entry in record["units"] for name in (entry["attribution"], entry["activation_map"])]
        except (UnreadableJson, KeyError, TypeError):
            return False
        files += [records.EXAMPLE_PHOTO_NAME, records.EXAMPLE_ARRAYS_NAME]
        return all((directory / name).is_file() for name in files)

    def write(self, photo, rgb, predictions, primary, classes, unit_entries):
        """Compute and write one example's files, the record last; returns the record's path.

        Args:
            photo: photos.Photo; rgb: uint8 (size, size, 3), the photo as the model sees it.
            predictions: top-5 of explain.ClassHead.predictions, or [].
            primary: explain.Primary, the target of the main maps (overlays "<method>.webp").
            classes: other class Targets to explain ("class-<index>-<method>.webp").
            unit_entries: ranking.Ranking.entries of the photo (per-unit files under units/).
        """
        started = time.perf_counter()
        directory = self.root / photo.slug
        path = directory / records.EXAMPLE_RECORD_NAME
        photo_sha256 = sha256_file(photo.path)
        targets = [target for target in [primary.target, *classes] if target is not None]
        settings = self.settings(photo_sha256, targets, unit_entries)
        if self.is_complete(directory, settings):
            return path
        path.unlink(missing_ok=True)  # killed below, the page is redone rather than kept with mixed files
        save_image(directory / records.EXAMPLE_PHOTO_NAME, rgb)
        files, computed = _PageFiles(directory, rgb), {}
        maps, diagnostics = self._target_maps(files, targets, primary.target, photo_sha256, computed)
        units = self._unit_maps(files, unit_entries, photo_sha256, computed)
        files.write_arrays()
        primary_label = target_label(primary.target, self.class_names) if primary.target else None
        record = records.example_record(
            slug=photo.slug, title=photo.title, source=photo.source, licence=photo.licence,
            predictions=predictions, primary={"target": primary_label, "reason": primary.reason},
            maps=maps, units=units, diagnostics=diagnostics, settings=settings,
            provenance=self._provenance(started),
        )
        atomic_write_json(path, record)
        return path

    def _target_maps(self, files, targets, primary, photo_sha256, computed):
        """Every method's map of each target; fills `computed` {(target, method): map}.

        Returns (record "maps" entries, {target label: diagnostics}).
        """
        maps, diagnostics = [], {}
        for target in targets:
            label = target_label(target, self.class_names)
            results, diagnostics[label] = self.attributor.maps(files.rgb, target, self.options.methods,
                                                               seed=_seed(photo_sha256, label))
            prefix = "" if target == primary else f"class-{target.index}-"
            for method in self.options.methods:
                if method in results:  # CAM methods are absent for a first-layer filter
                    computed[(target, method)] = results[method]
                    written = files.add(f"{prefix}{method}.webp", results[method])
                    maps.append({"method": method, "target": label, **written})
        return maps, diagnostics

    def _unit_maps(self, files, unit_entries, photo_sha256, computed):
        """Each unit's attribution (unit_method, reused from `computed` when there) and activation map.

        Returns the record's "units" entries.
        """
        method = self.options.unit_method
        activations = self.attributor.activation_maps(files.rgb, [entry["target"] for entry in unit_entries])
        units = []
        for entry in unit_entries:
            target, label = entry["target"], target_label(entry["target"])
            if (target, method) not in computed:
                results, _ = self.attributor.maps(files.rgb, target, [method], seed=_seed(photo_sha256, label))
                computed[(target, method)] = results[method]
            attribution_file, activation_file = records.example_unit_files(target.layer, target.index)
            attribution = files.add(attribution_file, computed[(target, method)])
            activation_map = files.add(activation_file, activations[target])
            units.append({
                "layer": target.layer, "index": target.index, "target": label, "rank": entry["rank"],
                "activation": entry["activation"], "method": method,
                "attribution": attribution["overlay"], "activation_map": activation_map["overlay"],
                "arrays": [attribution["array"], activation_map["array"]],
                "scales": [attribution["scale"], activation_map["scale"]],
            })
        return units

    def _provenance(self, started):
        import tf_keras_vis  # only for its version; the guided-backprop modifier imports it when used

        return {
            "weights_source": self.loaded.source,
            "weights_sha256": self.loaded.sha256,
            "versions": records.software_versions(tf, keras, tf_keras_vis),
            "created": records.utc_now(),
            "seconds": round(time.perf_counter() - started, 2),
        }


def _close(old, new):
    """True when JSON values `old` and `new` are equal but for numbers within ACTIVATION_TOLERANCE."""
    if isinstance(new, float) and isinstance(old, (int, float)) and not isinstance(old, bool):
        return math.isclose(old, new, rel_tol=ACTIVATION_TOLERANCE)
    if isinstance(new, dict):
        return isinstance(old, dict) and old.keys() == new.keys() and all(_close(old[key], new[key]) for key in new)
    if isinstance(new, list):
        return isinstance(old, list) and len(old) == len(new) and all(map(_close, old, new))
    return type(old) is type(new) and old == new


def write_top_examples(site_src, photos, ranking):
    """Write examples/top_examples.json: per asked unit "<layer>/<index>", its top-k photos, best first.

    The file keeps its bytes when only activations moved, by less than ACTIVATION_TOLERANCE
    (float noise between runs). Returns True when it was written.
    """
    document = {
        f"{target.layer}/{target.index}": [
            records.top_example(photos[photo_id].slug, target.layer, target.index, activation)
            for photo_id, activation in best
        ]
        for target, best in zip(ranking.units, ranking.best)
    }
    path = Path(site_src, records.EXAMPLES_DIR, records.TOP_EXAMPLES_NAME)
    try:
        if _close(read_json(path), document):
            return False
    except UnreadableJson:
        pass
    atomic_write_json(path, document)
    return True

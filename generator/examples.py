"""Example photos: the built-in set, a user's folder, and loading them the way the model sees them.

Built-in photos are files inside scikit-image's wheel (`skimage/data/`), so they need no
download. Their sources and licences are stated in the docstrings of the matching
`skimage.data` functions (the wheel's data README does not list them) and copied below.

Loading (`load_photo`): EXIF orientation applied; grayscale, palette, CMYK and 16-bit images
converted to RGB; transparency composited over white; then resized for the model by
**center crop after short-side resize**: the short side is scaled to `size` (Lanczos) and the
central `size` x `size` square is kept, so the model sees undistorted content and loses the
ends of the long side (as in the usual ImageNet evaluation crop).
"""

import datetime
import hashlib
import importlib.resources
import io
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from generator.architecture import CLASS_LAYER, NUM_CLASSES
from generator.attribution import (
    METHODS,
    AttributionSettings,
    Attributor,
    MeanActivations,
    Target,
    TopExamples,
    check_target,
    class_head,
)
from generator.classes import load_classes
from generator.errors import UserError
from generator.heatmap import OVERLAY_SETTINGS, overlay
from generator.store import atomic_write_bytes, atomic_write_json, read_json, save_image

MODEL_INPUT_SIZE = 224
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
PIL_FORMATS = ("JPEG", "PNG", "WEBP")
RESIZE_MODE = "center crop after short-side resize (Lanczos)"
_NON_SLUG_RUN = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Photo:
    """One example photo.

    Attributes:
        slug: URL segment, unique in a run, e.g. "chelsea" (examples/<slug>/).
        title: human title, e.g. "Chelsea the cat".
        source: where it comes from (author, collection, URL), for the credit line.
        licence: its licence, e.g. "CC0"; user photos: "supplied by the user".
        path: the image file.
    """

    slug: str
    title: str
    source: str
    licence: str
    path: Path


def _skimage_data_file(name):
    return Path(str(importlib.resources.files("skimage") / "data" / name))


BUILTIN_PHOTOS = tuple(
    Photo(slug, title, f"{credit}; shipped as scikit-image sample data (skimage.data.{function})", licence,
          _skimage_data_file(file_name))
    for slug, file_name, function, title, credit, licence in (
        ("chelsea", "chelsea.png", "chelsea", "Chelsea the cat",
         "photograph by Stefan van der Walt", "CC0 (no copyright restrictions)"),
        ("coffee", "coffee.png", "coffee", "Coffee cup",
         "photograph by Rachel Michetti, courtesy of Pikolo Espresso Bar", "CC0 (no copyright restrictions)"),
        ("astronaut", "astronaut.png", "astronaut", "Astronaut Eileen Collins",
         "NASA Great Images database, https://flic.kr/p/r9qvLn",
         "public domain (no known copyright restrictions)"),
        ("rocket", "rocket.jpg", "rocket", "Falcon 9 launching DSCOVR",
         "SpaceX Photos, https://www.flickr.com/photos/spacexphotos/16511594820/",
         "public domain (released by SpaceX)"),
        ("retina", "retina.jpg", "retina", "Human retina (fundus photograph)",
         "Mikael Häggström, Wikimedia Commons, "
         "https://commons.wikimedia.org/wiki/File:Fundus_photograph_of_normal_left_eye.jpg",
         "CC0 1.0 Universal public domain dedication"),
        ("hubble-deep-field", "hubble_deep_field.jpg", "hubble_deep_field", "Hubble eXtreme Deep Field",
         "NASA, HubbleSite, http://hubblesite.org/newscenter/archive/releases/2012/37/image/a/",
         "public domain (NASA)"),
    )
)
USER_LICENCE = "supplied by the user"


class UnreadablePhoto(Exception):
    """A photo file that cannot be used; the message says why in a few words."""


def slugify(text):
    """Lower-case, each run outside [a-z0-9] -> "-", trimmed; "photo" when nothing is left."""
    return _NON_SLUG_RUN.sub("-", text.lower()).strip("-") or "photo"


def discover_photos(images_dir, taken=()):
    """The photos of a user folder (searched recursively), sorted by relative path.

    Args:
        images_dir: folder holding .jpg/.jpeg/.png/.webp files (suffix case ignored).
        taken: slugs already used (e.g. the built-in photos'); clashes get "-2", "-3", ...
    Returns:
        list of Photo, titles from the file names, licence USER_LICENCE. Unreadable files are
        still listed: `load_photo` reports them.
    Raises:
        UserError: the folder is missing, not a folder, or holds no such file.
    """
    folder = Path(images_dir)
    if not folder.is_dir():
        problem = "does not exist" if not folder.exists() else "is not a folder"
        raise UserError(f"--images {folder} {problem}; give a folder of .jpg, .png or .webp photos")
    files = sorted(
        (path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in PHOTO_SUFFIXES),
        key=lambda path: path.relative_to(folder).as_posix(),
    )
    if not files:
        raise UserError(f"--images {folder} holds no .jpg, .png or .webp files; add some photos or drop --images")
    used = set(taken)
    photos = []
    for path in files:
        base = slugify(path.relative_to(folder).with_suffix("").as_posix())
        slug, count = base, 1
        while slug in used:
            count += 1
            slug = f"{base}-{count}"
        used.add(slug)
        photos.append(Photo(slug, path.stem, f"user photo {path.name}", USER_LICENCE, path))
    return photos


def _to_rgb(image):
    """Any PIL mode -> "RGB": 16-bit gray scaled down, transparency over white, CMYK converted."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image, dtype=np.float64)
        scale = 257.0 if values.max() > 255 else 1.0
        image = Image.fromarray(np.clip(values / scale, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def load_photo(path, size=MODEL_INPUT_SIZE):
    """Read an image file as the model sees it.

    Args:
        path: a JPEG, PNG or WebP file of any size and mode.
        size: side of the square model input.
    Returns:
        uint8 (size, size, 3) RGB: center crop after short-side resize (module docstring).
    Raises:
        UnreadablePhoto: empty, not a JPEG/PNG/WebP image, truncated or corrupt, or over PIL's
            decompression-bomb limit (Image.MAX_IMAGE_PIXELS, about 89 megapixels).
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise UnreadablePhoto("empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=PIL_FORMATS) as image:
                image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when possible
                image = ImageOps.exif_transpose(image)
                image.load()
                rgb = _to_rgb(image)
    except UnreadablePhoto:
        raise
    except UnidentifiedImageError:
        raise UnreadablePhoto("not a JPEG, PNG or WebP image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UnreadablePhoto(f"too many pixels, possible decompression bomb ({error})") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise UnreadablePhoto(f"truncated or corrupt image data ({error})") from None
    fitted = ImageOps.fit(rgb, (size, size), Image.LANCZOS, centering=(0.5, 0.5))
    return np.asarray(fitted, dtype=np.uint8)



# --- the saliency stage: photos -> site_src/examples/ -------------------------------------------

EXAMPLES_DIR = "examples"
RECORD_NAME = "example.json"
TOP_EXAMPLES_NAME = "top_examples.json"
RECORD_SCHEMA = 1
TOP_PREDICTIONS = 5


def _sha256_file(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _seed(*parts):
    """A stable 32-bit seed from strings (SmoothGrad noise of one photo and target)."""
    return int(hashlib.sha256("/".join(parts).encode("utf-8")).hexdigest()[:8], 16)


def _class_names(head):
    """[(wnid or None, name)] for each output of the class head."""
    if head.units == NUM_CLASSES:
        return [(c.wnid, c.name) for c in load_classes()]
    return [(None, str(index)) for index in range(head.units)]


def target_label(target, class_names=None):
    """"block4_conv2 #17" for a filter; "class 281 tabby" for a class (contract of example.json)."""
    if not target.is_class:
        return f"{target.layer} #{target.index}"
    name = class_names[target.index][1] if class_names else str(target.index)
    return f"class {target.index}" if name == str(target.index) else f"class {target.index} {name}"


def _unit_stem(target):
    return f"{target.layer}-{target.index}"


def _predictions(model, rgb, preprocess, class_names):
    """Top-5 [{"index", "wnid", "label", "probability"}] of the class head, best first."""
    outputs = np.asarray(model(preprocess(tf.constant(rgb[None].astype(np.float32)))))[0].astype(np.float64)
    if class_head(model).get_config().get("activation") != "softmax":
        outputs = np.exp(outputs - outputs.max())
        outputs /= outputs.sum()
    best = np.argsort(-outputs, kind="stable")[:TOP_PREDICTIONS]
    return [
        {"index": int(i), "wnid": class_names[i][0], "label": class_names[i][1], "probability": float(outputs[i])}
        for i in best
    ]


def _encode_npz(arrays):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _versions():
    import keras
    import tf_keras_vis

    from generator import __version__

    return {"generator": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "tf_keras_vis": tf_keras_vis.__version__}


class _Stage:
    """One run of the examples stage (see run_examples)."""

    def __init__(self, loaded, site_src, methods, settings, unit_method, preprocess, log):
        self.loaded = loaded
        self.root = Path(site_src) / EXAMPLES_DIR
        self.methods = list(methods)
        self.settings = settings
        self.unit_method = unit_method
        self.preprocess = preprocess
        self.log = log
        self.attributor = Attributor(loaded.model, preprocess, settings)
        self.size = loaded.model.inputs[0].shape[1] or MODEL_INPUT_SIZE
        head = class_head(loaded.model)
        self.class_names = _class_names(head) if head is not None else None

    def read(self, photo):
        """The photo as the model sees it, or None (after one warning line) when unreadable."""
        try:
            return load_photo(photo.path, self.size)
        except UnreadablePhoto as error:
            self.log(f"warning: skipping {photo.path}: {error}")
            return None

    def example_settings(self, photo_sha256, primary, classes, unit_entries):
        """What makes a page: a rerun with equal settings (and weights) keeps the page."""
        return {
            "size": self.size,
            "resize": RESIZE_MODE,
            "photo_sha256": photo_sha256,
            "methods": self.methods,
            "targets": [target_label(t, self.class_names) for t in [primary, *classes] if t is not None],
            "units": [{"target": target_label(entry["target"]), "rank": entry["rank"]} for entry in unit_entries],
            "unit_method": self.unit_method,
            "attribution": self.settings.as_record(),
            "overlay": OVERLAY_SETTINGS,
        }

    def is_complete(self, directory, settings):
        """True when `directory` holds a record with these settings and weights, and its files."""
        record = read_json(directory / RECORD_NAME)
        if not isinstance(record, dict) or record.get("schema") != RECORD_SCHEMA:
            return False
        if record.get("settings") != settings:
            return False
        if record.get("provenance", {}).get("weights_sha256") != self.loaded.sha256:
            return False
        try:
            files = [entry["overlay"] for entry in record["maps"]] + ["photo.webp", "maps.npz"]
            files += [name for entry in record["units"] for name in (entry["attribution"], entry["activation_map"])]
        except (KeyError, TypeError):
            return False
        return all((directory / name).is_file() for name in files)

    def write_example(self, photo, rgb, predictions, primary, classes, unit_entries):
        """Compute and write one example's files, the record last; returns the record path."""
        started = time.perf_counter()
        directory = self.root / photo.slug
        photo_sha256 = _sha256_file(photo.path)
        settings = self.example_settings(photo_sha256, primary, classes, unit_entries)
        if self.is_complete(directory, settings):
            return directory / RECORD_NAME
        save_image(directory / "photo.webp", rgb)
        arrays, maps, diagnostics, computed = {}, [], {}, {}

        def keep(stem, saliency):
            """Write one overlay and stage its raw map (divided by its maximum) for maps.npz."""
            scale, key = float(saliency.max()), stem.replace("/", "-")
            arrays[key] = (saliency / scale if scale > 0 else saliency).astype(np.float16)
            save_image(directory / f"{stem}.webp", overlay(rgb, saliency))
            return {"overlay": f"{stem}.webp", "array": key, "scale": scale}

        for target in [t for t in [primary, *classes] if t is not None]:
            label = target_label(target, self.class_names)
            seed = _seed(photo_sha256, label)
            results, diagnostics[label] = self.attributor.maps(rgb, target, self.methods, seed=seed)
            prefix = "" if target == primary else f"class-{target.index}-"
            for method in self.methods:
                if method in results:
                    computed[(target, method)] = results[method]
                    maps.append({"method": method, "target": label, **keep(f"{prefix}{method}", results[method])})

        activations = self.attributor.activation_maps(rgb, [entry["target"] for entry in unit_entries])
        units = []
        for entry in unit_entries:
            target = entry["target"]
            label = target_label(target)
            if (target, self.unit_method) not in computed:
                results, _ = self.attributor.maps(rgb, target, [self.unit_method], seed=_seed(photo_sha256, label))
                computed[(target, self.unit_method)] = results[self.unit_method]
            stem = f"units/{_unit_stem(target)}"
            attribution = keep(f"{stem}-attribution", computed[(target, self.unit_method)])
            activation_map = keep(f"{stem}-activation", activations[target])
            units.append({
                "layer": target.layer, "index": target.index, "target": label, "rank": entry["rank"],
                "activation": entry["activation"], "method": self.unit_method,
                "attribution": attribution["overlay"], "activation_map": activation_map["overlay"],
                "arrays": [attribution["array"], activation_map["array"]],
                "scales": [attribution["scale"], activation_map["scale"]],
            })
        atomic_write_bytes(directory / "maps.npz", _encode_npz(arrays))
        record = {
            "schema": RECORD_SCHEMA,
            "slug": photo.slug,
            "title": photo.title,
            "source": photo.source,
            "licence": photo.licence,
            "url": f"{EXAMPLES_DIR}/{photo.slug}/",
            "photo": "photo.webp",
            "predictions": predictions,
            "maps": maps,
            "units": units,
            "diagnostics": diagnostics,
            "settings": settings,
            "provenance": {
                "weights_source": self.loaded.source,
                "weights_sha256": self.loaded.sha256,
                "versions": _versions(),
                "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "seconds": round(time.perf_counter() - started, 2),
            },
        }
        atomic_write_json(directory / RECORD_NAME, record)
        return directory / RECORD_NAME

    def predictions(self, rgb):
        """Top-5 predictions, or [] without a class head."""
        return _predictions(self.loaded.model, rgb, self.preprocess, self.class_names) if self.class_names else []


def _check_methods(methods, unit_method):
    unknown = [m for m in [*methods, unit_method] if m not in METHODS]
    if unknown:
        raise UserError(f"unknown saliency method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")


def run_examples(
    loaded,
    site_src,
    images_dir=None,
    units=(),
    classes=(),
    methods=None,
    *,
    settings=AttributionSettings(),
    unit_method="guided_backprop",
    top_k=3,
    max_pages=64,
    include_builtin=True,
    preprocess=None,
    progress=True,
    log=print,
):
    """Saliency maps on example photos, written under site_src/examples/ (docs/ARCHITECTURE.md).

    1. Photos: the built-in set (unless include_builtin=False) plus every .jpg/.png/.webp in
       `images_dir`. Unreadable files are skipped with one warning line each.
    2. Ranking, when `units` are given: one forward pass per photo gives the mean activation of
       every conv filter (MeanActivations); the best `top_k` photos of each asked unit are kept
       while the photos stream by (TopExamples), so memory does not grow with the folder.
    3. One example page per photo in some unit's top-k, then others in folder order, up to
       `max_pages` (photos in a top-k always get theirs): photo.webp; one overlay per method for
       the primary target (top-1 class with a class head, else the asked unit this photo
       excites most relative to the other photos); per asked class `class-<i>-<method>.webp`;
       for each unit whose top-k holds the photo, `units/<layer>-<index>-attribution.webp`
       (`unit_method`) and `-activation.webp`; maps.npz; example.json written last. A page
       whose example.json holds equal settings and weights checksum is kept as it is (resume).
    4. examples/top_examples.json: per asked unit "<layer>/<index>", its top-k photos, best first.

    Args:
        loaded: generator.model.LoadedModel (model, source, sha256, has_top).
        site_src: the MkDocs docs_dir.
        images_dir: a folder of the user's photos, or None.
        units: [(conv layer name, filter index)], the units the atlas computed.
        classes: class indices to explain on every photo (needs the class head).
        methods: names from attribution.METHODS (default: all).
        settings: AttributionSettings (SmoothGrad samples, IG steps, Score-CAM channels...).
        unit_method: the method of the per-unit attribution maps.
        top_k: photos kept per unit.
        max_pages: example pages written (at least every photo in a top-k).
        include_builtin: include the scikit-image photos.
        preprocess: RGB 0..255 -> model input (default generator.model.preprocess).
        progress: show tqdm progress bars.
        log: receives warnings and one summary line.
    Returns:
        The example.json paths of the pages, in photo order.
    Raises:
        UserError: bad `images_dir`, no readable photo, unknown unit, class or method.
    """
    if preprocess is None:
        from generator.model import preprocess
    methods = list(METHODS if methods is None else methods)
    _check_methods(methods, unit_method)
    unit_targets = list(dict.fromkeys(Target(layer, int(index)) for layer, index in units))
    class_targets = list(dict.fromkeys(Target(CLASS_LAYER, int(index)) for index in classes))
    for target in unit_targets + class_targets:
        check_target(loaded.model, target)
    photos = list(BUILTIN_PHOTOS) if include_builtin else []
    if images_dir is not None:
        photos += discover_photos(images_dir, taken=[photo.slug for photo in photos])
    if not photos:
        raise UserError("no example photos: give --images DIR or keep the built-in photos")

    stage = _Stage(loaded, site_src, methods, settings, unit_method, preprocess, log)
    ranker = MeanActivations(loaded.model, preprocess) if unit_targets else None
    columns = [ranker.units.index((t.layer, t.index)) for t in unit_targets] if ranker else []
    top = TopExamples(len(unit_targets), top_k)
    readable, unit_activations = [], {}
    for photo_id, photo in enumerate(tqdm(photos, desc="ranking photos", unit="photo", disable=not progress)):
        rgb = stage.read(photo)
        if rgb is None:
            continue
        readable.append(photo_id)
        if ranker is not None:
            unit_activations[photo_id] = ranker(rgb[None])[0][columns]
            top.add(photo_id, unit_activations[photo_id])
    if not readable:
        raise UserError("none of the example photos could be read; see the warnings above")

    best = [top.best(column) for column in range(len(unit_targets))]
    in_top = {photo_id for ranking in best for photo_id, _ in ranking}
    pages = [i for i in readable if i in in_top]
    pages += [i for i in readable if i not in in_top][: max(0, max_pages - len(pages))]
    pages.sort()
    mean_activation = np.mean([unit_activations[i] for i in readable], axis=0) if unit_targets else None

    records = []
    for photo_id in tqdm(pages, desc="saliency maps", unit="photo", disable=not progress):
        photo = photos[photo_id]
        rgb = stage.read(photo)
        if rgb is None:
            continue
        predictions = stage.predictions(rgb)
        if predictions:
            primary = Target(CLASS_LAYER, predictions[0]["index"])
        elif unit_targets:
            relative = unit_activations[photo_id] / np.maximum(mean_activation, 1e-12)
            primary = unit_targets[int(np.argmax(relative))]
        else:
            primary = None
        unit_entries = [
            {"target": target, "rank": rank, "activation": activation}
            for target, ranking in zip(unit_targets, best)
            for rank, (ranked_id, activation) in enumerate(ranking)
            if ranked_id == photo_id
        ]
        extra_classes = [t for t in class_targets if t != primary]
        records.append(stage.write_example(photo, rgb, predictions, primary, extra_classes, unit_entries))

    top_examples = {}
    for target, ranking in zip(unit_targets, best):
        entries = []
        for photo_id, activation in ranking:
            base = f"{EXAMPLES_DIR}/{photos[photo_id].slug}"
            stem = f"{base}/units/{_unit_stem(target)}"
            entries.append({"slug": photos[photo_id].slug, "activation": activation,
                            "photo": f"{base}/photo.webp", "attribution": f"{stem}-attribution.webp",
                            "activation_map": f"{stem}-activation.webp"})
        top_examples[f"{target.layer}/{target.index}"] = entries
    atomic_write_json(stage.root / TOP_EXAMPLES_NAME, top_examples)
    log(f"examples: {len(records)} pages from {len(readable)} readable photos "
        f"({len(photos) - len(readable)} skipped), {len(unit_targets)} units ranked")
    return records

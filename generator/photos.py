"""Example photos: the built-in set, a user's folder, and loading them the way the model sees them.

Built-in photos are files inside scikit-image's wheel (`skimage/data/`), so they need no
download. Their sources and licences are stated in the docstrings of the matching
`skimage.data` functions (the wheel's data README does not list them) and copied below.

Loading (`load_photo`): EXIF orientation applied; grayscale, palette, CMYK and 16-bit images
converted to RGB; transparency composited over white; then resized for the model by
**center crop after short-side resize**: the short side is scaled to `size` (Lanczos) and the
central `size` x `size` square is kept, so the model sees undistorted content and loses the
ends of the long side (as in the usual ImageNet evaluation crop).

Nothing here imports TensorFlow: `check_images_dir` runs before the model is loaded.
"""

import functools
import importlib.resources
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .classes import slugify
from .errors import UserError

MODEL_INPUT_SIZE = 224
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
PIL_FORMATS = ("JPEG", "PNG", "WEBP")
RESIZE_MODE = "center crop after short-side resize (Lanczos)"
USER_LICENCE = "supplied by the user"


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


@functools.cache
def builtin_photos():
    """The built-in photos, a tuple of Photo. Made on first use: their files are found in
    scikit-image's wheel, so importing this module needs no scikit-image (the site's base install
    lacks it)."""
    data = importlib.resources.files("skimage") / "data"
    return tuple(
        Photo(slug, title, f"{credit}; shipped as scikit-image sample data (skimage.data.{function})", licence,
              Path(str(data / file_name)))
        for slug, file_name, function, title, credit, licence in _BUILTIN)


# (slug, file name in skimage/data/, skimage.data function, title, credit, licence)
_BUILTIN = (
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


class UnreadablePhoto(Exception):
    """A photo file that cannot be used; the message says why in a few words."""


def photo_files(images_dir):
    """The .jpg/.jpeg/.png/.webp files below `images_dir` (suffix case ignored), by relative path.

    Raises UserError: the folder is missing, not a folder, or holds no such file.
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
    return files


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
    used = set(taken)
    photos = []
    for path in photo_files(folder):
        base = slugify(path.relative_to(folder).with_suffix("").as_posix()) or "photo"
        slug, count = base, 1
        while slug in used:
            count += 1
            slug = f"{base}-{count}"
        used.add(slug)
        photos.append(Photo(slug, path.stem, f"user photo {path.name}", USER_LICENCE, path))
    return photos


def gather_photos(images_dir, include_builtin):
    """The photos of a run: the built-in ones (if `include_builtin`), then those of `images_dir` (or None).

    Raises UserError when that leaves none, or for a bad `images_dir` (see discover_photos).
    """
    photos = list(builtin_photos()) if include_builtin else []
    if images_dir is not None:
        photos += discover_photos(images_dir, taken=[photo.slug for photo in photos])
    if not photos:
        raise UserError("no example photos: give --images DIR or keep the built-in photos")
    return photos


@contextmanager
def _reading(path):
    """Turn every way reading the image file at `path` can fail into UnreadablePhoto with a reason."""
    try:
        if Path(path).stat().st_size == 0:
            raise UnreadablePhoto("empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except UnreadablePhoto:
        raise
    except UnidentifiedImageError:
        raise UnreadablePhoto("not a JPEG, PNG or WebP image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UnreadablePhoto(f"too many pixels, possible decompression bomb ({error})") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise UnreadablePhoto(f"truncated or corrupt image data ({error})") from None


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
    with _reading(path), Image.open(path, formats=PIL_FORMATS) as image:
        image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when possible
        image = ImageOps.exif_transpose(image)
        image.load()
        rgb = _to_rgb(image)
    fitted = ImageOps.fit(rgb, (size, size), Image.LANCZOS, centering=(0.5, 0.5))
    return np.asarray(fitted, dtype=np.uint8)


def check_photo_header(path):
    """Cheap check of one photo file without decoding its pixels: its header (format, size within
    the decompression-bomb limit) and, for PNG, its chunk checksums (`Image.verify`).

    Raises UnreadablePhoto with the reason. A file that passes can still fail `load_photo`
    (e.g. a JPEG cut short), which the stage then skips with a warning.
    """
    with _reading(path), Image.open(path, formats=PIL_FORMATS) as image:
        image.verify()


def check_images_dir(images_dir):
    """Refuse, before any drawing, an `--images` folder without one photo that can be opened.

    Reads file headers only, and stops at the first good file.
    Raises UserError (one line): the folder is missing or not a folder, holds no
    .jpg/.png/.webp file, or none of those files passes `check_photo_header`.
    """
    files = photo_files(images_dir)
    reasons = []
    for path in files:
        try:
            check_photo_header(path)
            return
        except UnreadablePhoto as error:
            reasons.append(f"{path.name}: {error}")
    raise UserError(f"--images {images_dir}: none of its {len(files)} photo files can be read "
                    f"(first: {reasons[0]}); replace them or drop --images")


class PhotoReader:
    """Reads photos at the model's input size, skipping unreadable ones with one warning line each.

    Args:
        size: side of the model input (load_photo).
        log: receives "warning: skipping <path>: <reason>".
    """

    def __init__(self, size, log):
        self.size = size
        self.log = log

    def __call__(self, photo):
        """The Photo as uint8 (size, size, 3) RGB, or None when it cannot be read."""
        try:
            return load_photo(photo.path, self.size)
        except UnreadablePhoto as error:
            self.log(f"warning: skipping {photo.path}: {error}")
            return None

"""The photos of the dataset-examples stage, with their licences; checked before TensorFlow loads.

A user folder may hold `LICENSES.csv` (UTF-8, read with the csv module): a header naming the
columns `file` and `licence` (or `license`), optionally `credit`, then one row per photo, `file`
being the photo's path relative to the folder with `/` separators (e.g. `cats/tabby.jpg`). A
photo without a row has the licence UNKNOWN_LICENCE, or is left out with `unlicensed="omit"`.
Rows naming files that are not photos of the folder are ignored. The built-in scikit-image photos
carry their known credits (generator.photos.builtin_photos).
"""

import csv
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .photos import builtin_photos, photo_files

LICENSES_NAME = "LICENSES.csv"
UNKNOWN_LICENCE = "licence unknown"
UNLICENSED_CHOICES = ("keep", "omit")
DEFAULT_PATCHES, MAX_PATCHES = 9, 100


@dataclass(frozen=True)
class DatasetPhoto:
    """One photo the stage ranks.

    Attributes:
        name: what the pages call it: the path relative to the user folder ("cats/tabby.jpg"),
            or a built-in photo's title ("Chelsea the cat").
        path: the image file.
        licence: e.g. "CC BY 4.0", or UNKNOWN_LICENCE.
        credit: author / source line, "" when none is known.
    """

    name: str
    path: Path
    licence: str
    credit: str


@dataclass(frozen=True)
class DatasetOptions:
    """The choices of the dataset-examples stage (generator.dataset.run_dataset).

    Attributes:
        patches: patches kept per filter, 1..MAX_PATCHES.
        unlicensed: "keep" (as UNKNOWN_LICENCE) or "omit" the user photos without a licence row.
        images_dir: the user's folder, or None.
        include_builtin: rank the scikit-image sample photos too.
        batch_size: photos per forward pass, >= 1.
    """

    patches: int = DEFAULT_PATCHES
    unlicensed: str = "keep"
    images_dir: Path | None = None
    include_builtin: bool = True
    batch_size: int = 8

    def __post_init__(self):
        if not 1 <= self.patches <= MAX_PATCHES:
            raise UserError(f"--patches must be at least 1 and at most {MAX_PATCHES} (got {self.patches})")
        if self.unlicensed not in UNLICENSED_CHOICES:
            raise UserError(f"--unlicensed must be one of {', '.join(UNLICENSED_CHOICES)} (got {self.unlicensed!r})")
        if self.batch_size < 1:
            raise UserError(f"the batch size must be at least 1 (got {self.batch_size})")
        if self.images_dir is not None:
            object.__setattr__(self, "images_dir", Path(self.images_dir))


def read_licences(images_dir):
    """{relative path: (licence, credit)} from `images_dir/LICENSES.csv`; {} when there is none.

    Raises UserError (one line naming the file and line) for a malformed file: not UTF-8, not
    CSV, no `file` or `licence` column, a row of another width than the header, an empty file
    name or licence, or a file named twice.
    """
    path = Path(images_dir, LICENSES_NAME)
    if not path.is_file():
        return {}

    def malformed(line, problem):
        return UserError(f"{path} line {line}: {problem}; fix it or remove the file")

    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise malformed(1, "not UTF-8 text") from None
    reader = csv.reader(text.splitlines(), strict=True)
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        columns = {("licence" if name == "license" else name): column for column, name in enumerate(header)}
        if "file" not in columns or "licence" not in columns:
            raise malformed(1, f"the header needs the columns file and licence (got {','.join(header)[:80]!r})")
        licences = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise malformed(line, f"{len(row)} fields, the header has {len(header)}")
            name, licence = row[columns["file"]].strip(), row[columns["licence"]].strip()
            credit = row[columns["credit"]].strip() if "credit" in columns else ""
            if not name or not licence:
                raise malformed(line, "empty file name" if not name else f"empty licence for {name}")
            if name in licences:
                raise malformed(line, f"{name} is listed twice")
            licences[name] = (licence, credit)
    except csv.Error as error:
        raise malformed(reader.line_num, f"not valid CSV ({error})") from None
    return licences


def dataset_photos(options):
    """The photos to rank, in order: the built-in ones (if asked), then the folder's by relative path.

    Raises UserError for a bad folder or LICENSES.csv (before any photo is decoded), or when no
    photo is left (e.g. every user photo unlicensed and omitted).
    """
    photos = [DatasetPhoto(photo.title, photo.path, photo.licence, photo.source)
              for photo in (builtin_photos() if options.include_builtin else ())]
    if options.images_dir is not None:
        folder = options.images_dir
        licences = read_licences(folder)
        for path in photo_files(folder):
            name = path.relative_to(folder).as_posix()
            licence, credit = licences.get(name, (None, ""))
            if licence is None and options.unlicensed == "omit":
                continue
            photos.append(DatasetPhoto(name, path, licence or UNKNOWN_LICENCE, credit))
    if not photos:
        raise UserError(f"no photos to rank: every photo of {options.images_dir} lacks a row in its "
                        f"{LICENSES_NAME} and --unlicensed omit leaves it out")
    return photos

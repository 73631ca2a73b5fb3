"""The ImageNet-1k class index shipped with the atlas, and lookups by index, WordNet id or name.

The data file `generator/data/imagenet_classes.json` is generated at development time by
`scripts/make_class_index.py` (from the timm wheel; names and definitions from WordNet 3.0) and
read here without any network access. Class order is the standard ILSVRC-2012 order (sorted
WordNet ids), the order of the VGG16 `predictions` layer in Keras.
"""

import difflib
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .architecture import NUM_CLASSES
from .errors import UserError

CLASS_INDEX_PATH = Path(__file__).resolve().parent / "data" / "imagenet_classes.json"

_WNID_PATTERN = re.compile(r"n[0-9]{8}")
_INDEX_PATTERN = re.compile(r"[0-9]+")
MAX_QUERY_LENGTH = 100  # no class name is longer; longer queries are refused without a search
_NON_SLUG_RUN = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """URL slug per docs/ARCHITECTURE.md: lower-case, each run outside [a-z0-9] -> one "-", trimmed.

    >>> slugify("jack-o'-lantern")
    'jack-o-lantern'
    """
    return _NON_SLUG_RUN.sub("-", text.lower()).strip("-")


@dataclass(frozen=True)
class ImageNetClass:
    """One ImageNet-1k class.

    Attributes:
        index: position in the 1,000-way output, 0..999.
        wnid: WordNet id, e.g. "n01601694".
        name: primary (first WordNet) name, e.g. "water ouzel"; Keras shows it as "water_ouzel".
        synonyms: the other WordNet names, e.g. ("dipper",); may be empty.
        definition: the WordNet gloss, one sentence without a final period.
    """

    index: int
    wnid: str
    name: str
    synonyms: tuple[str, ...]
    definition: str

    @property
    def slug(self) -> str:
        """`slugify(name)`, e.g. "water-ouzel"."""
        return slugify(self.name)

    @property
    def dir_name(self) -> str:
        """Directory and URL segment of the class unit, "<index>-<slug>", e.g. "20-water-ouzel"."""
        return f"{self.index}-{self.slug}"


@functools.cache
def _load_document() -> dict:
    try:
        document = json.loads(CLASS_INDEX_PATH.read_text(encoding="utf-8"))
        entries = document["classes"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(
            f"the class index {CLASS_INDEX_PATH} is unreadable ({error}); reinstall the package"
        ) from error
    if len(entries) != NUM_CLASSES or [e.get("index") for e in entries] != list(range(NUM_CLASSES)):
        raise UserError(
            f"the class index {CLASS_INDEX_PATH} does not hold {NUM_CLASSES} classes in order; "
            "regenerate it with scripts/make_class_index.py"
        )
    return document


@functools.cache
def load_classes() -> tuple[ImageNetClass, ...]:
    """All 1,000 classes, in class order (`load_classes()[i].index == i`). Cached."""
    return tuple(
        ImageNetClass(
            index=entry["index"],
            wnid=entry["wnid"],
            name=entry["name"],
            synonyms=tuple(entry["synonyms"]),
            definition=entry["definition"],
        )
        for entry in _load_document()["classes"]
    )


def class_index_credit() -> dict[str, str]:
    """Where the class index comes from and under which licence: {"source": ..., "licence": ...}."""
    document = _load_document()
    return {"source": document["source"], "licence": document["licence"]}


@functools.cache
def _name_tables() -> tuple[dict[str, tuple[ImageNetClass, ...]], dict[str, tuple[ImageNetClass, ...]]]:
    """({slug of primary name: classes}, {slug of synonym: classes}); a key may name several."""
    by_name: dict[str, list[ImageNetClass]] = {}
    by_synonym: dict[str, list[ImageNetClass]] = {}
    for imagenet_class in load_classes():
        by_name.setdefault(imagenet_class.slug, []).append(imagenet_class)
        for synonym_slug in dict.fromkeys(slugify(synonym) for synonym in imagenet_class.synonyms):
            by_synonym.setdefault(synonym_slug, []).append(imagenet_class)
    return (
        {key: tuple(value) for key, value in by_name.items()},
        {key: tuple(value) for key, value in by_synonym.items()},
    )


def _describe(imagenet_class: ImageNetClass) -> str:
    return f"{imagenet_class.index} {imagenet_class.name} ({imagenet_class.wnid})"


def _nearest_names(query: str, count: int = 5) -> list[str]:
    """Up to `count` class descriptions whose name or synonym is closest to `query`."""
    candidates: dict[str, ImageNetClass] = {}
    for imagenet_class in load_classes():
        for name in (imagenet_class.name, *imagenet_class.synonyms):
            candidates.setdefault(name.lower(), imagenet_class)
    matches = difflib.get_close_matches(query.lower(), list(candidates), n=count * 3, cutoff=0.6)
    described = []
    for match in matches:
        description = _describe(candidates[match])
        if description not in described:
            described.append(description)
    return described[:count]


def find_class(query: str) -> ImageNetClass:
    """The class named by `query`, which is one of:

    - an index "0".."999" (e.g. "20"),
    - a WordNet id (e.g. "n01601694"),
    - a primary name or synonym, compared case-insensitively and ignoring punctuation and
      spacing ("water ouzel", "Water_Ouzel", "dipper", "jack-o-lantern").

    A primary name wins over a synonym. Raises UserError when nothing matches (naming the
    nearest classes) or when the name is shared by several classes (e.g. "crane": 134 and 517).
    """
    text = query.strip()
    classes = load_classes()
    if len(text) > MAX_QUERY_LENGTH:
        raise UserError(f"class query {text[:40]!r}... is {len(text):,} characters long; no ImageNet class name "
                        f"is longer than {MAX_QUERY_LENGTH}")
    if _INDEX_PATTERN.fullmatch(text):
        index = int(text)
        if index >= len(classes):
            raise UserError(f"class index {index} is out of range: ImageNet classes are 0..{len(classes) - 1}")
        return classes[index]
    if _WNID_PATTERN.fullmatch(text):
        for imagenet_class in classes:
            if imagenet_class.wnid == text:
                return imagenet_class
        raise UserError(f"WordNet id {text} is not one of the 1,000 ImageNet classes")

    by_name, by_synonym = _name_tables()
    key = slugify(text)
    found = by_name.get(key) or by_synonym.get(key) or ()
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        choices = "; ".join(_describe(c) for c in found)
        raise UserError(f"class name {query!r} is ambiguous: {choices}; give the index or WordNet id")
    nearest = _nearest_names(text)
    hint = f"nearest: {'; '.join(nearest)}" if nearest else "give an index 0..999, a WordNet id or a class name"
    raise UserError(f"unknown ImageNet class {query!r}; {hint}")

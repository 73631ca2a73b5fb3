"""Known-answer tests of the shipped ImageNet class index and its lookups."""

import json

import pytest

from generator.classes import (
    CLASS_INDEX_PATH,
    ImageNetClass,
    class_index_credit,
    find_class,
    load_classes,
    slugify,
)
from generator.errors import UserError


def test_index_has_1000_classes_in_sorted_wnid_order():
    classes = load_classes()
    assert len(classes) == 1000
    assert [c.index for c in classes] == list(range(1000))
    wnids = [c.wnid for c in classes]
    assert wnids == sorted(wnids)
    assert len(set(wnids)) == 1000
    assert all(isinstance(c, ImageNetClass) and c.name and c.definition for c in classes)


@pytest.mark.parametrize(
    "index, wnid, name",
    [
        (0, "n01440764", "tench"),
        (20, "n01601694", "water ouzel"),
        (281, "n02123045", "tabby"),
        (607, "n03590841", "jack-o'-lantern"),
        (999, "n15075141", "toilet tissue"),
    ],
)
def test_known_classes(index, wnid, name):
    imagenet_class = load_classes()[index]
    assert (imagenet_class.index, imagenet_class.wnid, imagenet_class.name) == (index, wnid, name)


def test_water_ouzel_entry_is_complete():
    ouzel = load_classes()[20]
    assert ouzel.synonyms == ("dipper",)
    assert "diving bird" in ouzel.definition
    assert ouzel.slug == "water-ouzel"
    assert ouzel.dir_name == "20-water-ouzel"


def test_classes_are_frozen_and_cached():
    assert load_classes() is load_classes()
    with pytest.raises(AttributeError):
        load_classes()[0].name = "carp"


def test_json_credits_its_source():
    document = json.loads(CLASS_INDEX_PATH.read_text(encoding="utf-8"))
    assert set(document) == {"source", "licence", "classes"}
    credit = class_index_credit()
    assert "timm" in credit["source"] and "WordNet" in credit["source"]
    assert "WordNet" in credit["licence"]


@pytest.mark.parametrize(
    "text, slug",
    [
        ("jack-o'-lantern", "jack-o-lantern"),
        ("water ouzel", "water-ouzel"),
        ("carpenter's kit", "carpenter-s-kit"),
        ("black-and-tan coonhound", "black-and-tan-coonhound"),
        ('the "Q&A" desk', "the-q-a-desk"),
        ("  Rock 'n' Roll & Co.  ", "rock-n-roll-co"),
        ("Shih-Tzu", "shih-tzu"),
        ("---", ""),
    ],
)
def test_slugify(text, slug):
    assert slugify(text) == slug


def test_class_slugs_are_url_safe_and_unique_with_index():
    dir_names = [c.dir_name for c in load_classes()]
    assert len(set(dir_names)) == 1000
    for dir_name in dir_names:
        assert dir_name == slugify(dir_name)


@pytest.mark.parametrize(
    "query, index",
    [
        ("20", 20),
        (" 0 ", 0),
        ("999", 999),
        ("n01601694", 20),
        ("water ouzel", 20),
        ("Water Ouzel", 20),
        ("water_ouzel", 20),  # Keras decode_predictions spelling
        ("dipper", 20),
        ("DIPPER", 20),
        ("jack-o'-lantern", 607),
        ("jack o lantern", 607),
        ("carpenter's kit", 477),
        ("tool kit", 477),  # synonym of carpenter's kit
        ("Tinca tinca", 0),
        ("ash bin", 412),  # the class lists "ash bin" and "ash-bin": same class, not ambiguous
    ],
)
def test_find_class(query, index):
    assert find_class(query).index == index


def test_primary_name_wins_over_synonym():
    # "crayfish" is the primary name of 124 and a synonym of 123 (spiny lobster).
    assert find_class("crayfish").index == 124


@pytest.mark.parametrize("query, indices", [("crane", "134.*517"), ("panda", "387.*388")])
def test_ambiguous_name_lists_candidates(query, indices):
    with pytest.raises(UserError, match=f"ambiguous: {indices}"):
        find_class(query)


def test_unknown_name_suggests_nearest():
    with pytest.raises(UserError) as error:
        find_class("watr ouzle")
    message = str(error.value)
    assert "unknown ImageNet class 'watr ouzle'" in message
    assert "20 water ouzel (n01601694)" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "query, message",
    [
        ("1000", "out of range"),
        ("n99999999", "not one of the 1,000"),
        ("qqqqzzzz", "give an index 0..999"),
        ("", "unknown ImageNet class"),
    ],
)
def test_bad_queries_raise_user_error(query, message):
    with pytest.raises(UserError, match=message):
        find_class(query)

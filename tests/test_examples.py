"""Example photos (generator.examples): loading, bad files, discovery, and the saliency stage.

The stage runs on a hand-built CNN whose answers are known without training: conv1 has a red
detector relu(r - g - b), a green detector relu(g - r - b) and a brightness unit; conv2 copies
them (3x3, identity centre tap); the head says "class 0" for red, "class 1" for green and
"class 2" for neither.
"""

import json
import struct
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from generator.errors import UserError
from generator.examples import (
    BUILTIN_PHOTOS,
    RESIZE_MODE,
    UnreadablePhoto,
    discover_photos,
    load_photo,
    run_examples,
)
from generator.model import LoadedModel

RED, GREEN, BLUE = (230, 40, 40), (40, 200, 60), (40, 40, 230)
SIZE = 32


# --- loading ------------------------------------------------------------------------------------


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


def test_wide_photo_is_center_cropped_after_short_side_resize(tmp_path):
    path = save(tmp_path, "wide.png", stripes(20, 60, [RED, GREEN, BLUE]))
    photo = load_photo(path, size=32)
    assert photo.shape == (32, 32, 3) and photo.dtype == np.uint8
    np.testing.assert_allclose(photo.reshape(-1, 3).mean(axis=0), GREEN, atol=1)  # only the middle third
    assert "center crop" in RESIZE_MODE


def test_tall_photo_keeps_its_middle(tmp_path):
    tall = np.transpose(stripes(20, 90, [RED, GREEN, BLUE]), (1, 0, 2))  # 90 high, 20 wide
    photo = load_photo(save(tmp_path, "tall.png", tall), size=16)
    np.testing.assert_allclose(photo.reshape(-1, 3).mean(axis=0), GREEN, atol=1)


def test_exif_orientation_is_applied(tmp_path):
    """Stored 60x40 with red left, blue right, EXIF 6 (rotate 90 clockwise): red ends on top."""
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(tmp_path, "rotated.jpg", stripes(40, 60, [RED, BLUE]), exif=exif, quality=95)
    photo = load_photo(path, size=32).astype(int)
    assert photo[2, 16, 0] > 150 and photo[2, 16, 2] < 100  # top: red
    assert photo[29, 16, 2] > 150 and photo[29, 16, 0] < 100  # bottom: blue


def test_grayscale_becomes_equal_channels(tmp_path):
    gray = np.tile(np.arange(0, 250, 5, dtype=np.uint8), (50, 1))
    photo = load_photo(save(tmp_path, "gray.png", gray, "L"), size=32)
    assert (photo[..., 0] == photo[..., 1]).all() and (photo[..., 1] == photo[..., 2]).all()
    assert photo[..., 0].min() < 40 and photo[..., 0].max() > 210


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent except the left half
    rgba[:, :20, 3] = 255
    photo = load_photo(save(tmp_path, "alpha.png", rgba, "RGBA"), size=40).astype(int)
    np.testing.assert_array_equal(photo[20, 5], [255, 0, 0])
    np.testing.assert_array_equal(photo[20, 35], [255, 255, 255])


def test_palette_with_transparency_is_composited_over_white(tmp_path):
    palette_image = Image.new("P", (30, 30), 0)
    palette_image.putpalette([0, 0, 255] + [0, 0, 0] * 255)
    palette_image.info["transparency"] = 0
    path = tmp_path / "palette.png"
    palette_image.save(path, transparency=0)
    np.testing.assert_array_equal(load_photo(path, size=30)[10, 10], [255, 255, 255])


def test_cmyk_jpeg_is_converted(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (40, 40), (0, 255, 255, 0)).save(path, quality=95)  # pure red in CMYK
    pixel = load_photo(path, size=32)[16, 16].astype(int)
    assert pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


def test_sixteen_bit_gray_is_scaled_to_eight_bits(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    assert (load_photo(path, size=32) == 255).all()


def test_webp_loads(tmp_path):
    path = save(tmp_path, "photo.webp", stripes(40, 40, [GREEN]), lossless=True)
    np.testing.assert_array_equal(load_photo(path, size=32)[0, 0], GREEN)


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


def test_unusable_files_raise_unreadable_photo_with_a_reason(tmp_path):
    expected = bad_files(tmp_path)
    for name, words in expected.items():
        with pytest.raises(UnreadablePhoto, match=words):
            load_photo(tmp_path / name)


def test_builtin_photos_ship_with_credits_and_load():
    assert len(BUILTIN_PHOTOS) == 6
    assert len({photo.slug for photo in BUILTIN_PHOTOS}) == 6
    for photo in BUILTIN_PHOTOS:
        assert photo.path.is_file(), photo.path
        assert photo.source and photo.licence and photo.title
    chelsea = load_photo(BUILTIN_PHOTOS[0].path)
    assert BUILTIN_PHOTOS[0].slug == "chelsea" and chelsea.shape == (224, 224, 3)
    assert "CC0" in BUILTIN_PHOTOS[0].licence and "van der Walt" in BUILTIN_PHOTOS[0].source


# --- discovery ----------------------------------------------------------------------------------


def test_discovery_is_recursive_sorted_and_slugs_are_unique(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("Chelsea.JPG", "b/My Photo.png", "c.webp", "skip.txt", "b/c.webp"):
        (tmp_path / name).write_bytes(b"x")
    photos = discover_photos(tmp_path, taken=["chelsea"])
    assert [p.path.relative_to(tmp_path).as_posix() for p in photos] == ["Chelsea.JPG", "b/My Photo.png", "b/c.webp", "c.webp"]
    assert [p.slug for p in photos] == ["chelsea-2", "b-my-photo", "b-c", "c"]
    assert photos[0].title == "Chelsea" and photos[0].licence == "supplied by the user"


@pytest.mark.parametrize("setup, words", [
    (lambda folder: folder / "missing", "does not exist"),
    (lambda folder: folder, "holds no .jpg, .png or .webp files"),
    (lambda folder: (folder / "a.txt").write_text("x") and folder, "holds no .jpg"),
    (lambda folder: (folder / "file.png").write_bytes(b"x") and folder / "file.png", "is not a folder"),
])
def test_missing_or_empty_folder_is_one_user_error(tmp_path, setup, words):
    with pytest.raises(UserError, match=words) as error:
        discover_photos(setup(tmp_path))
    assert "\n" not in str(error.value)


# --- the stage, on a hand-built model -----------------------------------------------------------


def colour_model(with_head=True):
    """Known-answer CNN (module docstring); input 32x32 RGB scaled to 0..1."""
    inputs = keras.Input((SIZE, SIZE, 3))
    conv1 = keras.layers.Conv2D(3, 1, activation="relu", name="conv1")
    conv2 = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv2")
    features = conv2(conv1(inputs))
    head = keras.layers.Dense(3, activation="softmax", name="predictions")
    outputs = head(keras.layers.GlobalAveragePooling2D()(features)) if with_head else features
    model = keras.Model(inputs, outputs)
    conv1.set_weights([np.array([[1, -1, 1 / 3], [-1, 1, 1 / 3], [-1, -1, 1 / 3]], np.float32)[None, None],
                       np.zeros(3, np.float32)])
    identity = np.zeros((3, 3, 3, 3), np.float32)
    identity[1, 1] = np.eye(3)
    conv2.set_weights([identity, np.zeros(3, np.float32)])
    if with_head:
        head.set_weights([np.array([[300, 0, 0], [0, 300, 0], [0, 0, 0]], np.float32),
                          np.array([0, 0, 2], np.float32)])
    return model


def scale_01(rgb):
    return tf.cast(rgb, tf.float32) / 255.0


def photo_with_square(colour, corner, size=48):
    image = np.full((size, size, 3), 128, np.uint8)
    row, col = corner
    image[row:row + 9, col:col + 9] = colour
    return image


@pytest.fixture
def photo_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    save(folder, "red.png", photo_with_square(RED, (3, 3)))
    save(folder, "green.jpg", photo_with_square(GREEN, (36, 36)), quality=95)
    save(folder, "plain.webp", np.full((48, 64), 128, np.uint8), "L", lossless=True)
    bad = bad_files(folder)
    return folder, sorted(bad)


def run(loaded, site_src, folder, messages, **options):
    arguments = dict(units=[("conv2", 0), ("conv2", 1)], classes=[2], include_builtin=False, top_k=2,
                     preprocess=scale_01, progress=False, log=messages.append)
    return run_examples(loaded, site_src, folder, **(arguments | options))


def test_stage_writes_known_answers_and_skips_bad_files(tmp_path, photo_folder):
    folder, bad_names = photo_folder
    loaded = LoadedModel(colour_model(), "path:colour.weights.h5", "c" * 64, has_top=True)
    messages = []
    records = run(loaded, tmp_path / "site_src", folder, messages)

    warnings = [m for m in messages if m.startswith("warning:")]
    assert len(warnings) == len(bad_names) == 7
    for name in bad_names:
        assert sum(name in m for m in warnings) == 1
    assert [r.parent.name for r in records] == ["green", "plain", "red"]

    examples = tmp_path / "site_src" / "examples"
    red = json.loads((examples / "red" / "example.json").read_text())
    assert red["url"] == "examples/red/" and red["photo"] == "photo.webp"
    assert red["licence"] == "supplied by the user"
    assert [p["index"] for p in red["predictions"]] == [0, 2, 1]
    assert red["predictions"][0]["probability"] > 0.9 and red["predictions"][0]["wnid"] is None
    green = json.loads((examples / "green" / "example.json").read_text())
    assert green["predictions"][0]["index"] == 1

    targets = {(m["target"], m["method"]) for m in red["maps"]}
    methods = {"vanilla", "smoothgrad", "guided_backprop", "gradcam", "gradcam_plus_plus", "scorecam",
               "integrated_gradients"}
    assert targets == {(t, m) for t in ("class 0", "class 2") for m in methods}
    assert {m["overlay"] for m in red["maps"] if m["target"] == "class 0"} == {f"{m}.webp" for m in methods}
    assert red["settings"]["size"] == SIZE and red["settings"]["attribution"]["smoothgrad_samples"] == 8

    # The red square is in the top-left corner, and so is each class-0 map's mass.
    with np.load(examples / "red" / "maps.npz") as arrays:
        assert set(arrays.files) == {m["array"] for m in red["maps"]} | {a for u in red["units"] for a in u["arrays"]}
        for entry in red["maps"]:
            saliency = arrays[entry["array"]].astype(np.float32)
            assert arrays[entry["array"]].dtype == np.float16 and saliency.max() <= 1.0
            if entry["target"] == "class 0":
                half = saliency.shape[0] // 2
                assert saliency[:half, :half].sum() > 0.6 * saliency.sum(), entry["method"]

    top = json.loads((examples / "top_examples.json").read_text())
    assert [e["slug"] for e in top["conv2/0"]][0] == "red" and [e["slug"] for e in top["conv2/1"]][0] == "green"
    assert top["conv2/0"][0]["activation"] > top["conv2/0"][1]["activation"]
    first = top["conv2/0"][0]
    assert first["attribution"] == "examples/red/units/conv2-0-attribution.webp"
    for entry in (e for entries in top.values() for e in entries):
        for key in ("photo", "attribution", "activation_map"):
            assert (tmp_path / "site_src" / entry[key]).is_file()
    assert red["units"][0]["target"] == "conv2 #0" and red["units"][0]["rank"] == 0
    assert Image.open(examples / "red" / "photo.webp").size == (SIZE, SIZE)
    assert not list((tmp_path / "site_src").rglob("*.tmp"))


def test_stage_resumes_and_redoes_changed_settings(tmp_path, photo_folder):
    folder, _ = photo_folder
    loaded = LoadedModel(colour_model(), "path:colour.weights.h5", "c" * 64, has_top=True)
    site_src = tmp_path / "site_src"
    run(loaded, site_src, folder, [], methods=["vanilla", "gradcam"])
    record = site_src / "examples" / "red" / "example.json"
    before = record.stat().st_mtime_ns, record.read_text()
    run(loaded, site_src, folder, [], methods=["vanilla", "gradcam"])
    assert (record.stat().st_mtime_ns, record.read_text()) == before
    run(loaded, site_src, folder, [], methods=["vanilla"])
    assert {m["method"] for m in json.loads(record.read_text())["maps"]} == {"vanilla"}
    changed_weights = LoadedModel(loaded.model, loaded.source, "d" * 64, has_top=True)
    run(changed_weights, site_src, folder, [], methods=["vanilla"])
    assert json.loads(record.read_text())["provenance"]["weights_sha256"] == "d" * 64


def test_stage_without_a_head_explains_the_unit_each_photo_excites_most(tmp_path, photo_folder):
    folder, _ = photo_folder
    loaded = LoadedModel(colour_model(with_head=False), "embedded", "e" * 64, has_top=False)
    run(loaded, tmp_path, folder, [], classes=[], methods=["gradcam", "smoothgrad"])
    red = json.loads((tmp_path / "examples" / "red" / "example.json").read_text())
    green = json.loads((tmp_path / "examples" / "green" / "example.json").read_text())
    assert red["predictions"] == [] and {m["target"] for m in red["maps"]} == {"conv2 #0"}
    assert {m["target"] for m in green["maps"]} == {"conv2 #1"}
    assert red["units"][0]["method"] == "guided_backprop"


def test_pages_are_capped_but_every_top_example_keeps_its_page(tmp_path, photo_folder):
    folder, _ = photo_folder
    loaded = LoadedModel(colour_model(), "path:colour.weights.h5", "c" * 64, has_top=True)
    records = run(loaded, tmp_path, folder, [], units=[("conv2", 0)], top_k=1, max_pages=0, methods=["vanilla"])
    assert [r.parent.name for r in records] == ["red"]


@pytest.mark.parametrize("options, words", [
    (dict(classes=[7]), "predictions has 3 units"),
    (dict(units=[("conv3", 0)]), "unknown conv layer 'conv3'"),
    (dict(methods=["occlusion"]), "unknown saliency method"),
    (dict(unit_method="lime"), "unknown saliency method"),
])
def test_stage_rejects_bad_requests_before_any_work(tmp_path, photo_folder, options, words):
    folder, _ = photo_folder
    loaded = LoadedModel(colour_model(), "path:colour.weights.h5", "c" * 64, has_top=True)
    with pytest.raises(UserError, match=words):
        run(loaded, tmp_path, folder, [], **options)
    assert not (tmp_path / "examples").exists()


def test_classes_without_a_head_and_unreadable_folders_are_user_errors(tmp_path, photo_folder):
    folder, _ = photo_folder
    conv_only = LoadedModel(colour_model(with_head=False), "embedded", "e" * 64, has_top=False)
    with pytest.raises(UserError, match="classification head"):
        run(conv_only, tmp_path, folder, [], classes=[1])
    with pytest.raises(UserError, match="does not exist"):
        run(conv_only, tmp_path, tmp_path / "nowhere", [], classes=[])
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "empty.png").write_bytes(b"")
    messages = []
    with pytest.raises(UserError, match="none of the example photos could be read"):
        run(conv_only, tmp_path, only_bad, messages, classes=[])
    assert len(messages) == 1 and "empty.png" in messages[0]


@pytest.mark.slow
def test_stage_on_vgg16_embedded_weights_with_the_builtin_photos(tmp_path, embedded_vgg16):
    """The real stage: 6 built-in photos, 2 units (one shallow, one deep), default settings."""
    messages = []
    records = run_examples(embedded_vgg16, tmp_path, None, units=[("block2_conv2", 3), ("block5_conv3", 42)],
                           progress=False, log=messages.append)
    assert [r.parent.name for r in records] == [p.slug for p in BUILTIN_PHOTOS]
    top = json.loads((tmp_path / "examples" / "top_examples.json").read_text())
    assert set(top) == {"block2_conv2/3", "block5_conv3/42"} and all(len(v) == 3 for v in top.values())
    chelsea = json.loads(records[0].read_text())
    assert chelsea["predictions"] == [] and len(chelsea["maps"]) == 7
    assert chelsea["provenance"]["weights_source"] == "embedded"

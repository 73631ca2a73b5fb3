"""The saliency stage (generator.examples and the modules it joins), end to end on a small model.

The stage runs on a hand-built CNN whose answers are known without training: conv1 has a red
detector relu(r - g - b), a green detector relu(g - r - b) and a brightness unit; conv2 copies
them (3x3, identity centre tap); the head says "class 0" for red, "class 1" for green and
"class 2" for neither.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from generator.errors import UserError
from generator.example_options import ExampleOptions
from generator.examples import run_examples, run_examples_over_drawn_units
from generator.model import LoadedModel
from generator.photos import builtin_photos
from generator.records import example_problem, top_examples_problem
from generator.saliency_methods import AttributionSettings
from photo_files import bad_files, save

RED, GREEN, BLUE = (230, 40, 40), (40, 200, 60), (40, 40, 230)
SIZE = 32


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


def run(loaded, site_src, folder, messages, units=(("conv2", 0), ("conv2", 1)), classes=(2,), **choices):
    options = ExampleOptions(**(dict(include_builtin=False, top_k=2, images_dir=folder) | choices))
    return run_examples(loaded, site_src, units, classes, options, preprocess=scale_01, progress=False,
                        log=messages.append)


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


def test_pages_are_capped_at_the_first_readable_photos_and_the_rest_is_not_read(tmp_path, photo_folder):
    """--example-pages N: a folder of any size costs the saliency stage N photos; the top examples
    are ranked among them, so each keeps its page."""
    folder, _ = photo_folder
    loaded = LoadedModel(colour_model(), "path:colour.weights.h5", "c" * 64, has_top=True)
    messages = []
    records = run(loaded, tmp_path, folder, messages, units=[("conv2", 0)], top_k=2, max_pages=2, methods=["vanilla"])
    assert [r.parent.name for r in records] == ["green", "plain"]
    top = json.loads((tmp_path / "examples" / "top_examples.json").read_text())
    assert [entry["slug"] for entry in top["conv2/0"]] == ["green", "plain"]
    assert sum("notes.jpg" in message for message in messages) == 1  # between green and plain: read, skipped
    assert not any("red.png" in message for message in messages)  # after the cap: never read
    assert messages[-1].endswith("; 1 photo after them not mapped (--example-pages N maps more)")


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
    records = run_examples(embedded_vgg16, tmp_path, units=[("block2_conv2", 3), ("block5_conv3", 42)],
                           progress=False, log=messages.append)
    assert [r.parent.name for r in records] == [p.slug for p in builtin_photos()]
    top = json.loads((tmp_path / "examples" / "top_examples.json").read_text())
    assert set(top) == {"block2_conv2/3", "block5_conv3/42"} and all(len(v) == 3 for v in top.values())
    chelsea = json.loads(records[0].read_text())
    assert chelsea["predictions"] == [] and len(chelsea["maps"]) == 7
    assert chelsea["provenance"]["weights_source"] == "embedded"
    assert all(example_problem(json.loads(path.read_text()), path.parent.name) is None for path in records)


# --- the records contract, reruns and --examples-only -------------------------------------------


def test_stage_output_follows_the_records_contract_and_records_its_choice(tmp_path, photo_folder):
    folder, _ = photo_folder
    loaded = LoadedModel(colour_model(), "path:colour.weights.h5", "c" * 64, has_top=True)
    paths = run(loaded, tmp_path, folder, [], units=[], classes=[2], methods=["vanilla", "gradcam"])
    for path in paths:
        example = json.loads(path.read_text())
        assert example_problem(example, path.parent.name) is None, path
    red = json.loads((tmp_path / "examples" / "red" / "example.json").read_text())
    assert red["primary"] == {"target": "class 0", "reason": "the top-1 class of the model's classification head"}
    assert top_examples_problem(json.loads((tmp_path / "examples" / "top_examples.json").read_text())) is None


def snapshot(folder):
    """{relative path: (bytes, mtime in ns)} of every file below `folder`."""
    return {path.relative_to(folder).as_posix(): (path.read_bytes(), path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*")) if path.is_file()}


def test_a_rerun_with_nothing_changed_leaves_every_file_untouched(tmp_path, photo_folder):
    folder, _ = photo_folder
    loaded = LoadedModel(colour_model(with_head=False), "embedded", "e" * 64, has_top=False)
    run(loaded, tmp_path, folder, [], classes=[], methods=["vanilla"])
    before = snapshot(tmp_path / "examples")
    assert "top_examples.json" in before and "red/example.json" in before
    run(loaded, tmp_path, folder, [], classes=[], methods=["vanilla"])
    assert snapshot(tmp_path / "examples") == before


def test_top_examples_keep_their_bytes_when_only_float_noise_moved(tmp_path, photo_folder):
    from generator.example_pages import write_top_examples
    from generator.photos import discover_photos
    from generator.ranking import Ranking
    from generator.targets import Target

    photos = discover_photos(photo_folder[0])
    units = [Target("conv2", 0)]
    written = lambda best: write_top_examples(tmp_path, photos, Ranking(units, [0, 1], {}, [best], examined=2))  # noqa: E731
    assert written([(0, 12.3457), (1, 0.5)])
    path = tmp_path / "examples" / "top_examples.json"
    before = path.read_bytes(), path.stat().st_mtime_ns
    assert not written([(0, 12.3457 * (1 + 2e-7)), (1, 0.5)])
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert written([(0, 12.4), (1, 0.5)]) and json.loads(path.read_text())["conv2/0"][0]["activation"] == 12.4
    assert written([(1, 0.5), (0, 12.4)]) and json.loads(path.read_text())["conv2/0"][0]["slug"] == photos[1].slug


def test_a_page_interrupted_while_redone_keeps_no_record_of_other_settings(tmp_path, photo_folder, monkeypatch):
    """Killed after some overlays of new settings replaced the old ones, the page must not pass
    for complete with its old record on the next run."""
    import generator.example_pages

    folder, _ = photo_folder
    loaded = LoadedModel(colour_model(), "path:colour.weights.h5", "c" * 64, has_top=True)
    run(loaded, tmp_path, folder, [], units=[], classes=[], methods=["vanilla"])
    record = tmp_path / "examples" / "green" / "example.json"
    assert record.is_file()
    saved = []

    def dies_on_the_second_image(path, rgb):
        saved.append(path)
        if len(saved) == 2:
            raise KeyboardInterrupt
        generator.store.save_image(path, rgb)

    monkeypatch.setattr(generator.example_pages, "save_image", dies_on_the_second_image)
    changed = ExampleOptions(include_builtin=False, images_dir=folder, methods=["vanilla"],
                             attribution=AttributionSettings(batch_size=4))
    with pytest.raises(KeyboardInterrupt):
        run_examples(loaded, tmp_path, (), (), changed, preprocess=scale_01, progress=False, log=print)
    assert [path.relative_to(record.parent).as_posix() for path in saved] == ["photo.webp", "vanilla.webp"]
    assert not record.exists()


def tiny_vgg16():
    """VGG16's conv layers (VGG16 names, so records validate) with random weights, at 32 px."""
    keras.utils.set_random_seed(1)
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
    return LoadedModel(model, "embedded", "f" * 64, has_top=False)


def test_examples_only_explains_every_drawn_filter(tmp_path, photo_folder):
    from generator.synthetic import class_record, filter_record, write_synthetic_unit

    folder, _ = photo_folder
    for layer, index in (("block1_conv1", 5), ("block3_conv2", 17)):
        write_synthetic_unit(tmp_path, filter_record(layer, index))
    options = ExampleOptions(include_builtin=False, images_dir=folder, methods=["vanilla"], top_k=2)
    paths = run_examples_over_drawn_units(tiny_vgg16(), tmp_path, options, progress=False, log=lambda _: None)
    top = json.loads((tmp_path / "examples" / "top_examples.json").read_text())
    assert set(top) == {"block1_conv1/5", "block3_conv2/17"} and all(len(entries) == 2 for entries in top.values())
    for path in paths:
        example = json.loads(path.read_text())
        assert example_problem(example, path.parent.name) is None, path
    units = [unit for path in paths for unit in json.loads(path.read_text())["units"]]
    assert {(unit["layer"], unit["index"]) for unit in units} == {("block1_conv1", 5), ("block3_conv2", 17)}

    from generator.classes import load_classes

    write_synthetic_unit(tmp_path, class_record(load_classes()[3]))
    with pytest.raises(UserError, match="class 3 needs a model with its ImageNet classification head"):
        run_examples_over_drawn_units(tiny_vgg16(), tmp_path, options, progress=False)


def test_examples_only_without_drawn_units_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no drawn units under"):
        run_examples_over_drawn_units(tiny_vgg16(), tmp_path, ExampleOptions(include_builtin=False), progress=False)

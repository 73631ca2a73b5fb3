"""The dataset-examples stage (generator.dataset and its modules): crop boxes, top-k order, the
activation cache, licences, the records and pages, and the bad inputs refused before TensorFlow.

End-to-end runs use VGG16's conv layers with random weights at 32 px (tests/test_examples.py
`tiny_vgg16`): the geometry and the files do not depend on the weights' values.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_examples import scale_01, tiny_vgg16

from generator import records
from generator.activation_cache import ActivationCache
from generator.dataset import MaxActivations, run_dataset
from generator.dataset_photos import UNKNOWN_LICENCE, DatasetOptions, dataset_photos, read_licences
from generator.errors import UserError
from generator.patches import TopPatches, map_side, receptive_box
from photo_files import save

ROOT = Path(__file__).resolve().parents[1]
UNITS = (("block1_conv1", 0), ("block3_conv1", 5), ("block5_conv3", 7))


# --- geometry and ranking, known answers ----------------------------------------------------------


@pytest.mark.parametrize("layer, row, col, size, box", [
    ("block1_conv1", 10, 20, 224, [19, 9, 22, 12]),  # receptive field 3 at stride 1, centred
    ("block1_conv2", 10, 20, 224, [18, 8, 23, 13]),  # 5 at stride 1
    ("block1_conv1", 0, 0, 224, [0, 0, 2, 2]),  # clipped at the top left
    ("block2_conv1", 0, 0, 224, [0, 0, 6, 6]),  # 10 at stride 2: rows -4..5
    ("block3_conv1", 5, 7, 224, [18, 10, 42, 34]),  # 24 at stride 4: 4 * 5 - 10 = 10
    ("block5_conv3", 13, 13, 224, [118, 118, 224, 224]),  # 196 at stride 16, clipped at the bottom right
    ("block5_conv3", 0, 0, 224, [0, 0, 106, 106]),
])
def test_receptive_box_known_answers(layer, row, col, size, box):
    assert receptive_box(layer, row, col, size) == box


def test_map_sides_and_positions_follow_the_network():
    """The forward pass's (max, argmax) match the layer maps computed directly, and position = row * side + col."""
    import keras

    loaded = tiny_vgg16()
    rgb = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    forward = MaxActivations(loaded.model, scale_01)
    maxima, positions = forward(rgb)
    names = ["block1_conv2", "block3_conv1", "block5_conv3"]
    maps = keras.Model(loaded.model.input, [loaded.model.get_layer(name).output for name in names])(rgb / 255.0)
    for name, layer_map in zip(names, maps):
        layer_map = np.asarray(layer_map)
        assert layer_map.shape[1] == layer_map.shape[2] == map_side(name, 32)
        column = forward.units.index((name, 3))
        for image in range(2):
            row, col = divmod(int(positions[image, column]), map_side(name, 32))
            assert layer_map[image, row, col, 3] == pytest.approx(layer_map[image, :, :, 3].max(), rel=1e-5)
            assert maxima[image, column] == pytest.approx(layer_map[image, :, :, 3].max(), rel=1e-5)
    assert forward.calls == 1


def test_top_k_keeps_the_best_in_order_ties_to_the_earlier_photo_and_never_a_silent_filter():
    top = TopPatches(units=2, k=3)
    top.add([0, 1], maxima=[[1.0, 0.0], [5.0, 2.0]], positions=[[10, 11], [12, 13]])
    top.add([2, 3], maxima=[[5.0, 3.0], [0.5, 0.0]], positions=[[14, 15], [16, 17]])
    assert top.best(0) == [(1, 5.0, 12), (2, 5.0, 14), (0, 1.0, 10)]  # photo 3 (0.5) falls out
    assert top.best(1) == [(2, 3.0, 15), (1, 2.0, 13)]  # photos 0 and 3 leave it at 0: no patch
    assert top.live_photos() == [0, 1, 2]


# --- the stage end to end -------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path):
    photos = tmp_path / "photos"
    rng = np.random.default_rng(1)
    for name in ("a.png", "b.png", "sub/c.jpg"):
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        save(photos, name, rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
    (photos / "empty.png").write_bytes(b"")  # skipped with a warning
    (photos / "LICENSES.csv").write_text("file,licence,credit\na.png,CC BY 4.0,Ann Author\nsub/c.jpg,CC0,\n")
    return photos


def stage(tmp_path, folder, messages=None, **choices):
    options = DatasetOptions(**({"images_dir": folder, "include_builtin": False, "patches": 2} | choices))
    return run_dataset(tiny_vgg16(), tmp_path / "site", UNITS, options, preprocess=scale_01,
                       cache_root=tmp_path / "cache", progress=False,
                       log=(lambda _: None) if messages is None else messages.append)


def snapshot(root):
    return {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted(Path(root).rglob("*")) if path.is_file()}


def test_stage_writes_patches_with_licences_and_a_rerun_is_all_cached(tmp_path, folder):
    messages = []
    stats = stage(tmp_path, folder, messages)
    assert (stats.photos, stats.readable, stats.forward_passes, stats.written) == (4, 3, 1, 3)  # one batch
    assert any("warning: skipping" in message and "empty.png: empty file" in message for message in messages)
    assert "(1 forward passes, 0 photos from the cache)" in messages[-1]
    site = tmp_path / "site"
    for layer, index in UNITS:
        unit_dir = records.unit_dir(site, layer, index)
        record = json.loads((unit_dir / "dataset.json").read_text())
        assert records.dataset_problem(record, layer, index) is None
        assert len(record["patches"]) == 2 and record["settings"]["patches"] == 2
        activations = [patch["activation"] for patch in record["patches"]]
        assert activations == sorted(activations, reverse=True) and min(activations) > 0
        for patch in record["patches"]:
            left, top, right, bottom = patch["box"]
            assert patch["box"] == receptive_box(layer, *patch["position"], 32)
            from PIL import Image

            with Image.open(unit_dir / patch["file"]) as image:
                assert image.format == "WEBP" and image.size == (right - left, bottom - top)
            assert (patch["licence"], patch["credit"]) == {
                "a.png": ("CC BY 4.0", "Ann Author"), "b.png": (UNKNOWN_LICENCE, ""), "sub/c.jpg": ("CC0", "")}[patch["photo"]]
    cached = sorted((tmp_path / "cache" / "activations").rglob("*.npy"))
    assert len(cached) == 3 and all(path.stat().st_size == 17_024 for path in cached)  # 4,224 filters x 4 bytes

    before = snapshot(site)
    assert stage(tmp_path, folder).forward_passes == 0  # every photo cached: no forward pass
    assert snapshot(site) == before  # and nothing rewritten

    cached[0].write_bytes(b"damaged")
    messages = []
    assert stage(tmp_path, folder, messages).forward_passes == 1 and snapshot(site) == before
    assert "(1 forward passes, 2 photos from the cache)" in messages[-1]


def test_omitted_unlicensed_photos_and_a_smaller_k_remove_only_our_stale_patches(tmp_path, folder):
    stage(tmp_path, folder)
    unit_dir = records.unit_dir(tmp_path / "site", *UNITS[1])
    (unit_dir / "notes.webp").write_bytes(b"not ours")
    stage(tmp_path, folder, patches=1, unlicensed="omit")
    record = json.loads((unit_dir / "dataset.json").read_text())
    assert [patch["photo"] for patch in record["patches"]] in (["a.png"], ["sub/c.jpg"])
    assert sorted(path.name for path in unit_dir.iterdir()) == sorted(["dataset.json", "notes.webp", record["patches"][0]["file"]])


def test_the_cache_is_keyed_by_weights_and_size(tmp_path):
    maxima, positions = np.arange(4, dtype=np.float16), np.array([0, 1, 2, 65535], np.uint16)
    ActivationCache("a" * 64, 224, 4, tmp_path).put("f" * 64, maxima, positions)
    got = ActivationCache("a" * 64, 224, 4, tmp_path).get("f" * 64)
    assert np.array_equal(got[0], maxima) and np.array_equal(got[1], positions)
    assert ActivationCache("b" * 64, 224, 4, tmp_path).get("f" * 64) is None
    assert ActivationCache("a" * 64, 32, 4, tmp_path).get("f" * 64) is None
    assert ActivationCache("a" * 64, 224, 5, tmp_path).get("f" * 64) is None  # another unit count


# --- licences and bad input -----------------------------------------------------------------------


def test_licences_read_with_the_csv_module(tmp_path):
    (tmp_path / "LICENSES.csv").write_text('\ufeffFile,License,Credit\n"x, y.jpg","CC BY-SA 4.0","Bo ""B"" Doe"\n\n')
    assert read_licences(tmp_path) == {"x, y.jpg": ("CC BY-SA 4.0", 'Bo "B" Doe')}
    assert read_licences(tmp_path / "nowhere") == {}


@pytest.mark.parametrize("text, words", [
    ("name,licence\na.png,CC0\n", "line 1: the header needs the columns file and licence"),
    ("file,licence\na.png,CC0,extra\n", "line 2: 3 fields, the header has 2"),
    ("file,licence\na.png,\n", "line 2: empty licence for a.png"),
    ("file,licence\na.png,CC0\na.png,CC BY\n", "line 3: a.png is listed twice"),
    ('file,licence\n"a.png,CC0\n', "not valid CSV"),
    (b"file,licence\n\xff.png,CC0\n", "not UTF-8 text"),
])
def test_a_malformed_licence_file_is_one_line(tmp_path, text, words):
    path = tmp_path / "LICENSES.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(UserError, match=words) as raised:
        read_licences(tmp_path)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)


def test_builtin_photos_carry_their_credits():
    photos = dataset_photos(DatasetOptions())
    assert photos[0].name == "Chelsea the cat" and photos[0].licence.startswith("CC0")
    assert "Stefan van der Walt" in photos[0].credit


def test_bad_dataset_arguments_are_one_line_and_exit_2_before_tensorflow(tmp_path):
    (tmp_path / "photos").mkdir()
    save(tmp_path / "photos", "a.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "photos" / "LICENSES.csv").write_text("file\na.png\n")
    out = tmp_path / "out"
    cases = [
        ["--layers", "block1_conv1", "--patches", "0"],
        ["--layers", "block1_conv1", "--patches", "101"],
        ["--layers", "block1_conv1", "--unlicensed", "drop"],
        ["--layers", "block1_conv1", "--example-pages", "0"],
        ["--layers", "block1_conv1", "--images", str(tmp_path / "photos")],
        ["--examples-only", "--images", str(tmp_path / "photos")],
    ]
    script = (
        "import contextlib, io, json, sys\nfrom generator.cli import main\nresults = []\n"
        f"for args in {cases!r}:\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        f"        code = main(args + ['--out', {str(out)!r}])\n"
        "    results.append([code, err.getvalue()])\n"
        "print(json.dumps([results, 'tensorflow' in sys.modules]))\n"
    )
    probe = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    results, tensorflow_loaded = json.loads(probe.stdout)
    assert not tensorflow_loaded and not out.exists()
    expected = ["--patches must be at least 1 and at most 100 (got 0)", "(got 101)", "argument --unlicensed: invalid choice",
                "--example-pages must be at least 1 (got 0)", "LICENSES.csv line 1: the header needs the columns file and licence",
                "LICENSES.csv line 1: the header needs the columns file and licence"]
    for (code, stderr), words in zip(results, expected):
        assert code == 2 and len(stderr.strip().splitlines()) == 1 and words in stderr, stderr


# --- the pages ------------------------------------------------------------------------------------


def test_unit_pages_show_the_dataset_grid_and_refuse_a_bad_record(tmp_path, folder):
    from generator.site import render_site
    from generator.synthetic import filter_record, write_synthetic_unit

    site = tmp_path / "site"
    write_synthetic_unit(site, filter_record(*UNITS[1]))
    stage(tmp_path, folder)
    render_site(site)
    for layer, index in UNITS:  # drawn (block3_conv1 #5) or not
        page = (records.unit_dir(site, layer, index) / "index.md").read_text()
        record = json.loads((records.unit_dir(site, layer, index) / "dataset.json").read_text())
        assert "<h2>Dataset examples</h2>" in page
        for number, patch in enumerate(record["patches"], start=1):
            assert f'<img src="{patch["file"]}"' in page and patch["licence"] in page
            assert f"{number}. activation {patch['activation']:.4g}<br>{patch['photo']}" in page
    assert "Dataset examples" not in (records.unit_dir(site, "block1_conv1", 1) / "index.md").read_text()

    path = records.unit_dir(site, *UNITS[0]) / "dataset.json"
    path.write_text(path.read_text().replace('"index": 0', '"index": 2'))
    with pytest.raises(records.InvalidRecord, match="is for block1_conv1 #2, not the folder's block1_conv1 #0"):
        render_site(site)


def test_examples_only_with_a_selection_ranks_filters_before_they_are_drawn(tmp_path, folder):
    """`--examples-only --layers ...` fills the dataset examples of undrawn filters: their pages
    show the grid under the "not drawn yet" note; the saliency stage waits for drawn units."""
    from cli_support import build

    out = tmp_path / "site_src"
    result = build("--examples-only", "--layers", "block1_conv1", "--filters", "0:2", "--weights", "embedded",
                   "--images", folder, "--no-builtin-images", "--patches", "2", "--no-progress", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "saliency maps: no drawn unit in the output yet; skipped" in result.stderr
    assert "3 of 4 photos ranked" in result.stderr and "2 of 2 filters written" in result.stderr
    for index in (0, 1):
        unit_dir = records.unit_dir(out, "block1_conv1", index)
        assert not (unit_dir / "unit.json").exists()
        record = json.loads((unit_dir / "dataset.json").read_text())
        assert records.dataset_problem(record, "block1_conv1", index) is None and len(record["patches"]) == 2
        page = (out / "vgg16" / "block1_conv1" / str(index) / "index.md").read_text()
        assert "No picture of this filter has been computed" in page and "atlas-dataset" in page
    assert not (records.unit_dir(out, "block1_conv1", 2) / "dataset.json").exists()  # not selected

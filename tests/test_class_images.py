"""Class images on the real architecture: a full-size VGG16 with its 1,000-class head.

The head is random (no ImageNet download here); the conv layers hold the embedded ImageNet
weights. One class (and one filter: a model with the head takes 224 px input only, filters are
drawn at their own sizes) is drawn through the CLI from a `.weights.h5` file of that model,
rendered, and built with MkDocs. `--weights imagenet` is tested on our side only: Keras checks
the md5 of its cached file, so a stand-in file cannot pass as the real download; only Keras'
download (`keras.src.utils.file_utils.get_file`, which `keras.applications.VGG16` calls) is
stubbed. The real download can only be verified on a machine with the internet.

The full model holds 528 MB of weights: it is built and saved once per module.
"""

import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import h5py
import keras
import numpy as np
import pytest
from cli_support import build
from PIL import Image

from generator import cli
from generator import model as model_module
from generator import records
from generator.plan import CLASS_INPUT_SIZE, plan_layer
from generator.model import load_vgg16
from generator.quality import FLAT_STD
from generator.site import build_html
from generator.fileio import sha256_file

ROOT = Path(__file__).resolve().parents[1]
CLASS_NAME, CLASS_INDEX, CLASS_WNID = "water ouzel", 20, "n01601694"
CLASS_DIR = "vgg16/classes/20-water-ouzel"
FILTER_LAYER, FILTER_INDEX = "block1_conv2", 3
KERAS_GET_FILE = "keras.src.utils.file_utils.get_file"  # what keras.applications.VGG16 calls
CLOSED_PORT_URL = "http://127.0.0.1:9/vgg16_weights_tf_dim_ordering_tf_kernels.h5"  # refuses at once


@pytest.fixture(scope="module")
def full_model(embedded_vgg16):
    """keras.applications.VGG16 with its head (input 224 x 224): embedded conv weights, random head."""
    model = keras.applications.VGG16(weights=None, include_top=True)
    for layer in embedded_vgg16.model.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())
    return model


@pytest.fixture(scope="module")
def full_weights(full_model, tmp_path_factory):
    """`full_model` saved as a Keras 3 `.weights.h5` file (553 MB)."""
    path = tmp_path_factory.mktemp("weights") / "full.weights.h5"
    full_model.save_weights(path)
    return path


@pytest.fixture(scope="module")
def class_site(full_weights, tmp_path_factory):
    """The --out directory of one class and one filter drawn through the CLI, 2 steps, no saliency
    stage (batch size 1: the class batch would otherwise be padded to 8 images of 224 px)."""
    out = tmp_path_factory.mktemp("classes") / "site_src"
    result = build("--classes", CLASS_NAME, "--layers", FILTER_LAYER, "--filters", str(FILTER_INDEX),
                   "--weights", str(full_weights), "--steps", "2", "--batch-size", "1", "--no-examples",
                   "--no-progress", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_class_record_and_image(class_site, full_weights):
    unit = class_site / CLASS_DIR
    record = json.loads((unit / "unit.json").read_text())
    assert (record["kind"], record["layer"], record["index"]) == ("class", "predictions", CLASS_INDEX)
    assert (record["wnid"], record["label"], record["url"]) == (CLASS_WNID, CLASS_NAME, CLASS_DIR + "/")
    assert record["settings"]["objective"] == "class_logit" and record["settings"]["steps"] == 2 + 2  # + detail
    size = record["settings"]["size"]
    assert size + 2 * plan_layer("predictions").settings.transforms.pad == CLASS_INPUT_SIZE == 224
    # The detail phase: the head saw random 192 px views of a master twice as wide.
    assert record["settings"]["detail"] == {"size": 2 * size, "steps": 2, "view": size}
    assert record["provenance"]["weights_source"] == "path:full.weights.h5"
    assert record["provenance"]["weights_sha256"] == sha256_file(full_weights)
    assert record["results"]["flat"] is False and record["results"]["robustness"] is not None

    image = Image.open(unit / record["images"]["master"])
    assert image.format == "WEBP" and image.size == (2 * size, 2 * size)
    pixels = np.asarray(image.convert("RGB"), np.float32)
    assert pixels.std() > FLAT_STD
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100
    assert Image.open(unit / record["images"]["thumb"]).size == (96, 96)
    manifest = json.loads((class_site / "vgg16/manifest.json").read_text())
    assert manifest["weights"]["has_top"] is True
    assert manifest["layers"]["predictions"]["computed"] == 1
    assert [u["url"] for u in manifest["units"] if u["kind"] == "class"] == [CLASS_DIR + "/"]


class _Links(HTMLParser):
    """Collects the href of <a> and the src of <img> elements of one HTML page."""

    def __init__(self):
        super().__init__()
        self.hrefs, self.srcs = [], []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "a" and attributes.get("href"):
            self.hrefs.append(attributes["href"])
        if tag == "img" and attributes.get("src"):
            self.srcs.append(attributes["src"])


def _links(html_path):
    parser = _Links()
    parser.feed(html_path.read_text(encoding="utf-8"))
    return parser


def _served_file(site_dir, page, url):
    """The file of `site_dir` that `url`, linked from the HTML file `page`, resolves to."""
    base = "/" + page.relative_to(site_dir).as_posix()
    target = urljoin(base, url).split("#")[0].lstrip("/")
    path = site_dir / target
    return path / "index.html" if target.endswith("/") or path.is_dir() else path


def test_render_only_shows_the_class_image_and_mkdocs_links_it(class_site, tmp_path):
    out = tmp_path / "site_src"
    shutil.copytree(class_site, out)
    for page in (out / CLASS_DIR / "index.md", out / "vgg16/classes/index.md"):
        page.unlink()  # --render-only must write them again
    result = build("--render-only", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "classes_with_images=1" in result.stderr

    size = json.loads((out / CLASS_DIR / "unit.json").read_text())["settings"]["size"]
    class_page = (out / CLASS_DIR / "index.md").read_text()
    assert f'<img src="image.webp" width="{size}" height="{size}"' in class_page  # shown at half its side
    assert '<figure class="atlas-figure atlas-main atlas-detail">' in class_page
    assert f"({2 * size}&times;{2 * size} px, shown at {size} px; click to zoom)" in class_page
    assert "No class image has been computed yet" not in class_page
    index = (out / "vgg16/classes/index.md").read_text()
    items = [line for line in index.splitlines() if line.startswith("<li>")]
    assert len(items) == 1000  # one numbered list (start=0), each class once, in index order
    row = items[CLASS_INDEX]
    assert '<a href="20-water-ouzel/">' in row and '<img src="20-water-ouzel/thumb.webp"' in row
    assert f"{CLASS_NAME}</a>" in row
    assert "1 of them show a class image" in index
    assert "<img" not in items[CLASS_INDEX + 1]

    site = tmp_path / "site"
    build_html(out, site)
    index_html = site / "vgg16/classes/index.html"
    index_links = _links(index_html)
    assert any(_served_file(site, index_html, href) == site / CLASS_DIR / "index.html"
               for href in index_links.hrefs)
    thumbs = [src for src in index_links.srcs if "20-water-ouzel" in src]
    assert thumbs and all(_served_file(site, index_html, src).is_file() for src in thumbs)
    class_html = site / CLASS_DIR / "index.html"
    images = [src for src in _links(class_html).srcs if src.endswith("image.webp")]
    assert images and _served_file(site, class_html, images[0]) == site / CLASS_DIR / "image.webp"
    assert (site / CLASS_DIR / "image.webp").is_file()


def test_a_weights_file_with_the_head_also_draws_filters(class_site, full_weights):
    """Filters are drawn at their own sizes, not at the head's fixed 224 px input."""
    unit = class_site / f"vgg16/{FILTER_LAYER}/{FILTER_INDEX}"
    record = json.loads((unit / "unit.json").read_text())
    assert record["provenance"]["weights_sha256"] == sha256_file(full_weights)
    size = record["settings"]["size"]
    assert size == plan_layer(FILTER_LAYER).settings.size != 224
    side = records.master_side(record["settings"])  # twice the size: a detail phase
    assert side == 2 * size and Image.open(unit / "image.webp").size == (side, side)


# --------------------------------------------------------------------------------------------
# --weights imagenet: our side of Keras' download (only keras' get_file is stubbed)


@pytest.fixture(scope="module")
def keras_download(full_model, tmp_path_factory):
    """`full_model` in the legacy HDF5 layout of Keras' ImageNet file: what a download would give."""
    from keras.src.legacy.saving import legacy_h5_format  # private: Keras' own writer of that layout

    path = tmp_path_factory.mktemp("download") / model_module.IMAGENET_WEIGHTS_FILE
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, full_model)
    return path


@pytest.fixture
def keras_home(monkeypatch, tmp_path):
    """An empty Keras cache ($KERAS_HOME) for one test; Keras creates the folder when imported."""
    home = tmp_path / "keras"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def stub_keras_download(monkeypatch, calls, source=None, error=None):
    """Replace Keras' get_file: record each call's arguments in `calls`, then raise `error`, or
    place `source` where Keras caches the file ($KERAS_HOME/<cache_subdir>/<fname>) and return it."""

    def get_file(fname=None, origin=None, cache_subdir="datasets", file_hash=None, **kwargs):
        calls.append(dict(fname=fname, origin=origin, cache_subdir=cache_subdir, file_hash=file_hash, **kwargs))
        if error is not None:
            raise error
        target = Path(os.environ["KERAS_HOME"], cache_subdir, fname)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
        return str(target)

    monkeypatch.setattr(KERAS_GET_FILE, get_file)


def _assert_same_weights(model, reference, layer_names):
    for name in layer_names:
        for mine, theirs in zip(model.get_layer(name).get_weights(), reference.get_layer(name).get_weights()):
            np.testing.assert_array_equal(mine, theirs, err_msg=name)


def test_imagenet_download_and_cache_on_our_side(monkeypatch, keras_home, keras_download, full_model):
    """Cold cache: we probe, Keras downloads the file we name; we record its sha256. Cached: no probe."""
    calls = []
    stub_keras_download(monkeypatch, calls, source=keras_download)
    monkeypatch.setattr(model_module, "imagenet_download_problem", lambda: None)  # the server answers
    loaded = load_vgg16("imagenet")
    assert len(calls) == 1
    call = calls[0]
    assert (call["fname"], call["origin"], call["cache_subdir"]) == (
        model_module.IMAGENET_WEIGHTS_FILE, model_module.IMAGENET_WEIGHTS_URL, "models")
    assert re.fullmatch(r"[0-9a-f]{32}", call["file_hash"])  # Keras checks the download's md5
    cached = keras_home / "models" / model_module.IMAGENET_WEIGHTS_FILE
    assert model_module.keras_imagenet_cache_file() == cached and cached.is_file()
    assert (loaded.source, loaded.has_top, loaded.sha256) == ("imagenet", True, sha256_file(keras_download))
    assert loaded.model.input_shape == (None, 224, 224, 3) and loaded.model.output_shape == (None, 1000)
    _assert_same_weights(loaded.model, full_model, ["block1_conv1", "block5_conv3", "fc1", "predictions"])

    monkeypatch.setattr(model_module, "imagenet_download_problem", lambda: pytest.fail("probed with the file cached"))
    base = load_vgg16("imagenet", include_top=False)
    assert len(calls) == 2 and calls[1] == call  # Keras verifies the cached file again
    assert (base.source, base.has_top, base.sha256) == ("imagenet", False, loaded.sha256)
    assert base.model.input_shape == (None, None, None, 3)
    _assert_same_weights(base.model, full_model, ["block1_conv1", "block5_conv3"])


CORRUPT = ValueError("Incomplete or corrupted file detected. The md5 file hash does not match the provided value "
                     "of 64373286793e3c8b2b4e3219cbf3544b.")
FETCH_FAILED = Exception("URL fetch failure on https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
                         "vgg16_weights_tf_dim_ordering_tf_kernels.h5: 403 -- Forbidden\n")


@pytest.mark.parametrize(
    "state, error, expected",
    [
        ("offline", None, "error: cannot download the ImageNet weights (no connection to the Keras weights server: "),
        ("online", FETCH_FAILED, "error: cannot load the ImageNet weights (URL fetch failure on https://"),
        ("cached", CORRUPT, "error: cannot load the ImageNet weights (Incomplete or corrupted file detected."),
    ],
    ids=["offline", "download-fails", "md5-mismatch"],
)
def test_imagenet_failure_is_one_line_and_exit_2_through_the_cli(monkeypatch, capsys, keras_home, tmp_path,
                                                                 state, error, expected):
    """offline: our probe of the weights URL (here a closed loopback port) fails before Keras is called;
    online (probe answered, as this machine has no internet): Keras' download fails; cached: a damaged
    file in Keras' cache, whose md5 Keras finds wrong (it re-downloads, and the new file is wrong too)."""
    if state == "offline":
        monkeypatch.setattr(model_module, "IMAGENET_WEIGHTS_URL", CLOSED_PORT_URL)
    elif state == "online":
        monkeypatch.setattr(model_module, "imagenet_download_problem", lambda: None)
    else:
        cache_file = model_module.keras_imagenet_cache_file()
        cache_file.parent.mkdir(parents=True)
        cache_file.write_bytes(b"damaged")
        monkeypatch.setattr(model_module, "imagenet_download_problem", lambda: pytest.fail("probed, file cached"))
    calls = []
    stub_keras_download(monkeypatch, calls, error=error or AssertionError("downloaded despite the probe"))
    out = tmp_path / "site_src"
    code = cli.main(["--classes", CLASS_NAME, "--weights", "imagenet", "--steps", "2",
                                      "--no-examples", "--no-progress", "--out", str(out)])
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    assert len(stderr.splitlines()) == 1 and stderr.startswith(expected), stderr
    assert stderr.rstrip().endswith("use --weights embedded (offline conv base) or --weights PATH (a Keras weights file)")
    assert len(calls) == (0 if state == "offline" else 1)
    assert not (out / "vgg16").exists()

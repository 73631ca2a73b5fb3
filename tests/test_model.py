"""load_vgg16 sources (embedded, PATH, imagenet, auto), their errors, and preprocess."""

from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from generator import model as model_module
from generator import weights
from generator.errors import UserError
from generator.model import build_vgg16, load_vgg16, preprocess

CLOSED_PORT_URL = "http://127.0.0.1:9/vgg16_weights_tf_dim_ordering_tf_kernels.h5"


def _assert_same_conv_weights(a: keras.Model, b: keras.Model) -> None:
    for layer in a.layers:
        if layer.name.startswith("block") and layer.weights:
            for mine, theirs in zip(layer.get_weights(), b.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(mine, theirs, err_msg=layer.name)


def _write_legacy_h5(model: keras.Model, path: Path) -> None:
    """Write `model`'s weights in the legacy Keras 2 HDF5 layout (that of the Keras ImageNet files)."""
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        for layer in model.layers:
            group = handle.create_group(layer.name)
            names = [f"{layer.name}/{variable.name}:0".encode() for variable in layer.weights]
            group.attrs["weight_names"] = names
            for name, value in zip(names, layer.get_weights()):
                group.create_dataset(name.decode(), data=value)


@pytest.fixture
def offline_imagenet(monkeypatch, tmp_path):
    """No cached Keras ImageNet file, and a download URL that refuses connections (loopback)."""
    monkeypatch.setattr(model_module, "keras_imagenet_cache_file", lambda: tmp_path / "missing.h5")
    monkeypatch.setattr(model_module, "IMAGENET_WEIGHTS_URL", CLOSED_PORT_URL)


def test_embedded_source_is_a_conv_base_of_any_size(embedded_vgg16):
    assert embedded_vgg16.source == "embedded"
    assert embedded_vgg16.sha256 == weights.ONNX_SHA256
    assert embedded_vgg16.has_top is False
    model = embedded_vgg16.model
    assert model.input_shape == (None, None, None, 3)
    assert model(np.zeros((1, 64, 64, 3), np.float32)).shape == (1, 2, 2, 512)
    assert model(np.zeros((2, 100, 37, 3), np.float32)).shape == (2, 3, 1, 512)


def test_embedded_cannot_give_the_imagenet_head():
    with pytest.raises(UserError, match="embedded weights have no ImageNet head"):
        load_vgg16("embedded", include_top=True)


def test_embedded_cache_hit_neither_downloads_nor_converts(embedded_vgg16, monkeypatch):
    """With the converted file cached, loading reads it: no pip, no ONNX parsing, no rewrite."""
    cached = weights.embedded_weights().path
    written = cached.stat().st_mtime_ns
    for step in ("fetch_wheel", "read_onnx_from_wheel", "conv_weights_from_onnx", "save_keras_weights"):
        monkeypatch.setattr(weights, step, lambda *args, _step=step: pytest.fail(f"cache hit called {_step}"))
    monkeypatch.setattr(weights.subprocess, "run", lambda *args, **kwargs: pytest.fail("cache hit ran pip"))
    loaded = load_vgg16("embedded")
    _assert_same_conv_weights(embedded_vgg16.model, loaded.model)
    assert cached.stat().st_mtime_ns == written


def test_path_round_trips_a_keras_weights_file(embedded_vgg16, tmp_path):
    path = tmp_path / "mine.weights.h5"
    embedded_vgg16.model.save_weights(path)
    loaded = load_vgg16(str(path))
    assert (loaded.source, loaded.has_top) == ("path:mine.weights.h5", False)
    assert loaded.sha256 == weights.sha256_file(path)
    assert loaded.model.input_shape == (None, None, None, 3)
    _assert_same_conv_weights(embedded_vgg16.model, loaded.model)


def test_path_reads_a_legacy_h5_file(embedded_vgg16, tmp_path):
    path = tmp_path / "legacy_notop.h5"
    _write_legacy_h5(embedded_vgg16.model, path)
    loaded = load_vgg16(str(path))
    assert (loaded.source, loaded.has_top) == ("path:legacy_notop.h5", False)
    _assert_same_conv_weights(embedded_vgg16.model, loaded.model)


def test_path_without_head_refuses_include_top(embedded_vgg16, tmp_path):
    path = tmp_path / "notop.weights.h5"
    embedded_vgg16.model.save_weights(path)
    with pytest.raises(UserError, match="has no ImageNet head"):
        load_vgg16(str(path), include_top=True)


@pytest.mark.slow
def test_path_with_head_keeps_it_or_gives_the_conv_base(tmp_path):
    """A full-model file (553 MB) loads with its head, or as a conv base of any size."""
    full = build_vgg16(include_top=True)
    path = tmp_path / "full.weights.h5"
    full.save_weights(path)
    loaded = load_vgg16(str(path))
    assert loaded.has_top and loaded.model.output_shape == (None, 1000)
    np.testing.assert_array_equal(
        loaded.model.get_layer("predictions").get_weights()[0], full.get_layer("predictions").get_weights()[0]
    )
    base = load_vgg16(str(path), include_top=False)
    assert not base.has_top and base.model.input_shape == (None, None, None, 3)
    _assert_same_conv_weights(full, base.model)


def test_corrupt_files_give_user_errors(embedded_vgg16, tmp_path):
    garbage = tmp_path / "garbage.weights.h5"
    garbage.write_bytes(b"this is not HDF5 " * 100)
    with pytest.raises(UserError, match="is not a Keras .weights.h5 or .h5 .HDF5. file, or is corrupt"):
        load_vgg16(str(garbage))

    truncated = tmp_path / "truncated.weights.h5"
    good = weights.embedded_weights().path.read_bytes()
    truncated.write_bytes(good[: len(good) // 3])
    with pytest.raises(UserError) as error:
        load_vgg16(str(truncated))
    assert "truncated.weights.h5" in str(error.value) and "\n" not in str(error.value)

    with pytest.raises(UserError, match="does not exist"):
        load_vgg16(str(tmp_path / "missing.weights.h5"))

    text = tmp_path / "weights.txt"
    text.write_text("hello")
    with pytest.raises(UserError, match="not a Keras"):
        load_vgg16(str(text))


def test_file_of_another_architecture_is_refused(tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "tiny.weights.h5"
    other.save_weights(path)
    with pytest.raises(UserError, match="fits neither VGG16 with nor without its ImageNet head"):
        load_vgg16(str(path))


def test_imagenet_without_network_fails_fast_with_alternatives(offline_imagenet, monkeypatch):
    """One bounded probe (a HEAD request with PROBE_TIMEOUT_SECONDS), and Keras' download, which
    could hang, is never started."""
    probes = []
    real_urlopen = model_module.urllib.request.urlopen

    def recording_urlopen(request, timeout):
        probes.append((request.get_method(), request.full_url, timeout))
        return real_urlopen(request, timeout=timeout)

    monkeypatch.setattr(model_module.urllib.request, "urlopen", recording_urlopen)
    monkeypatch.setattr(keras.applications, "VGG16", lambda **kwargs: pytest.fail("started Keras' download"))
    with pytest.raises(UserError) as error:
        load_vgg16("imagenet")
    assert probes == [("HEAD", CLOSED_PORT_URL, model_module.PROBE_TIMEOUT_SECONDS)]
    assert 0 < model_module.PROBE_TIMEOUT_SECONDS <= 10
    message = str(error.value)
    assert message.startswith("cannot download the ImageNet weights")
    assert "--weights embedded" in message and "--weights PATH" in message and "\n" not in message


def test_imagenet_download_failure_inside_keras_is_a_user_error(monkeypatch, tmp_path):
    monkeypatch.setattr(model_module, "keras_imagenet_cache_file", lambda: tmp_path / "missing.h5")
    monkeypatch.setattr(model_module, "imagenet_download_problem", lambda: None)

    def failing_vgg16(**kwargs):
        raise Exception("URL fetch failure on https://example.invalid/vgg16.h5: None --\n timed out")

    monkeypatch.setattr(keras.applications, "VGG16", failing_vgg16)
    with pytest.raises(UserError, match=r"cannot load the ImageNet weights \(URL fetch failure .* timed out\); use"):
        load_vgg16("imagenet")


def test_imagenet_from_keras_cache_needs_no_network(monkeypatch, tmp_path):
    """With Keras' file cached, no probe is made; its checksum is the provenance."""
    cache_file = tmp_path / model_module.IMAGENET_WEIGHTS_FILE
    cache_file.write_bytes(b"stand-in for the cached Keras weights")
    monkeypatch.setattr(model_module, "keras_imagenet_cache_file", lambda: cache_file)
    monkeypatch.setattr(model_module, "imagenet_download_problem", lambda: pytest.fail("probed the network"))
    real_vgg16 = keras.applications.VGG16

    def vgg16(include_top=True, weights="imagenet", **kwargs):
        return real_vgg16(include_top=include_top, weights=None, **kwargs)  # no download here

    monkeypatch.setattr(keras.applications, "VGG16", vgg16)
    full = load_vgg16("imagenet")
    assert (full.source, full.has_top, full.sha256) == ("imagenet", True, weights.sha256_file(cache_file))
    assert full.model.input_shape == (None, 224, 224, 3) and full.model.output_shape == (None, 1000)
    base = load_vgg16("imagenet", include_top=False)
    assert not base.has_top and base.model.input_shape == (None, None, None, 3)
    assert base.model.get_layer("block1_conv1").get_weights()[0].shape == (3, 3, 3, 64)


def test_auto_falls_back_to_embedded_with_one_line(offline_imagenet, embedded_vgg16):
    lines = []
    loaded = load_vgg16("auto", log=lines.append)
    assert loaded.source == "embedded" and not loaded.has_top
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "cannot download the ImageNet weights" in lines[0] and "embedded" in lines[0]


def test_auto_with_required_head_does_not_fall_back(offline_imagenet):
    lines = []
    with pytest.raises(UserError, match="cannot download the ImageNet weights"):
        load_vgg16("auto", include_top=True, log=lines.append)
    assert lines == []


def test_keras_cache_location_matches_keras():
    from keras.src.backend.config import keras_home  # private: only to check our mirror of it

    expected = Path(keras_home()).expanduser() / "models" / model_module.IMAGENET_WEIGHTS_FILE
    assert model_module.keras_imagenet_cache_file() == expected


def test_preprocess_matches_keras_preprocess_input():
    rng = np.random.default_rng(1)
    batch = rng.uniform(0, 255, size=(2, 5, 7, 3)).astype(np.float32)
    expected = keras.applications.vgg16.preprocess_input(batch.copy())
    np.testing.assert_allclose(preprocess(batch).numpy(), expected, atol=1e-4)

    single = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    expected_single = keras.applications.vgg16.preprocess_input(single.astype(np.float32))
    np.testing.assert_allclose(preprocess(single).numpy(), expected_single, atol=1e-4)
    # Known answer: a pure red pixel becomes BGR (0 - 103.939, 0 - 116.779, 255 - 123.68).
    red = preprocess(np.array([[[255, 0, 0]]], np.float32)).numpy()[0, 0]
    np.testing.assert_allclose(red, [-103.939, -116.779, 131.32], atol=1e-4)


def test_preprocess_is_differentiable_inside_tf_function():
    images = tf.Variable(np.full((1, 3, 3, 3), 128.0, np.float32))
    channel_weights = tf.constant([1.0, 2.0, 3.0])

    @tf.function
    def gradient():
        with tf.GradientTape() as tape:
            score = tf.reduce_sum(preprocess(images) * channel_weights)
        return tape.gradient(score, images)

    # d/d(RGB) of sum(w * BGR) is w reversed: R gets 3, G 2, B 1.
    np.testing.assert_allclose(gradient().numpy()[0, 0, 0], [3.0, 2.0, 1.0])

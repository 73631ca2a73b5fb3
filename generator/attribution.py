"""Saliency maps: which pixels of a photo drive one target of a Keras CNN.

A target is either a conv filter's mean activation (`Target("block4_conv2", 17)`, the spatial
mean of the layer's post-ReLU output in channel 17) or a class score (`Target("predictions",
281)`: the pre-softmax logit for gradient methods, the softmax probability for Score-CAM, as in
the papers). `Attributor.maps` returns non-negative float32 maps, larger = more important:

| method | map | resolution |
|---|---|---|
| vanilla | max over channels of abs(dS/dx) (Simonyan et al. 2013) | input |
| smoothgrad | max over channels of abs(mean of dS/dx over noisy copies of x) (Smilkov et al. 2017) | input |
| guided_backprop | max over channels of abs(guided dS/dx) (Springenberg et al. 2014) | input |
| gradcam | ReLU(sum_k mean(dS/dA_k) A_k) (Selvaraju et al. 2017) | CAM layer |
| gradcam_plus_plus | ReLU(sum_k w_k A_k), w_k from higher-order terms (Chattopadhay et al. 2018) | CAM layer |
| scorecam | ReLU(sum_k (S(x*mask_k) - S(0)) A_k) (Wang et al. 2020) | CAM layer |
| integrated_gradients | abs(sum over channels of (x - b) * mean_path(dS/dx)), black b (Sundararajan et al. 2017) | input |

CAM layer: the last conv layer for class targets (VGG16: block5_conv3, 14x14 at 224 px); for a
filter, the conv layer just before the filter's own (a filter in the first conv layer has no CAM
maps). Everything is computed in the model's input space (after `preprocess`). For VGG16's caffe
preprocessing (RGB->BGR flip and mean subtraction, unit scale) every map here equals the map
taken w.r.t. the RGB pixels 0..255, and Score-CAM's masked-out value 0 is the ImageNet mean colour.

Why native code rather than tf-keras-vis 0.8.7 (which does run on Keras 3.15 / TF 2.21 here):
- one compiled (tf.function) forward/backward per target layer serves several methods: vanilla
  and all SmoothGrad samples go through as one batch (tf-keras-vis loops over the samples one
  eager call at a time); Grad-CAM and Grad-CAM++ share one backward pass (tf-keras-vis needs two);
- tf-keras-vis' Score-CAM scores every masked input by softmax(model output): wrong for a filter
  target and a double softmax on a probability head;
- tf-keras-vis' Grad-CAM++ multiplies the gradients by exp(score), which overflows float32 to
  inf/NaN once the score passes ~88, as filter means do. exp(score) is one positive factor per
  image: it cancels in the alphas and only scales the map, so it is left out here.
Guided backprop uses tf-keras-vis' `GuidedBackpropagation` model modifier on a clone of the model.
The test suite checks vanilla, guided, Grad-CAM and Grad-CAM++ against tf-keras-vis.

Each method is a value of `SALIENCY_METHODS` (name, title, function), chosen by name; the names
and titles live in `generator.saliency_methods`, importable without TensorFlow. A method's
function takes a `_Pass` (one image, one target) and returns its map; the passes several methods
share (the batch of the image and its SmoothGrad copies, the Grad-CAM backward pass) run once per
`_Pass`, when a first method asks for them. A new method: a row in `saliency_methods.METHOD_TITLES`,
a function below and its `_method(...)` line in `SALIENCY_METHODS`.
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from .architecture import CLASS_LAYER
from .saliency_methods import METHOD_TITLES, AttributionSettings, check_methods
from .targets import check_target, class_head, conv_layers, image_spec


def _cam_layer(model, target):
    """The conv layer whose activations the CAM methods weight, or None (first conv layer)."""
    convs = conv_layers(model)
    if target.is_class:
        return convs[-1]
    position = [layer.name for layer in convs].index(target.layer)
    return convs[position - 1] if position > 0 else None


def _guided_copy(model):
    """A clone of `model` (same weights) whose ReLU activations back-propagate only positive
    gradients into positive inputs, via tf-keras-vis' GuidedBackpropagation modifier."""
    from tf_keras_vis.utils.model_modifiers import GuidedBackpropagation

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    GuidedBackpropagation()(copy)
    return copy


class _Probe:
    """Compiled functions of one target layer (a conv layer, or the class head).

    All take x: float32 (B, H, W, C) in model-input space and index: int32 scalar, and return
    per-image scores S (B,): the filter's spatial mean activation or the class logit. Each is
    traced once (any batch size and image size), whatever the target index.
    """

    def __init__(self, model, target_layer, cam_layer):
        head = class_head(model) if target_layer == CLASS_LAYER else None
        outputs = {"target": head.input if head is not None else model.get_layer(target_layer).output}
        if cam_layer is not None:
            outputs["features"] = model.get_layer(cam_layer.name).output
        self.has_features = cam_layer is not None
        self._model = keras.Model(model.inputs, outputs)
        self._head = head
        images, index = image_spec(model), tf.TensorSpec([], tf.int32)
        # functools.partial gives each probe its own key in TF's frequent-retracing detector,
        # which otherwise counts the one trace of every probe as retracing of one method.
        compile_ = lambda method, *spec: tf.function(functools.partial(method), input_signature=spec)  # noqa: E731
        self.input_gradients = compile_(self._input_gradients, images, index)
        self.feature_gradients = compile_(self._feature_gradients, images, index)
        self.forward = compile_(self._forward, images, index)
        self.features = compile_(self._features, images)

    def _score(self, target_output, index, probability=False):
        if self._head is None:
            return tf.reduce_mean(tf.gather(target_output, index, axis=-1), axis=[1, 2])
        logits = keras.ops.matmul(target_output, self._head.kernel) + self._head.bias
        if probability:
            logits = tf.nn.softmax(logits, axis=-1)
        return tf.gather(logits, index, axis=-1)

    def _input_gradients(self, x, index):
        """-> (S (B,), dS/dx (B, H, W, C))."""
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = self._score(self._model(x)["target"], index)
        return score, tape.gradient(score, x)

    def _feature_gradients(self, x, index):
        """-> (S (B,), A (B, h, w, K) CAM-layer activations, dS/dA (B, h, w, K))."""
        with tf.GradientTape() as tape:
            outputs = self._model(x)
            features = outputs["features"]
            score = self._score(outputs["target"], index)
        return score, features, tape.gradient(score, features)

    def _forward(self, x, index):
        """-> (S (B,), Score-CAM score (B,): the class probability, or S for a filter)."""
        target = self._model(x)["target"]
        return self._score(target, index), self._score(target, index, probability=True)

    def _features(self, x):
        """-> CAM-layer activations A (B, h, w, K)."""
        return self._model(x)["features"]


class _Pass:
    """One image and one target, as the methods' functions see them.

    Attributes:
        x: float32 tensor (1, H, W, C), the image in model-input space.
        target: the Target; index: its index as an int32 scalar tensor.
        probe: the _Probe of the target's layer.
        settings: AttributionSettings.
        diagnostics: {"score": S(x)}; a method may add its own figures.
    """

    def __init__(self, attributor, rgb, target, seed, noisy_copies):
        self.attributor = attributor
        self.settings = attributor.settings
        self.x = attributor.model_input(rgb)
        self.target = target
        self.index = tf.constant(target.index, dtype=tf.int32)
        self.probe = attributor.probe(target)
        self.seed = seed
        self.noisy_copies = noisy_copies
        self.diagnostics = {"score": float(self.probe.forward(self.x, self.index)[0][0])}

    def batched(self, function, inputs):
        """Run `function(chunk, index)` over (N, ...) inputs in chunks of the batch size; concatenate each output."""
        size = self.settings.batch_size
        chunks = [function(inputs[start:start + size], self.index) for start in range(0, len(inputs), size)]
        return [np.concatenate([np.asarray(chunk[i]) for chunk in chunks]) for i in range(len(chunks[0]))]

    @functools.cached_property
    def input_gradients(self):
        """dS/dx, float32 (1 + noisy_copies, H, W, C): row 0 for x, the others for x plus Gaussian
        noise (SmoothGrad; seeded), all from one batched pass."""
        image = np.asarray(self.x)
        sigma = self.settings.smoothgrad_noise * float(image.max() - image.min())
        noise = np.random.default_rng(self.seed).normal(0.0, sigma, size=(self.noisy_copies,) + image.shape[1:])
        batch = np.concatenate([image, (image + noise).astype(np.float32)])
        return self.batched(self.probe.input_gradients, tf.constant(batch))[1]

    @functools.cached_property
    def cam_gradients(self):
        """(A, dS/dA): float64 (h, w, K) CAM-layer activations and their gradients, one backward pass."""
        _, features, gradients = self.probe.feature_gradients(self.x, self.index)
        return np.asarray(features[0], np.float64), np.asarray(gradients[0], np.float64)


@dataclass(frozen=True)
class SaliencyMethod:
    """One saliency method.

    Attributes:
        name: as records and `--methods` name it, e.g. "gradcam".
        title: as the pages name it, e.g. "Grad-CAM" (saliency_methods.METHOD_TITLES).
        compute: _Pass -> float map >= 0, (H, W) or CAM-layer (h, w).
        needs_cam_layer: the map weights a CAM layer's channels (absent for a first-layer filter).
        uses_noisy_copies: reads rows 1.. of `_Pass.input_gradients` (the pass then holds them).
    """

    name: str
    title: str
    compute: Callable
    needs_cam_layer: bool = False
    uses_noisy_copies: bool = False


def _vanilla(run):
    return np.max(np.abs(run.input_gradients[0]), axis=-1)


def _smoothgrad(run):
    # Signed gradients are averaged before the absolute value, as in the authors' code:
    # gradients that noise switches on with random signs cancel, consistent ones add up.
    return np.max(np.abs(run.input_gradients[1:].mean(axis=0)), axis=-1)


def _guided_backprop(run):
    _, gradient = run.attributor.probe(run.target, guided=True).input_gradients(run.x, run.index)
    return np.max(np.abs(gradient[0]), axis=-1)


def _gradcam(run):
    activations, gradients = run.cam_gradients
    return np.maximum(activations @ gradients.mean(axis=(0, 1)), 0.0)


def _gradcam_plus_plus(run):
    # Grad-CAM++ alphas (paper eq. 19 with exp(S) cancelled), normalised per channel over
    # space as in the authors' reference implementation.
    activations, g = run.cam_gradients
    g2, g3 = g**2, g**3
    denominator = 2.0 * g2 + activations.sum(axis=(0, 1)) * g3
    alphas = np.divide(g2, denominator, out=np.zeros_like(g2), where=denominator != 0.0)
    totals = alphas.sum(axis=(0, 1))
    alphas /= np.where(totals != 0.0, totals, 1.0)
    weights = (alphas * np.maximum(g, 0.0)).sum(axis=(0, 1))
    return np.maximum(activations @ weights, 0.0)


def _scorecam(run):
    """Weight each CAM channel by the score gain of the image masked with it."""
    x = run.x
    activations = np.asarray(run.probe.features(x)[0])
    spread = activations.std(axis=(0, 1))
    channels = [k for k in np.argsort(-spread, kind="stable")[: run.settings.scorecam_max_channels] if spread[k] > 0]
    if not channels:
        return np.zeros(activations.shape[:2], np.float32)
    selected = activations[:, :, channels]
    masks = np.asarray(tf.image.resize(selected[None], x.shape[1:3], method="bilinear")[0])
    low, high = masks.min(axis=(0, 1)), masks.max(axis=(0, 1))
    masks = (masks - low) / np.where(high > low, high - low, 1.0)
    masked = np.asarray(x) * np.moveaxis(masks, -1, 0)[..., None]
    inputs = np.concatenate([np.zeros_like(np.asarray(x)), masked]).astype(np.float32)
    scores, probabilities = run.batched(run.probe.forward, tf.constant(inputs))
    gains = (probabilities if run.target.is_class else scores).astype(np.float64)
    weights = gains[1:] - gains[0]
    return np.maximum(selected.astype(np.float64) @ weights, 0.0)


def _integrated_gradients(run):
    """IG from the black image; adds the diagnostic "integrated_gradients_completeness"."""
    image = np.asarray(run.x)
    baseline = np.asarray(run.attributor.model_input(np.zeros(image.shape[1:3] + (3,), np.float32)))
    steps = run.settings.integrated_gradients_steps
    alphas = ((np.arange(steps) + 0.5) / steps).astype(np.float32)[:, None, None, None]
    path = (baseline + alphas * (image - baseline)).astype(np.float32)
    _, gradients = run.batched(run.probe.input_gradients, tf.constant(path))
    attributions = (image[0] - baseline[0]) * gradients.mean(axis=0)
    end_scores = run.probe.forward(tf.constant(np.concatenate([image, baseline])), run.index)[0]
    difference = float(end_scores[0] - end_scores[1])
    run.diagnostics["integrated_gradients_completeness"] = (
        float(attributions.sum()) / difference if difference != 0.0 else None
    )
    return np.abs(attributions.sum(axis=-1))


def _method(name, compute, **flags):
    return SaliencyMethod(name, METHOD_TITLES[name], compute, **flags)


SALIENCY_METHODS = {method.name: method for method in (
    _method("vanilla", _vanilla),
    _method("smoothgrad", _smoothgrad, uses_noisy_copies=True),
    _method("guided_backprop", _guided_backprop),
    _method("gradcam", _gradcam, needs_cam_layer=True),
    _method("gradcam_plus_plus", _gradcam_plus_plus, needs_cam_layer=True),
    _method("scorecam", _scorecam, needs_cam_layer=True),
    _method("integrated_gradients", _integrated_gradients),
)}


class Attributor:
    """Saliency maps for one model; probes are built once per target layer and reused.

    Args:
        model: a Keras CNN (VGG16 conv base or full VGG16, or any Conv2D/ReLU model) taking
            float32 (B, H, W, C) preprocessed images.
        preprocess: maps RGB float32 (B, H, W, 3) in 0..255 to the model's input.
        settings: AttributionSettings.
    """

    def __init__(self, model, preprocess, settings=AttributionSettings()):
        self.model = model
        self.preprocess = preprocess
        self.settings = settings
        self._probes = {}
        self._guided_model = None
        self._conv_outputs = None

    def probe(self, target, guided=False):
        """The _Probe of the target's layer, on the guided-backprop copy of the model if `guided`."""
        key = (target.layer, guided)
        if key not in self._probes:
            model = self.model
            if guided:
                if self._guided_model is None:
                    self._guided_model = _guided_copy(self.model)
                model = self._guided_model
            self._probes[key] = _Probe(model, target.layer, _cam_layer(self.model, target))
        return self._probes[key]

    def model_input(self, rgb):
        """uint8 or float RGB (H, W, 3) in 0..255 -> float32 tensor (1, H, W, C) for the model."""
        batch = tf.constant(np.asarray(rgb, dtype=np.float32)[None])
        return tf.convert_to_tensor(self.preprocess(batch), dtype=tf.float32)

    def maps(self, rgb, target, methods, seed=0):
        """Compute saliency maps of one image for one target.

        Args:
            rgb: uint8 (H, W, 3) RGB photo, already at the model's input size.
            target: Target.
            methods: names of SALIENCY_METHODS (saliency_methods.METHOD_NAMES).
            seed: seeds SmoothGrad's noise (same seed, same map).
        Returns:
            ({method: float32 map >= 0, (H, W) or CAM-layer (h, w)}, diagnostics dict), methods
            in METHOD_NAMES order. CAM methods are absent when the target has no CAM layer (a
            first-layer filter). Diagnostics: "score" (S of the image) and, with
            integrated_gradients, "integrated_gradients_completeness" = sum(attributions) /
            (S(x) - S(black)), 1 ideally (None when S(x) = S(black): the ratio is undefined, and
            JSON has no NaN).
        """
        check_methods(methods)
        check_target(self.model, target)
        chosen = [method for method in SALIENCY_METHODS.values() if method.name in set(methods)]
        noisy_copies = self.settings.smoothgrad_samples if any(m.uses_noisy_copies for m in chosen) else 0
        run = _Pass(self, rgb, target, seed, noisy_copies)
        results = {
            method.name: np.asarray(method.compute(run), dtype=np.float32)
            for method in chosen
            if run.probe.has_features or not method.needs_cam_layer
        }
        return results, run.diagnostics

    def activation_maps(self, rgb, targets):
        """Filters' post-ReLU activations over the image, from one forward pass.

        Args:
            rgb: uint8 (H, W, 3) RGB photo at the model's input size.
            targets: filter Targets.
        Returns:
            {target: float32 (h, w)} at each filter's layer resolution (VGG16 at 224 px:
            224 for block1 down to 14 for block5).
        """
        for target in targets:
            check_target(self.model, target)
        if self._conv_outputs is None:
            all_convs = keras.Model(self.model.inputs, {layer.name: layer.output for layer in conv_layers(self.model)})
            self._conv_outputs = tf.function(all_convs, input_signature=[image_spec(self.model)])
        outputs = self._conv_outputs(self.model_input(rgb))
        return {t: np.asarray(outputs[t.layer][0, :, :, t.index], dtype=np.float32) for t in targets}

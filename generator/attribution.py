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
"""

import functools
from dataclasses import asdict, dataclass

import keras
import numpy as np
import tensorflow as tf

from generator.architecture import CLASS_LAYER
from generator.errors import UserError

METHODS = (
    "vanilla",
    "smoothgrad",
    "guided_backprop",
    "gradcam",
    "gradcam_plus_plus",
    "scorecam",
    "integrated_gradients",
)
CAM_METHODS = ("gradcam", "gradcam_plus_plus", "scorecam")


@dataclass(frozen=True)
class AttributionSettings:
    """Knobs of the costly methods; all of them go into the example records.

    Attributes:
        smoothgrad_samples: noisy copies of the image averaged by SmoothGrad.
        smoothgrad_noise: noise standard deviation as a fraction of the image's value range
            (max - min over all pixels and channels); the paper recommends 0.10-0.20.
        integrated_gradients_steps: points on the straight path from black to the image
            (midpoint Riemann sum).
        scorecam_max_channels: Score-CAM masks the image with at most this many CAM-layer
            channels, those whose activation varies most over the image ("Faster Score-CAM").
        batch_size: images per forward/backward pass; 9 puts the image and its 8 SmoothGrad
            samples in one pass (on this 2-core CPU, measured 0.6 s per VGG16 sample batched
            against 0.8 s one at a time).

    Defaults are sized for the CPU preview: about 12 s per photo for all seven methods on a
    VGG16 target at 224 px (bench/bench_attribution.py).
    """

    smoothgrad_samples: int = 8
    smoothgrad_noise: float = 0.15
    integrated_gradients_steps: int = 16
    scorecam_max_channels: int = 16
    batch_size: int = 9

    def as_record(self):
        """The settings as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Target:
    """What a map explains: a conv filter (layer, index) or a class ("predictions", index)."""

    layer: str
    index: int

    @property
    def is_class(self):
        return self.layer == CLASS_LAYER


def conv_layers(model):
    """The model's Conv2D layers in order (VGG16: the 13 layers of architecture.CONV_LAYERS)."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def class_head(model):
    """The final Dense layer (the class scores), or None for a conv-only model."""
    last = model.layers[-1]
    return last if isinstance(last, keras.layers.Dense) else None


def check_target(model, target):
    """Raise UserError unless `target` names a filter or class that `model` has."""
    if target.is_class:
        head = class_head(model)
        if head is None:
            raise UserError(
                f"class {target.index} needs a model with its ImageNet classification head; "
                "the embedded weights are conv-only: drop the classes or use --weights imagenet"
            )
        count = head.units
    else:
        layers = {layer.name: layer for layer in conv_layers(model)}
        if target.layer not in layers:
            raise UserError(f"unknown conv layer {target.layer!r}; choose one of {', '.join(layers)}")
        count = layers[target.layer].filters
    if not 0 <= target.index < count:
        raise UserError(f"{target.layer} has {count} units (0..{count - 1}); {target.index} is out of range")


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


def _image_spec(model):
    """TensorSpec of a batch of model inputs: any batch size, the model's own image shape."""
    return tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32)


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
        images, index = _image_spec(model), tf.TensorSpec([], tf.int32)
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

    def _probe(self, target, guided=False):
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

    def _in_batches(self, function, inputs, index):
        """Run `function(chunk, index)` over (N, ...) inputs in chunks; concatenate each output."""
        size = self.settings.batch_size
        chunks = [function(inputs[start:start + size], index) for start in range(0, len(inputs), size)]
        return [np.concatenate([np.asarray(chunk[i]) for chunk in chunks]) for i in range(len(chunks[0]))]

    def maps(self, rgb, target, methods, seed=0):
        """Compute saliency maps of one image for one target.

        Args:
            rgb: uint8 (H, W, 3) RGB photo, already at the model's input size.
            target: Target.
            methods: names from METHODS.
            seed: seeds SmoothGrad's noise (same seed, same map).
        Returns:
            ({method: float32 map >= 0, (H, W) or CAM-layer (h, w)}, diagnostics dict). CAM
            methods are absent when the target has no CAM layer (a first-layer filter).
            Diagnostics: "score" (S of the image) and, with integrated_gradients,
            "integrated_gradients_completeness" = sum(attributions) / (S(x) - S(black)), 1 ideally
            (None when S(x) = S(black): the ratio is undefined, and JSON has no NaN).
        """
        unknown = sorted(set(methods) - set(METHODS))
        if unknown:
            raise UserError(f"unknown saliency method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
        check_target(self.model, target)
        x = self.model_input(rgb)
        index = tf.constant(target.index, dtype=tf.int32)
        probe = self._probe(target)
        results = {}
        diagnostics = {"score": float(probe.forward(x, index)[0][0])}
        if "vanilla" in methods or "smoothgrad" in methods:
            results.update(self._gradient_maps(probe, x, index, methods, seed))
        if "guided_backprop" in methods:
            _, gradient = self._probe(target, guided=True).input_gradients(x, index)
            results["guided_backprop"] = np.max(np.abs(gradient[0]), axis=-1)
        if probe.has_features and ("gradcam" in methods or "gradcam_plus_plus" in methods):
            cams = self._gradient_cams(probe, x, index)
            results.update({name: cams[name] for name in ("gradcam", "gradcam_plus_plus") if name in methods})
        if probe.has_features and "scorecam" in methods:
            results["scorecam"] = self._scorecam(probe, x, index, target.is_class)
        if "integrated_gradients" in methods:
            results["integrated_gradients"], diagnostics["integrated_gradients_completeness"] = (
                self._integrated_gradients(probe, x, index)
            )
        return {name: np.asarray(value, dtype=np.float32) for name, value in results.items()}, diagnostics

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
            self._conv_outputs = tf.function(all_convs, input_signature=[_image_spec(self.model)])
        outputs = self._conv_outputs(self.model_input(rgb))
        return {t: np.asarray(outputs[t.layer][0, :, :, t.index], dtype=np.float32) for t in targets}

    def _gradient_maps(self, probe, x, index, methods, seed):
        """Vanilla and SmoothGrad from one batched pass: row 0 is x, the rest are noisy copies."""
        samples = self.settings.smoothgrad_samples if "smoothgrad" in methods else 0
        image = np.asarray(x)
        sigma = self.settings.smoothgrad_noise * float(image.max() - image.min())
        noise = np.random.default_rng(seed).normal(0.0, sigma, size=(samples,) + image.shape[1:])
        batch = np.concatenate([image, (image + noise).astype(np.float32)])
        _, gradients = self._in_batches(probe.input_gradients, tf.constant(batch), index)
        results = {}
        if "vanilla" in methods:
            results["vanilla"] = np.max(np.abs(gradients[0]), axis=-1)
        if samples:
            # Signed gradients are averaged before the absolute value, as in the authors' code:
            # gradients that noise switches on with random signs cancel, consistent ones add up.
            results["smoothgrad"] = np.max(np.abs(gradients[1:].mean(axis=0)), axis=-1)
        return results

    def _gradient_cams(self, probe, x, index):
        """Grad-CAM and Grad-CAM++ from one backward pass to the CAM layer."""
        _, features, gradients = probe.feature_gradients(x, index)
        activations, g = np.asarray(features[0], np.float64), np.asarray(gradients[0], np.float64)
        gradcam = np.maximum(activations @ g.mean(axis=(0, 1)), 0.0)
        # Grad-CAM++ alphas (paper eq. 19 with exp(S) cancelled), normalised per channel over
        # space as in the authors' reference implementation.
        g2, g3 = g**2, g**3
        denominator = 2.0 * g2 + activations.sum(axis=(0, 1)) * g3
        alphas = np.divide(g2, denominator, out=np.zeros_like(g2), where=denominator != 0.0)
        totals = alphas.sum(axis=(0, 1))
        alphas /= np.where(totals != 0.0, totals, 1.0)
        weights = (alphas * np.maximum(g, 0.0)).sum(axis=(0, 1))
        gradcam_plus_plus = np.maximum(activations @ weights, 0.0)
        return {"gradcam": gradcam, "gradcam_plus_plus": gradcam_plus_plus}

    def _scorecam(self, probe, x, index, is_class):
        """Score-CAM: weight each CAM channel by the score gain of the image masked with it."""
        activations = np.asarray(probe.features(x)[0])
        spread = activations.std(axis=(0, 1))
        channels = [k for k in np.argsort(-spread, kind="stable")[: self.settings.scorecam_max_channels] if spread[k] > 0]
        if not channels:
            return np.zeros(activations.shape[:2], np.float32)
        selected = activations[:, :, channels]
        masks = np.asarray(tf.image.resize(selected[None], x.shape[1:3], method="bilinear")[0])
        low, high = masks.min(axis=(0, 1)), masks.max(axis=(0, 1))
        masks = (masks - low) / np.where(high > low, high - low, 1.0)
        masked = np.asarray(x) * np.moveaxis(masks, -1, 0)[..., None]
        inputs = np.concatenate([np.zeros_like(np.asarray(x)), masked]).astype(np.float32)
        scores, probabilities = self._in_batches(probe.forward, tf.constant(inputs), index)
        gains = (probabilities if is_class else scores).astype(np.float64)
        weights = gains[1:] - gains[0]
        return np.maximum(selected.astype(np.float64) @ weights, 0.0)

    def _integrated_gradients(self, probe, x, index):
        """IG from the black image: (map (H, W), completeness ratio)."""
        image = np.asarray(x)
        baseline = np.asarray(self.model_input(np.zeros(image.shape[1:3] + (3,), np.float32)))
        steps = self.settings.integrated_gradients_steps
        alphas = ((np.arange(steps) + 0.5) / steps).astype(np.float32)[:, None, None, None]
        path = (baseline + alphas * (image - baseline)).astype(np.float32)
        _, gradients = self._in_batches(probe.input_gradients, tf.constant(path), index)
        attributions = (image[0] - baseline[0]) * gradients.mean(axis=0)
        end_scores = probe.forward(tf.constant(np.concatenate([image, baseline])), index)[0]
        difference = float(end_scores[0] - end_scores[1])
        completeness = float(attributions.sum()) / difference if difference != 0.0 else None
        return np.abs(attributions.sum(axis=-1)), completeness


class MeanActivations:
    """Spatial mean of every filter of the model's conv layers, for many images in one pass each.

    For VGG16 that is a (B, 4224) array from one forward pass over the 13 conv layers.
    `units[i]` = (layer name, filter index) of column i.

    Args:
        model: Keras CNN taking preprocessed images.
        preprocess: RGB (B, H, W, 3) 0..255 -> model input.
    """

    def __init__(self, model, preprocess):
        layers = conv_layers(model)
        self.units = [(layer.name, index) for layer in layers for index in range(layer.filters)]
        self._model = keras.Model(model.inputs, [layer.output for layer in layers])
        self._preprocess = preprocess
        self._means = tf.function(self._mean_outputs, input_signature=[_image_spec(model)])

    def _mean_outputs(self, x):
        return tf.concat([tf.reduce_mean(output, axis=[1, 2]) for output in self._model(x)], axis=-1)

    def __call__(self, rgb_batch):
        """uint8 RGB (B, H, W, 3) -> float32 (B, len(units)) mean post-ReLU activations."""
        x = self._preprocess(tf.constant(np.asarray(rgb_batch, dtype=np.float32)))
        return np.asarray(self._means(tf.convert_to_tensor(x, dtype=tf.float32)))


class TopExamples:
    """The k images with the highest activation of each unit, kept while images stream past.

    Memory is O(units x k) whatever the number of images; ties keep the earlier image.

    Args:
        unit_count: number of units (columns of the activation vectors).
        k: examples kept per unit.
    """

    def __init__(self, unit_count, k):
        self.values = np.full((unit_count, k), -np.inf, dtype=np.float32)
        self.image_ids = np.full((unit_count, k), -1, dtype=np.int64)

    def add(self, image_id, activations):
        """Offer one image: `activations` float (unit_count,), its value for every unit."""
        values = np.concatenate([self.values, np.asarray(activations, np.float32)[:, None]], axis=1)
        ids = np.concatenate([self.image_ids, np.full((len(values), 1), image_id)], axis=1)
        order = np.argsort(-values, axis=1, kind="stable")[:, : self.values.shape[1]]
        self.values = np.take_along_axis(values, order, axis=1)
        self.image_ids = np.take_along_axis(ids, order, axis=1)

    def best(self, unit):
        """[(image_id, activation)] of column `unit`, best first (fewer than k if fewer images)."""
        return [(int(i), float(v)) for i, v in zip(self.image_ids[unit], self.values[unit]) if i >= 0]

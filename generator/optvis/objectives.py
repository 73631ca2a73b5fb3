"""Objectives: what a batch of images should excite, one unit per image.

An objective maps images in [0, 1], (B, H, W, 3) RGB, and unit indices (B,) to one score per
image (B,). Scores are read before the layer's nonlinearity: after a ReLU, a unit that is off
has zero gradient and its image would stay flat gray; before a softmax, a class can win by
suppressing the others instead of looking like itself.

For diversity (several images per unit) an objective also returns features of each image, read
in the same forward pass at a lower layer, and `gram_similarity` says how alike a unit's images
are from them.
"""

import keras
import tensorflow as tf

from .settings import Readout


def pre_activation_model(model, layer_name, feature_layer=None):
    """A callable giving `layer_name`'s output before its activation function.

    Args:
        model: a functional Keras model.
        layer_name: a Conv2D or Dense layer of `model`.
        feature_layer: None, or a layer of `model` at or before `layer_name` whose output
            (after its activation) is returned too, from the same forward pass.
    Returns:
        A function of the model's input (B, H, W, C_in) returning the pre-activation output,
        (B, H', W', filters) for Conv2D or (B, units) for Dense; with `feature_layer`, the pair
        (pre-activation output, feature_layer's output).
    """
    layer = model.get_layer(layer_name)
    if feature_layer is not None:
        trunk = keras.Model(model.inputs, [layer.input, model.get_layer(feature_layer).output])
    else:
        trunk = keras.Model(model.inputs, layer.input)
    config = layer.get_config()
    config.update(activation="linear", name=f"{layer_name}_preact")
    linear = layer.__class__.from_config(config)
    linear.build(layer.input.shape)
    linear.set_weights(layer.get_weights())

    def forward(inputs):
        if feature_layer is None:
            return linear(trunk(inputs))
        below, features = trunk(inputs)
        return linear(below), features

    return forward


def layer_scores(model, layer_name, preprocess, readout=Readout.CHANNEL_MEAN, feature_layer=None):
    """Scores of every unit of `layer_name`, pre-activation.

    For a conv layer a unit is a channel, scored by its mean over all positions (a channel
    visualization, as in OpenAI Microscope) or, with Readout.CENTER, at the central position
    only (a neuron visualization, for layers whose receptive field is a few pixels); for a dense
    layer a unit is one neuron, e.g. a class logit.

    Args:
        model: functional Keras model whose input takes `preprocess`ed images.
        layer_name: the Conv2D or Dense layer to read.
        preprocess: maps RGB in [0, 255], (B, H, W, 3), to the model's input.
        readout: a `Readout`, for conv layers.
        feature_layer: None, or a conv layer at or before `layer_name` (see `pre_activation_model`).
    Returns:
        scores(images (B, H, W, 3) RGB in [0, 1]) -> (B, units) float32, whatever the
        model's compute dtype; with `feature_layer`, -> ((B, units), features (B, h, w, c))
        both float32.
    """
    if not isinstance(readout, Readout):
        raise TypeError(f"readout must be a Readout, not {readout!r}")
    forward = pre_activation_model(model, layer_name, feature_layer)

    def scores(images):
        if feature_layer is None:
            return read(forward(preprocess(images * 255.0)))
        outputs, features = forward(preprocess(images * 255.0))
        return read(outputs), tf.cast(features, tf.float32)

    def read(outputs):
        outputs = tf.cast(outputs, tf.float32)
        if len(outputs.shape) == 2:
            return outputs
        if readout is Readout.CENTER:
            return outputs[:, tf.shape(outputs)[1] // 2, tf.shape(outputs)[2] // 2, :]
        return tf.reduce_mean(outputs, axis=[1, 2])

    return scores


def unit_objective(scores):
    """Objective: each image's own unit.

    Args:
        scores: f(images (B, H, W, 3) in [0, 1]) -> (B, units), e.g. from `layer_scores`; or
            -> ((B, units), features), whose features are passed on.
    Returns:
        objective(images (B, H, W, 3) in [0, 1], units (B,) int) -> (B,) float32, or
        ((B,) float32, features) when `scores` gives features.
    """

    def objective(images, units):
        outputs = scores(images)
        if isinstance(outputs, tuple):
            return pick(outputs[0], units), outputs[1]
        return pick(outputs, units)

    def pick(unit_scores, units):
        return tf.gather(unit_scores, tf.cast(units, tf.int32), axis=1, batch_dims=1)

    return objective


def gram_similarity(features, k):
    """How alike the images of each group of `k` consecutive images are in style (Olah et al. 2017).

    Each image's style is the Gram matrix of its features (channel x channel, summed over
    positions); the similarity of two images is the cosine of their Gram matrices, in [0, 1]
    for non-negative (post-ReLU) features.

    Args:
        features: float32 (B, h, w, c), B a multiple of `k`.
        k: images per group, at least 2.
    Returns:
        float32 (B / k,): each group's mean cosine similarity over its k (k - 1) ordered pairs.
    """
    channels = features.shape[-1]
    flat = tf.reshape(features, [tf.shape(features)[0], -1, channels])
    grams = tf.matmul(flat, flat, transpose_a=True)  # (B, c, c)
    styles = tf.math.l2_normalize(tf.reshape(grams, [-1, k, channels * channels]), axis=2, epsilon=1e-10)
    cosines = tf.matmul(styles, styles, transpose_b=True)  # (B / k, k, k)
    off_diagonal = tf.reduce_sum(cosines, axis=[1, 2]) - tf.linalg.trace(cosines)
    return off_diagonal / (k * (k - 1))

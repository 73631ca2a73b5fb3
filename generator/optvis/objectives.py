"""Objectives: what a batch of images should excite, one unit per image.

An objective maps images in [0, 1], (B, H, W, 3) RGB, and unit indices (B,) to one score per
image (B,). Scores are read before the layer's nonlinearity: after a ReLU, a unit that is off
has zero gradient and its image would stay flat gray; before a softmax, a class can win by
suppressing the others instead of looking like itself.
"""

import keras
import tensorflow as tf

from .settings import Readout


def pre_activation_model(model, layer_name):
    """A callable giving `layer_name`'s output before its activation function.

    Args:
        model: a functional Keras model.
        layer_name: a Conv2D or Dense layer of `model`.
    Returns:
        A function of the model's input (B, H, W, C_in) returning the pre-activation output,
        (B, H', W', filters) for Conv2D or (B, units) for Dense.
    """
    layer = model.get_layer(layer_name)
    trunk = keras.Model(model.inputs, layer.input)
    config = layer.get_config()
    config.update(activation="linear", name=f"{layer_name}_preact")
    linear = layer.__class__.from_config(config)
    linear.build(layer.input.shape)
    linear.set_weights(layer.get_weights())

    def forward(inputs):
        return linear(trunk(inputs))

    return forward


def layer_scores(model, layer_name, preprocess, readout=Readout.CHANNEL_MEAN):
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
    Returns:
        scores(images (B, H, W, 3) RGB in [0, 1]) -> (B, units) float32, whatever the
        model's compute dtype.
    """
    if not isinstance(readout, Readout):
        raise TypeError(f"readout must be a Readout, not {readout!r}")
    forward = pre_activation_model(model, layer_name)

    def scores(images):
        outputs = tf.cast(forward(preprocess(images * 255.0)), tf.float32)
        if len(outputs.shape) == 2:
            return outputs
        if readout is Readout.CENTER:
            return outputs[:, tf.shape(outputs)[1] // 2, tf.shape(outputs)[2] // 2, :]
        return tf.reduce_mean(outputs, axis=[1, 2])

    return scores


def unit_objective(scores):
    """Objective: each image's own unit.

    Args:
        scores: f(images (B, H, W, 3) in [0, 1]) -> (B, units), e.g. from `layer_scores`.
    Returns:
        objective(images (B, H, W, 3) in [0, 1], units (B,) int) -> (B,) float32.
    """

    def objective(images, units):
        return tf.gather(scores(images), tf.cast(units, tf.int32), axis=1, batch_dims=1)

    return objective

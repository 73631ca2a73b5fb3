"""What a saliency map explains, and the parts of a Keras CNN that targets name.

A target is either a conv filter's mean activation (`Target("block4_conv2", 17)`) or a class
score (`Target("predictions", 281)`). The model is any Keras CNN of Conv2D layers, optionally
ending in a Dense class head (VGG16's conv base or full VGG16, or the tests' small models).
"""

from dataclasses import dataclass

import keras
import tensorflow as tf

from .architecture import CLASS_LAYER
from .errors import UserError


@dataclass(frozen=True)
class Target:
    """What a map explains: a conv filter (layer, index) or a class ("predictions", index)."""

    layer: str
    index: int

    @property
    def is_class(self):
        return self.layer == CLASS_LAYER


def target_label(target, class_names=None):
    """"block4_conv2 #17" for a filter; "class 281 tabby" for a class (contract of example.json).

    class_names: [(wnid or None, name)] per output of the class head (explain.class_names); a
    class whose name is its index is "class 3".
    """
    if not target.is_class:
        return f"{target.layer} #{target.index}"
    name = class_names[target.index][1] if class_names else str(target.index)
    return f"class {target.index}" if name == str(target.index) else f"class {target.index} {name}"


def conv_layers(model):
    """The model's Conv2D layers in order (VGG16: the 13 layers of architecture.CONV_LAYERS)."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def class_head(model):
    """The final Dense layer (the class scores), or None for a conv-only model."""
    last = model.layers[-1]
    return last if isinstance(last, keras.layers.Dense) else None


def image_spec(model):
    """TensorSpec of a batch of model inputs: any batch size, the model's own image shape."""
    return tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32)


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


def checked_targets(model, units=(), classes=()):
    """([filter Targets], [class Targets]) of (layer, index) pairs and class indices, each
    deduplicated in order and checked against `model` (UserError for the first bad one)."""
    unit_targets = list(dict.fromkeys(Target(layer, int(index)) for layer, index in units))
    class_targets = list(dict.fromkeys(Target(CLASS_LAYER, int(index)) for index in classes))
    for target in unit_targets + class_targets:
        check_target(model, target)
    return unit_targets, class_targets

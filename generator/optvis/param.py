"""Image parameterization: a Fourier spectrum in decorrelated colour space.

Pixels are not optimized directly. Each image is the inverse FFT of a learned spectrum whose
frequencies are scaled by 1/f (so low frequencies dominate, as in natural images), mapped from a
decorrelated colour basis to RGB and squashed by a sigmoid into [0, 1]. This is the
parameterization of Olah et al. 2017, "Feature Visualization" (Distill), which suppresses the
high-frequency patterns that plain pixel ascent produces.
"""

import numpy as np
import tensorflow as tf

# Square root of the colour correlation matrix of ImageNet (RGB), from its SVD, as published with
# Feature Visualization. Columns are the decorrelated basis; normalized by the largest column norm.
_COLOR_CORRELATION_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)
COLOR_BASIS = _COLOR_CORRELATION_SQRT / np.max(np.linalg.norm(_COLOR_CORRELATION_SQRT, axis=0))


def spectrum_shape(size):
    """Shape (3, size, size // 2 + 1) of one image's real-FFT spectrum, per colour channel."""
    return (3, size, size // 2 + 1)


def frequency_scale(size, decay_power=1.0):
    """Per-frequency amplitude scale 1 / f**decay_power, shape (size, size // 2 + 1), float32.

    The lowest frequency is clamped to 1 / size so the DC term stays finite; the result is
    multiplied by `size` so that the image has unit-order contrast for unit-order spectra.
    """
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    frequency = np.sqrt(fx * fx + fy * fy)
    scale = 1.0 / np.maximum(frequency, 1.0 / size) ** decay_power
    return (scale * size).astype(np.float32)


def initial_spectra(seeds, size, std=0.01):
    """Deterministic random spectra, one per seed.

    Args:
        seeds: sequence of B non-negative ints; equal seeds give equal spectra, whatever the batch.
        size: image side in pixels.
        std: standard deviation of the real and imaginary parts.
    Returns:
        float32 array (B, 2, 3, size, size // 2 + 1): real and imaginary parts.
    """
    shape = (2,) + spectrum_shape(size)
    return np.stack(
        [np.random.default_rng(seed).normal(0.0, std, shape).astype(np.float32) for seed in seeds]
    )


def spectra_to_rgb(spectra, scale):
    """Map spectra to RGB images.

    Args:
        spectra: float32 tensor (B, 2, 3, S, S // 2 + 1), real and imaginary parts.
        scale: float32 (S, S // 2 + 1) from `frequency_scale`.
    Returns:
        float32 tensor (B, S, S, 3), RGB in (0, 1).
    """
    complex_spectra = tf.complex(spectra[:, 0] * scale, spectra[:, 1] * scale)
    # Dividing by 4 (lucid's constant, found by trial) sets the image contrast per unit of spectrum:
    # with `frequency_scale`'s factor `size`, unit-order spectra give sigmoid inputs of unit order,
    # so neither the start nor an Adam step of `learning_rate` saturates the sigmoid at once.
    size = spectra.shape[-2]  # an odd size needs its length said: the default would be 2 * (S // 2)
    decorrelated = tf.signal.irfft2d(complex_spectra, fft_length=[size, size]) / 4.0  # (B, 3, S, S)
    decorrelated = tf.transpose(decorrelated, [0, 2, 3, 1])  # (B, S, S, 3)
    rgb = tf.tensordot(decorrelated, tf.constant(COLOR_BASIS.T), axes=1)
    return tf.sigmoid(rgb)


def pad_spectra(spectra, size, decay_power=1.0):
    """Zero-pad coarse spectra to a larger image side, so that the image does not change.

    The padded spectrum is the band-limited (Fourier) upsampling of the coarse image: at every
    pixel of the fine grid that falls on a coarse pixel (all of them when `size` is a multiple of
    the coarse side) the fine image equals the coarse one; in between it interpolates. Three
    things make that exact:
    - irfft2d divides by the pixel count, so the fine coefficients carry (size / coarse)**2 more;
    - `frequency_scale` differs between the sizes by the uniform factor (size / coarse)**(1 +
      decay_power) at each integer frequency, which the learned parameters must undo: the
      parameters are multiplied by (size / coarse)**(1 - decay_power) (1 for the usual 1/f);
    - the coarse Nyquist row (frequency -coarse / 2) stands for both +- coarse / 2 on the fine
      grid, so it is split in halves between the two; the coarse Nyquist column (the last rfft
      column, which irfft reads as real) becomes an ordinary fine column, half-weighted because
      irfft counts an ordinary column twice (it and its Hermitian mirror).

    Args:
        spectra: float32 (B, 2, 3, C, C // 2 + 1), real and imaginary parts; C even.
        size: the new side, above C.
        decay_power: the `frequency_scale` decay power both sizes use.
    Returns:
        float32 array (B, 2, 3, size, size // 2 + 1).
    """
    spectra = np.asarray(spectra, np.float32)
    coarse = spectra.shape[3]
    if coarse % 2 or size <= coarse:
        raise ValueError(f"pad_spectra needs an even coarse side below {size} (got {coarse})")
    half = coarse // 2
    placed = spectra.copy()
    placed[..., half] *= 0.5  # Nyquist column: an ordinary column on the fine grid
    padded = np.zeros(spectra.shape[:3] + (size, size // 2 + 1), np.float32)
    padded[..., :half, : half + 1] = placed[..., :half, :]
    padded[..., size - half + 1 :, : half + 1] = placed[..., half + 1 :, :]
    padded[..., half, : half + 1] = 0.5 * placed[..., half, :]  # Nyquist row split between +- half
    padded[..., size - half, : half + 1] = 0.5 * placed[..., half, :]
    return padded * np.float32((size / coarse) ** (1.0 - decay_power))


def tile_spectra(spectra, size, decay_power=1.0):
    """Spectra of the coarse images tiled n x n, n = size / C: a larger canvas, same pixel scale.

    Fourier images are periodic, so the tiling has no seams. A coarse frequency k (integer, in
    cycles per coarse image) becomes the fine frequency n k; irfft2d's 1 / pixels and the two sizes'
    `frequency_scale` are undone per coefficient, so every fine pixel (y, x) equals the coarse
    pixel (y mod C, x mod C). Nyquist rows and columns map onto the fine ones, both read as real.

    Args:
        spectra: float32 (B, 2, 3, C, C // 2 + 1).
        size: the new side, a multiple of C above it.
        decay_power: the `frequency_scale` decay power both sizes use.
    Returns:
        float32 array (B, 2, 3, size, size // 2 + 1).
    """
    spectra = np.asarray(spectra, np.float32)
    coarse = spectra.shape[3]
    if size <= coarse or size % coarse:
        raise ValueError(f"tile_spectra needs a multiple of the coarse side {coarse} above it (got {size})")
    n = size // coarse
    rows = (n * np.fft.fftfreq(coarse, 1.0 / coarse).astype(int)) % size  # fine row of each coarse row
    columns = n * np.arange(coarse // 2 + 1)
    gain = n * n * frequency_scale(coarse, decay_power) / frequency_scale(size, decay_power)[np.ix_(rows, columns)]
    tiled = np.zeros(spectra.shape[:3] + (size, size // 2 + 1), np.float32)
    tiled[..., rows[:, None], columns[None, :]] = spectra * gain
    return tiled

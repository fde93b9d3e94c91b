"""Resampling waveforms from one sample rate to another (numpy, eager)."""

import math
import numbers

import numpy as np


def check_rate(rate, name="sample_rate"):
    """`rate` as a positive int, or a ValueError naming what arrived.

    Integer-valued floats (`16000.0`) are accepted; `True`, `0`, negative,
    fractional or non-numeric rates are not.
    """
    if (
        isinstance(rate, bool)
        or not isinstance(rate, numbers.Real)
        or not float(rate).is_integer()
        or rate <= 0
    ):
        raise ValueError(
            f"`{name}` must be a positive whole number of samples per "
            f"second (Hz), e.g. 16000. Received: {rate!r}"
        )
    return int(rate)


def resample(waves, from_rate, to_rate):
    """Resample waveforms from `from_rate` Hz to `to_rate` Hz.

    A polyphase filter (`scipy.signal.resample_poly`, a Kaiser-windowed FIR
    low-pass at the lower of the two Nyquist frequencies): the ratio is
    reduced to `up / down` by their greatest common divisor, so 8 kHz to
    16 kHz is `2 / 1` and 44.1 kHz to 16 kHz is `160 / 441`. A clip of `n`
    samples becomes `ceil(n * to_rate / from_rate)` samples. Equal rates
    return the input unchanged (the same array, no copy).

    Args:
        waves: a numpy float array `(samples,)` or `(batch, samples)`
            (resampled along the last axis), or a list or tuple of 1-D
            float arrays of different lengths (each resampled on its own).
        from_rate: int. The rate `waves` were recorded at, in Hz.
        to_rate: int. The rate wanted, in Hz.

    Returns:
        The resampled waveforms, of the input's float dtype (float32 stays
        float32): an array of the same rank, or a list of 1-D arrays.

    Raises:
        ValueError: a rate that is not a positive whole number, a
            non-float dtype (scale integer PCM first, e.g. `x / 32768.0`),
            or an array of rank other than 1 or 2.

    Example:
    ```python
    t = np.arange(8000) / 8000.0
    wave_8k = np.sin(2 * np.pi * 440 * t).astype("float32")
    resample(wave_8k, 8000, 16000).shape  # (16000,)
    resample([wave_8k, wave_8k[:100]], 8000, 16000)  # [(16000,), (200,)]
    ```
    """
    from_rate = check_rate(from_rate, "from_rate")
    to_rate = check_rate(to_rate, "to_rate")
    if isinstance(waves, (list, tuple)):
        return [
            _resample_array(np.asarray(w), from_rate, to_rate, 1)
            for w in waves
        ]
    return _resample_array(np.asarray(waves), from_rate, to_rate, (1, 2))


def _resample_array(wave, from_rate, to_rate, ranks):
    ranks = ranks if isinstance(ranks, tuple) else (ranks,)
    if wave.ndim not in ranks:
        expected = " or ".join(
            {1: "(samples,)", 2: "(batch, samples)"}[r] for r in ranks
        )
        raise ValueError(
            f"`resample` expects waveforms of shape {expected}. Received "
            f"shape {wave.shape}."
        )
    if wave.dtype.kind != "f":
        raise ValueError(
            "`resample` expects float waveforms (e.g. float32 in [-1, 1]). "
            f"Received dtype {wave.dtype}; scale integer PCM first, e.g. "
            "`x / 32768.0`."
        )
    if from_rate == to_rate:
        return wave
    from scipy import signal

    divisor = math.gcd(from_rate, to_rate)
    up, down = to_rate // divisor, from_rate // divisor
    if wave.shape[-1] == 0:
        return wave
    out = signal.resample_poly(wave, up, down, axis=-1)
    return out.astype(wave.dtype, copy=False)

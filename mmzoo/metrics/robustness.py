"""Robustness curves: accuracy as one modality is corrupted more and more.

MultiBench's protocol (Liang et al., 2021, "MultiBench: Multiscale
Benchmarks for Multimodal Representation Learning"): corrupt one modality
at a time at levels 0, 0.1, ..., 1 and record the accuracy at each level.

- `relative_robustness(accuracies)`: the area under that curve (levels on
  [0, 1], trapezoids), MultiBench's relative robustness before its min-max
  normalisation across the methods compared.
- `effective_robustness(accuracies, baseline)`: MultiBench's effective
  robustness, the accuracy the model keeps above a baseline's curve shifted
  to start at the model's clean accuracy, summed over the levels
  (`sum(f - (b + f[0] - b[0]))`). MultiBench's baseline is late fusion.

Corruptions (`CORRUPTIONS`), each 0 (none) at level 0:

- image `"gaussian_noise"`: additive Gaussian noise of standard deviation
  `level * 128` on the 0-255 scale, clipped to [0, 255].
- image `"occlusion"`: a black square covering `level` of the image's area,
  at a random place in each image.
- audio `"noise"`: white Gaussian noise at a signal-to-noise ratio of
  `30 - 40 * level` dB (26 dB at 0.1, -10 dB at 1), per clip.
- audio `"telephone_band"`: the clip mixed with its 300-3,400 Hz band (the
  telephone band, ITU-T G.712): `(1 - level) * clip + level * band`.
"""

import numpy as np

LEVELS = tuple(np.round(np.linspace(0.0, 1.0, 11), 1).tolist())
CORRUPTIONS = {
    "image": ("gaussian_noise", "occlusion"),
    "audio": ("noise", "telephone_band"),
}
TELEPHONE_BAND_HZ = (300.0, 3400.0)


def _check_level(level):
    if not 0.0 <= float(level) <= 1.0:
        raise ValueError(
            f"A corruption level is in [0, 1]. Received: level={level}"
        )


def corrupt(x, modality, corruption, level, sample_rate=None, seed=0):
    """A copy of the raw inputs `x` with one modality corrupted.

    Args:
        x: raw inputs, a dict keyed by modality: images uint8 `(n, height,
            width, channels)`, waveforms float `(n, samples)`.
        modality: `"image"` or `"audio"`.
        corruption: one of `CORRUPTIONS[modality]`.
        level: the strength, in [0, 1]; 0 returns the input unchanged.
        sample_rate: the waveforms' rate in Hz; needed by
            `"telephone_band"`.
        seed: the random draws' seed.

    Returns:
        A dict like `x` (the other modalities the same arrays).
    """
    if modality not in CORRUPTIONS:
        raise ValueError(
            f"No corruption for modality {modality!r}: expected one of "
            f"{sorted(CORRUPTIONS)}."
        )
    if corruption not in CORRUPTIONS[modality]:
        raise ValueError(
            f"Unknown corruption {corruption!r} of modality '{modality}': "
            f"expected one of {list(CORRUPTIONS[modality])}."
        )
    if modality not in x:
        raise ValueError(
            f"The inputs have no '{modality}' to corrupt; they have "
            f"{sorted(x)}."
        )
    _check_level(level)
    out = dict(x)
    if level == 0:
        return out
    rng = np.random.default_rng(seed)
    value = np.asarray(x[modality])
    if modality == "image":
        if value.ndim != 4 or value.dtype != np.uint8:
            raise ValueError(
                "Modality 'image' is corrupted as uint8 (n, height, width, "
                f"channels). Received dtype {value.dtype} and shape "
                f"{value.shape}."
            )
        if corruption == "gaussian_noise":
            noisy = value + rng.normal(0.0, 128.0 * level, value.shape)
            out[modality] = np.clip(np.rint(noisy), 0, 255).astype("uint8")
        else:
            out[modality] = _occlude(value, level, rng)
    else:
        if value.ndim != 2 or value.dtype.kind != "f":
            raise ValueError(
                "Modality 'audio' is corrupted as float waveforms (n, "
                f"samples). Received dtype {value.dtype} and shape "
                f"{value.shape}."
            )
        if corruption == "noise":
            out[modality] = _add_noise(value, 30.0 - 40.0 * level, rng)
        else:
            if sample_rate is None:
                raise ValueError(
                    "'telephone_band' needs the waveforms' `sample_rate` "
                    "(Hz)."
                )
            band = _band(value, sample_rate, *TELEPHONE_BAND_HZ)
            out[modality] = ((1 - level) * value + level * band).astype(
                value.dtype
            )
    return out


def _occlude(images, level, rng):
    n, height, width = images.shape[:3]
    side = np.sqrt(level)
    h = int(round(side * height))
    w = int(round(side * width))
    out = images.copy()
    rows = rng.integers(0, height - h + 1, n)
    columns = rng.integers(0, width - w + 1, n)
    for i in range(n):
        out[i, rows[i] : rows[i] + h, columns[i] : columns[i] + w] = 0
    return out


def _add_noise(clips, snr_db, rng):
    power = np.mean(np.square(clips, dtype="float64"), axis=1, keepdims=True)
    noise_power = power / 10.0 ** (snr_db / 10.0)
    noise = rng.standard_normal(clips.shape) * np.sqrt(noise_power)
    return (clips + noise).astype(clips.dtype)


def _band(clips, sample_rate, low, high):
    """The clips with every frequency outside [low, high] Hz removed."""
    spectrum = np.fft.rfft(clips.astype("float64"), axis=1)
    frequencies = np.fft.rfftfreq(clips.shape[1], d=1.0 / sample_rate)
    spectrum[:, (frequencies < low) | (frequencies > high)] = 0.0
    return np.fft.irfft(spectrum, n=clips.shape[1], axis=1)


def robustness_curve(
    task,
    x,
    y,
    modality,
    corruption,
    levels=LEVELS,
    sample_rate=None,
    seed=0,
    batch_size=250,
):
    """Accuracy of a classifier as one modality is corrupted.

    Args:
        task: a classifier whose `predict` takes `x` and returns class
            scores (e.g. `MultimodalClassifier`).
        x: raw inputs with every modality; y: class ids.
        modality, corruption: what to corrupt (`corrupt`).
        levels: the corruption levels (MultiBench's 0, 0.1, ..., 1).
        sample_rate: the waveforms' rate in Hz (default: the preprocessor's
            declared rate, as `predict` takes them).
        seed: the corruptions' seed (the same draws at every level).
        batch_size: examples per forward pass.

    Returns:
        A list of accuracies, one per level.

    Example:

    ```python
    classifier = mmzoo.load("av_digits_attention")
    x, y = mmzoo.datasets.load_av_digits("test")
    curve = mmzoo.metrics.robustness_curve(
        classifier, x, y, "audio", "noise"
    )
    mmzoo.metrics.relative_robustness(curve)
    ```
    """
    if sample_rate is None:
        converter = getattr(task.preprocessor, "audio_converter", None)
        sample_rate = getattr(converter, "sample_rate", None)
    labels = np.asarray(y).reshape(-1)
    accuracies = []
    for level in levels:
        corrupted = corrupt(x, modality, corruption, level, sample_rate, seed)
        scores = task.predict(corrupted, batch_size=batch_size, verbose=0)
        accuracies.append(float(np.mean(scores.argmax(-1) == labels)))
    return accuracies


def relative_robustness(accuracies, levels=LEVELS):
    """The area under the accuracy curve over the levels (trapezoids): 1
    for a model right at every level, its clean accuracy for a flat curve.
    """
    accuracies = np.asarray(accuracies, "float64")
    levels = np.asarray(levels, "float64")
    if accuracies.shape != levels.shape:
        raise ValueError(
            f"One accuracy per level: {len(levels)} levels, "
            f"{len(accuracies)} accuracies."
        )
    widths = np.diff(levels)
    return float(np.sum(widths * (accuracies[1:] + accuracies[:-1]) / 2))


def effective_robustness(accuracies, baseline):
    """MultiBench's effective robustness: `sum(f - (b + f[0] - b[0]))`
    over the levels, for a model's curve `f` and a baseline's `b` (on the
    same levels). Positive: the model loses less accuracy than the
    baseline as the corruption grows; 0 for the baseline itself."""
    f = np.asarray(accuracies, "float64")
    b = np.asarray(baseline, "float64")
    if f.shape != b.shape:
        raise ValueError(
            f"The curves need the same levels: {len(f)} and {len(b)} "
            "accuracies."
        )
    return float(np.sum(f - (b + f[0] - b[0])))

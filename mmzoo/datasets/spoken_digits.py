"""Spoken digits 0-9 in several languages, synthesised with `espeak-ng`."""

import concurrent.futures
import fractions
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import wave

import numpy as np

from mmzoo.utils import file_cache

DIGIT_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
)

# The digit words per language (ISO 639-1), as espeak-ng reads them.
DIGIT_WORDS_BY_LANGUAGE = {
    "en": DIGIT_WORDS,
    "fr": (
        "zéro",
        "un",
        "deux",
        "trois",
        "quatre",
        "cinq",
        "six",
        "sept",
        "huit",
        "neuf",
    ),
    "es": (
        "cero",
        "uno",
        "dos",
        "tres",
        "cuatro",
        "cinco",
        "seis",
        "siete",
        "ocho",
        "nueve",
    ),
    "it": (
        "zero",
        "uno",
        "due",
        "tre",
        "quattro",
        "cinque",
        "sei",
        "sette",
        "otto",
        "nove",
    ),
    "de": (
        "null",
        "eins",
        "zwei",
        "drei",
        "vier",
        "fünf",
        "sechs",
        "sieben",
        "acht",
        "neun",
    ),
    "ru": (
        "ноль",
        "один",
        "два",
        "три",
        "четыре",
        "пять",
        "шесть",
        "семь",
        "восемь",
        "девять",
    ),
}

# The command run to synthesise speech. Tests point it at a missing name.
ESPEAK_EXECUTABLE = "espeak-ng"

# English voices of espeak-ng's own synthesiser (not the MBROLA ones, which
# need extra packages), and voice variants that change the speaker.
DEFAULT_LANGUAGES = (
    "en",
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-us-nyc",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
DEFAULT_VARIANTS = (
    "",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "klatt",
    "croak",
)
# espeak-ng voices (accents) of each language of `DIGIT_WORDS_BY_LANGUAGE`.
LANGUAGE_VOICES = {
    "en": DEFAULT_LANGUAGES,
    "fr": ("fr-fr", "fr-be", "fr-ch"),
    "es": ("es", "es-419"),
    "it": ("it",),
    "de": ("de",),
    "ru": ("ru", "ru-lv"),
}
SPEED_RANGE = (120, 200)  # words per minute, espeak-ng's `-s`
PITCH_RANGE = (25, 75)  # 0..99, espeak-ng's `-p`

# Bump when the synthesis or processing changes, so old caches are not used.
_CACHE_VERSION = 1
_VOICE_PATTERN = re.compile(r"^[A-Za-z0-9_\-]+(\+[A-Za-z0-9_\-]+)?$")
_SILENCE_DB = -40.0  # frame RMS below this (relative to the loudest) is silence
_TIMEOUT = 60  # seconds for one espeak-ng call


def load_spoken_digits(
    num_per_digit=20,
    sample_rate=8000,
    num_samples=8000,
    voices=None,
    seed=0,
    cache_dir=None,
    verbose=True,
    languages=None,
    variants=None,
):
    """Loads recordings of the spoken digits 0 to 9.

    The words are synthesised with the `espeak-ng` text-to-speech command
    (Debian: `apt-get install espeak-ng`), each clip with its own voice,
    speed and pitch drawn from `seed`, so the set is the same on every
    machine with the same espeak-ng. Each clip is resampled to
    `sample_rate`, its leading and trailing silence trimmed, centred in
    `num_samples` samples (cut at both ends if longer) and peak-normalised
    to 1.

    The result is cached as one `.npz` file in `cache_dir`, keyed by all the
    arguments except `cache_dir` and `verbose`; later calls read it back
    without running espeak-ng. A cache written by another espeak-ng version
    is not detected: delete the file to rebuild it.

    Args:
        num_per_digit: int. Clips per digit; the set holds
            `10 * num_per_digit` clips, ordered by digit. Defaults to `20`.
        sample_rate: int. Sample rate of the returned audio, in Hz.
            Defaults to `8000`.
        num_samples: int. Length of every clip, in samples. Defaults to
            `8000` (one second at 8 kHz).
        voices: optional list of espeak-ng voice names, such as `"en-us"` or
            `"en-gb+f2"` (see `espeak-ng --voices=en` and
            `espeak-ng --voices=variant`); each clip uses one drawn from it.
            A single string is one voice. Defaults to `None`: the English
            voices in `DEFAULT_LANGUAGES`, each with a variant drawn from
            `DEFAULT_VARIANTS`.
        seed: int. Seed of the draws of voice, speed and pitch.
            Defaults to `0`.
        languages: optional list of language codes of
            `DIGIT_WORDS_BY_LANGUAGE` (`"en"`, `"fr"`, `"es"`, `"it"`,
            `"de"`, `"ru"`). Each digit is then spoken `num_per_digit` times
            in each language ("seven", "sept", "siete", "sette", "sieben",
            "семь"), by the voices of `LANGUAGE_VOICES`. Defaults to `None`:
            English only, as `voices` says. Not with `voices`.
        variants: optional list of espeak-ng voice variants (`"m3"`,
            `"f2"`, `""` for none) drawn for each clip, e.g. to keep some
            speakers out of training. Defaults to `DEFAULT_VARIANTS`. Not
            with `voices`.
        cache_dir: optional directory of the cache file. Defaults to the
            environment variable `MMZOO_CACHE_DIR` if set, else
            `~/.keras/datasets/mmzoo/`.
        verbose: bool. Whether to show a progress bar while synthesising.
            Defaults to `True`.

    Returns:
        A tuple `(waves, labels, speakers)`: `waves` is a `float32` array of
        shape `(10 * num_per_digit, num_samples)` in `[-1, 1]`, `labels` an
        `int32` array of the digits, and `speakers` an array of strings
        naming each clip's voice (such as `"en-us+f2"` or `"fr-be+m3"`: its
        language first), for splitting by speaker.

    Raises:
        FileNotFoundError: if `espeak-ng` is not installed and the set is
            not cached.
        RuntimeError: if `espeak-ng` fails, e.g. on an unknown voice.
        ValueError: on invalid arguments, or a corrupt cache file (the
            message names the file to delete).

    Example:
    ```python
    waves, labels, speakers = mmzoo.datasets.load_spoken_digits(
        num_per_digit=20, sample_rate=8000, num_samples=8000
    )
    waves.shape, labels.shape  # ((200, 8000), (200,))
    ```
    """
    num_per_digit = _positive_int("num_per_digit", num_per_digit)
    sample_rate = _positive_int("sample_rate", sample_rate)
    num_samples = _positive_int("num_samples", num_samples)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"`seed` must be an int; got {seed!r}.")
    seed = int(seed)
    voices = _check_voices(voices)
    languages, variants = _check_languages(languages, variants, voices)

    config = {
        "version": _CACHE_VERSION,
        "num_per_digit": num_per_digit,
        "sample_rate": sample_rate,
        "num_samples": num_samples,
        "voices": voices,
        "seed": seed,
        # So editing the defaults below invalidates old caches too.
        "languages": DEFAULT_LANGUAGES if voices is None else None,
        "variants": DEFAULT_VARIANTS if voices is None else None,
        "speed_range": SPEED_RANGE,
        "pitch_range": PITCH_RANGE,
    }
    if languages is not None or variants is not None:
        # Only then, so that the default set keeps its cache key.
        config["languages"] = {
            lang: [LANGUAGE_VOICES[lang], DIGIT_WORDS_BY_LANGUAGE[lang]]
            for lang in (languages or ["en"])
        }
        config["variants"] = list(variants or DEFAULT_VARIANTS)
    key = hashlib.sha256(
        json.dumps(config, sort_keys=True).encode("utf-8")
    ).hexdigest()[:16]
    cache_path = os.path.join(
        _resolve_cache_dir(cache_dir), f"spoken_digits_{key}.npz"
    )
    num_clips = len(DIGIT_WORDS) * num_per_digit * len(languages or ["en"])

    if os.path.exists(cache_path):
        try:
            return _read_cache(cache_path, num_clips, num_samples)
        except Exception as e:  # noqa: BLE001 - any unreadable file is corrupt
            raise ValueError(
                f"The spoken-digits cache file {cache_path!r} is corrupt or "
                f"unreadable ({type(e).__name__}: {e}). Delete it and load "
                "the set again to rebuild it."
            ) from e

    executable = _find_espeak()
    specs = _draw_specs(num_per_digit, voices, seed, languages, variants)
    waves = _synthesise_all(
        executable, specs, sample_rate, num_samples, verbose
    )
    labels = np.array([spec["digit"] for spec in specs], dtype=np.int32)
    speakers = np.array([spec["voice"] for spec in specs], dtype=np.str_)
    file_cache.write_npz_or_warn(
        cache_path,
        "spoken-digits",
        waves=waves,
        labels=labels,
        speakers=speakers,
        config=np.array(json.dumps(config, sort_keys=True)),
    )
    return waves, labels, speakers


def _positive_int(name, value):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < 1
    ):
        raise ValueError(f"`{name}` must be a positive int; got {value!r}.")
    return int(value)


def _check_voices(voices):
    if voices is None:
        return None
    if isinstance(voices, str):
        voices = [voices]
    voices = list(voices)
    if not voices:
        raise ValueError("`voices` must name at least one voice; got [].")
    for voice in voices:
        if not isinstance(voice, str) or not _VOICE_PATTERN.match(voice):
            raise ValueError(
                "Each entry of `voices` must be an espeak-ng voice name such "
                f'as "en-us" or "en-gb+f2"; got {voice!r}.'
            )
    return voices


def _check_languages(languages, variants, voices):
    if languages is None and variants is None:
        return None, None
    if voices is not None:
        raise ValueError(
            "Pass `voices`, or `languages`/`variants`, not both: the "
            "languages and variants choose the voices."
        )
    if isinstance(languages, str):
        languages = [languages]
    if languages is not None:
        languages = list(languages)
        unknown = [x for x in languages if x not in DIGIT_WORDS_BY_LANGUAGE]
        if unknown or not languages:
            raise ValueError(
                f"Unknown languages {unknown or languages}; known: "
                f"{sorted(DIGIT_WORDS_BY_LANGUAGE)}."
            )
    if variants is not None:
        variants = [variants] if isinstance(variants, str) else list(variants)
        bad = [v for v in variants if not re.fullmatch(r"[A-Za-z0-9_\-]*", v)]
        if bad or not variants:
            raise ValueError(
                "`variants` must be a non-empty list of espeak-ng variant "
                f"names such as 'm3' or 'f2' ('' for none); got {variants!r}."
            )
    return languages, variants


def _resolve_cache_dir(cache_dir):
    return file_cache.cache_dir("datasets", cache_dir)


def _find_espeak():
    executable = shutil.which(ESPEAK_EXECUTABLE)
    if executable is None:
        raise FileNotFoundError(
            f"`load_spoken_digits()` synthesises speech with the "
            f"`{ESPEAK_EXECUTABLE}` command, which was not found on PATH. "
            "Install it, e.g. on Debian/Ubuntu: apt-get install espeak-ng "
            "(macOS: brew install espeak-ng)."
        )
    return executable


def _draw_specs(num_per_digit, voices, seed, languages=None, variants=None):
    """Draws every clip's voice, speed and pitch; the order is fixed."""
    rng = np.random.default_rng(seed)
    specs = []
    for digit in range(len(DIGIT_WORDS)):
        for language in languages or [None]:
            for _ in range(num_per_digit):
                if language is not None or variants is not None:
                    code = language or "en"
                    accents = LANGUAGE_VOICES[code]
                    word = DIGIT_WORDS_BY_LANGUAGE[code][digit]
                    voice = accents[rng.integers(len(accents))]
                    pool = variants or DEFAULT_VARIANTS
                    variant = pool[rng.integers(len(pool))]
                elif voices is None:
                    word = DIGIT_WORDS[digit]
                    voice = DEFAULT_LANGUAGES[
                        rng.integers(len(DEFAULT_LANGUAGES))
                    ]
                    variant = DEFAULT_VARIANTS[
                        rng.integers(len(DEFAULT_VARIANTS))
                    ]
                else:
                    word = DIGIT_WORDS[digit]
                    voice, variant = voices[rng.integers(len(voices))], ""
                if variant:
                    voice = f"{voice}+{variant}"
                specs.append(
                    {
                        "digit": digit,
                        "word": word,
                        "voice": voice,
                        "speed": int(
                            rng.integers(SPEED_RANGE[0], SPEED_RANGE[1] + 1)
                        ),
                        "pitch": int(
                            rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)
                        ),
                    }
                )
    return specs


def _synthesise_all(executable, specs, sample_rate, num_samples, verbose):
    return synthesise_in_threads(
        lambda i: _synthesise_one(
            executable, specs[i], sample_rate, num_samples
        ),
        len(specs),
        num_samples,
        verbose,
    )


def synthesise_in_threads(synthesise, count, num_samples, verbose):
    """Runs `synthesise(i)` for `i` in `range(count)` on threads.

    The work is mostly waiting on synthesiser subprocesses, so threads
    suffice. Returns the clips as one `float32` array `(count, num_samples)`
    in order of `i`, with a progress bar if `verbose`; the first error
    cancels the calls not yet started and is raised.
    """
    waves = np.zeros((count, num_samples), dtype=np.float32)
    progbar = None
    if verbose:
        import keras

        progbar = keras.utils.Progbar(count, unit_name="clip")
    workers = max(1, min(8, 2 * (os.cpu_count() or 1), count))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(synthesise, i): i for i in range(count)}
        try:
            for done, future in enumerate(
                concurrent.futures.as_completed(futures), start=1
            ):
                waves[futures[future]] = future.result()
                if progbar is not None:
                    progbar.update(done)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return waves


def espeak_command(executable, spec):
    """The espeak-ng command line that synthesises one clip of `spec` (a
    dict with `"voice"`, `"speed"`, `"pitch"` and `"word"`), as a list.

    Example:
    ```python
    espeak_command("espeak-ng", {"voice": "fr-be+m3", "speed": 150,
                                 "pitch": 40, "word": "sept"})
    # ['espeak-ng', '-v', 'fr-be+m3', '-s', '150', '-p', '40', '--stdout',
    #  'sept']
    ```
    """
    return [
        executable,
        "-v",
        spec["voice"],
        "-s",
        str(spec["speed"]),
        "-p",
        str(spec["pitch"]),
        "--stdout",
        spec["word"],
    ]


def _synthesise_one(executable, spec, sample_rate, num_samples):
    command = espeak_command(executable, spec)
    try:
        result = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            timeout=_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(
            f"`{' '.join(command)}` did not finish in {_TIMEOUT} s."
        ) from e
    stderr = result.stderr.decode("utf-8", "replace").strip()
    if result.returncode != 0 or len(result.stdout) <= 44:
        raise RuntimeError(
            f"`{' '.join(command)}` failed (exit code {result.returncode})"
            + (f": {stderr}" if stderr else "")
            + ". Check the voice name with `espeak-ng --voices=en`."
        )
    audio, rate = _decode_wav(result.stdout)
    audio = _resample(audio, rate, sample_rate)
    audio = _trim_silence(audio, sample_rate)
    if audio.size == 0 or not np.any(audio):
        raise RuntimeError(f"`{' '.join(command)}` produced only silence.")
    audio = _fit_length(audio, num_samples)
    peak = np.max(np.abs(audio))
    if peak > 0:
        audio = audio / peak
    return audio.astype(np.float32)


def _decode_wav(data):
    """Decodes WAV bytes to mono float64 in [-1, 1] and the sample rate.

    espeak-ng's `--stdout` writes a streaming header whose sizes are
    placeholders, so the frames are read up to the end of the data.
    """
    with wave.open(io.BytesIO(data), "rb") as reader:
        channels = reader.getnchannels()
        width = reader.getsampwidth()
        rate = reader.getframerate()
        frames = reader.readframes(reader.getnframes())
    usable = len(frames) // (width * channels) * (width * channels)
    frames = frames[:usable]
    if width == 1:
        audio = (np.frombuffer(frames, np.uint8).astype(np.float64) - 128) / 128
    elif width == 2:
        audio = np.frombuffer(frames, "<i2").astype(np.float64) / 32768
    elif width == 4:
        audio = np.frombuffer(frames, "<i4").astype(np.float64) / 2**31
    else:
        raise RuntimeError(f"Unsupported WAV sample width: {width} bytes.")
    audio = audio.reshape(-1, channels).mean(axis=1)
    return audio, rate


def _resample(audio, rate, target_rate):
    """Resamples by linear interpolation, low-passed when downsampling."""
    if rate == target_rate or audio.size == 0:
        return audio
    if target_rate < rate:
        audio = _lowpass(audio, cutoff=0.5 * target_rate / rate)
    num_out = max(1, int(round(audio.size * target_rate / rate)))
    positions = np.arange(num_out) * (rate / target_rate)
    return np.interp(positions, np.arange(audio.size), audio)


def _lowpass(audio, cutoff, num_taps=63):
    """Windowed-sinc FIR low-pass; `cutoff` is a fraction of the sample rate."""
    n = np.arange(num_taps) - (num_taps - 1) / 2
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(num_taps)
    taps /= taps.sum()
    return _convolve_exact(audio, taps)


def _convolve_exact(audio, taps):
    """`np.convolve(audio, taps, mode="same")`, correctly rounded.

    `np.convolve` sums each output with a BLAS dot product whose kernel
    (summation order, fused multiply-adds) OpenBLAS picks by CPU, so its
    last bits differ between CPUs, which can change a clip. Here every
    output is summed exactly, in integers, and rounded once to float64: the
    same on every machine. `audio` is taken on a grid of 2**-32 (exact for
    the 8-, 16- and 32-bit PCM of `_decode_wav`).
    """
    audio = np.asarray(audio, np.float64)
    samples = np.round(audio * 2.0**32).astype(np.int64)
    if not np.array_equal(samples * 2.0**-32, audio):
        raise ValueError("_convolve_exact takes audio on a 2**-32 grid.")
    taps = [fractions.Fraction(float(t)) for t in taps]
    scale = max(t.denominator for t in taps)  # a power of two
    numerators = [int(t * scale) for t in taps]
    # The taps' numerators in signed limbs of `bits` bits, so that each
    # integer convolution (sums of < len(taps) * 2**32 * 2**bits) fits in
    # int64 and is exact, in any order; then summed as Python ints.
    bits = 30 - (len(numerators) - 1).bit_length()  # 24 for 63 taps
    total = 0
    for shift in range(0, max(abs(n) for n in numerators).bit_length(), bits):
        limb = [
            (abs(n) >> shift) % (1 << bits) * (1 if n > 0 else -1)
            for n in numerators
        ]
        partial = np.convolve(samples, np.array(limb, np.int64), mode="same")
        total = total + (partial.astype(object) << shift)
    # Python's int / int is correctly rounded.
    return np.asarray(total / (scale << 32), dtype=np.float64)


def _trim_silence(audio, sample_rate):
    """Drops leading and trailing 10 ms frames quieter than the threshold."""
    frame = max(1, sample_rate // 100)
    num_frames = -(-audio.size // frame)
    padded = np.zeros(num_frames * frame)
    padded[: audio.size] = audio
    rms = np.sqrt(np.mean(padded.reshape(num_frames, frame) ** 2, axis=1))
    if rms.size == 0 or rms.max() == 0:
        return audio[:0]
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (_SILENCE_DB / 20))
    start = loud[0] * frame
    stop = min(audio.size, (loud[-1] + 1) * frame)
    return audio[start:stop]


def _fit_length(audio, num_samples):
    """Centres `audio` in `num_samples` samples, cutting both ends if longer."""
    if audio.size >= num_samples:
        start = (audio.size - num_samples) // 2
        return audio[start : start + num_samples]
    out = np.zeros(num_samples, dtype=audio.dtype)
    start = (num_samples - audio.size) // 2
    out[start : start + audio.size] = audio
    return out


def _read_cache(path, num_clips, num_samples):
    with np.load(path, allow_pickle=False) as data:
        waves = np.asarray(data["waves"], dtype=np.float32)
        labels = np.asarray(data["labels"], dtype=np.int32)
        speakers = np.asarray(data["speakers"]).astype(np.str_)
    if (
        waves.shape != (num_clips, num_samples)
        or labels.shape != (num_clips,)
        or speakers.shape != (num_clips,)
    ):
        raise ValueError(
            f"arrays of shapes {waves.shape}, {labels.shape} and "
            f"{speakers.shape}; expected ({num_clips}, {num_samples}), "
            f"({num_clips},) and ({num_clips},)"
        )
    if not np.all(np.isfinite(waves)):
        raise ValueError("waves are not all finite")
    return waves, labels, speakers

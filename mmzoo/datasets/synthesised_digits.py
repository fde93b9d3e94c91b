"""English spoken digits 0-9 from Debian's `flite` and `festival`.

More synthetic speakers than espeak-ng's (`load_spoken_digits`): other
synthesisers, other voices, so a model trained or validated on them cannot
lean on one synthesiser's sound.
"""

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np

from mmzoo.datasets import spoken_digits
from mmzoo.datasets.spoken_digits import DIGIT_WORDS
from mmzoo.utils import file_cache

SYNTHESISERS = ("flite", "festival")
# The command each synthesiser runs. Tests point them at a missing name.
EXECUTABLES = {"flite": "flite", "festival": "text2wave"}
# What to install (Debian/Ubuntu) for the command and the default voices.
PACKAGES = {
    "flite": "flite",
    "festival": (
        "festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k"
    ),
}
# flite's English voices (`flite -lv`; its `awb_time` only speaks the time).
# festival's English voices in Debian: the HTS voice of the CMU Arctic
# speaker SLT (festvox-us-slt-hts) and the diphone voices KAL
# (festvox-kallpc16k) and KED (festvox-kdlpc16k).
DEFAULT_VOICES = {
    "flite": ("kal", "kal16", "awb", "rms", "slt"),
    "festival": ("cmu_us_slt_arctic_hts", "kal_diphone", "ked_diphone"),
}
DEFAULT_STRETCHES = (0.8, 1.0, 1.25)
DEFAULT_PITCHES = (None, 90.0, 160.0)

# Bump when the synthesis or processing changes, so old caches are not used.
_CACHE_VERSION = 1
_VOICE_PATTERN = re.compile(r"^[A-Za-z0-9_\-]+$")
_TIMEOUT = 60  # seconds for one synthesiser call


def load_synthesised_digits(
    synthesiser="flite",
    sample_rate=8000,
    num_samples=8000,
    voices=None,
    stretches=DEFAULT_STRETCHES,
    pitches=DEFAULT_PITCHES,
    cache_dir=None,
    verbose=True,
    peak_normalise=True,
):
    """Loads the English digit words "zero" to "nine" of another synthesiser.

    The words of `DIGIT_WORDS` are spoken by every voice, at every speed
    (`stretches`) and mean pitch (`pitches`): one clip per digit, voice,
    stretch and pitch, with nothing drawn at random, so the set is the same
    on every machine with the same synthesiser. Two synthesisers of Debian:

    - `"flite"` (`apt-get install flite`): the voices listed by
      `flite -lv`. The pitch is flite's `int_f0_target_mean`; the `rms`
      voice ignores it, so its pitched clips repeat the plain one.
    - `"festival"` (`apt-get install festival festvox-us-slt-hts
      festvox-kallpc16k festvox-kdlpc16k`), through its `text2wave`
      command: the voices of festival's `(voice.list)`. Diphone voices
      (`"kal_diphone"`, `"ked_diphone"`) take the stretch and the pitch.
      HTS voices (names ending in `_hts`) take the stretch but cannot
      change their pitch: `pitches` is ignored for them and they get one
      clip per digit and stretch.

    Each clip is resampled to `sample_rate`, its leading and trailing
    silence trimmed, centred in `num_samples` samples (cut at both ends if
    longer) and, unless `peak_normalise=False`, peak-normalised to 1, as
    in `load_spoken_digits`.

    The result is cached as one `.npz` file in `cache_dir`, keyed by all the
    arguments except `cache_dir` and `verbose`; later calls read it back
    without running the synthesiser. A cache written by another version of
    the synthesiser or its voices is not detected: delete the file to
    rebuild it.

    Args:
        synthesiser: str. `"flite"` or `"festival"`. Defaults to `"flite"`.
        sample_rate: int. Sample rate of the returned audio, in Hz.
            Defaults to `8000`.
        num_samples: int. Length of every clip, in samples. Defaults to
            `8000` (one second at 8 kHz).
        voices: optional list of the synthesiser's voice names, such as
            `"slt"` (flite) or `"kal_diphone"` (festival). A single string
            is one voice. Defaults to `None`: `DEFAULT_VOICES[synthesiser]`.
        stretches: list of positive floats. Duration factors: above 1 is
            slower speech. Defaults to `(0.8, 1.0, 1.25)`.
        pitches: list of mean pitches in Hz, `None` for the voice's own.
            Defaults to `(None, 90.0, 160.0)`.
        cache_dir: optional directory of the cache file. Defaults to the
            environment variable `MMZOO_CACHE_DIR` if set, else
            `~/.keras/datasets/mmzoo/`.
        verbose: bool. Whether to show a progress bar while synthesising.
            Defaults to `True`.
        peak_normalise: bool. Whether to scale each clip to a peak of 1;
            `False` keeps the synthesiser's level. Defaults to `True`.

    Returns:
        A tuple `(waves, labels, speakers)`: `waves` is a `float32` array of
        shape `(n, num_samples)` in `[-1, 1]`, `labels` an `int32` array of
        the digits, `speakers` an array of strings naming each clip's
        synthesiser and voice (such as `"flite-slt"` or
        `"festival-kal_diphone"`), for splitting by speaker. The clips are
        ordered by digit, then voice, stretch and pitch.

    Raises:
        FileNotFoundError: if the synthesiser is not installed and the set
            is not cached; the message names the Debian packages.
        RuntimeError: if the synthesiser fails; the message holds the
            command and its error output.
        ValueError: on an unknown synthesiser, an unknown voice (the message
            lists the installed ones), other invalid arguments, or a corrupt
            cache file.

    Example:
    ```python
    waves, labels, speakers = mmzoo.datasets.load_synthesised_digits(
        "flite", voices=["kal", "slt"], stretches=[1.0], pitches=[None]
    )
    waves.shape, labels[:3], speakers[:3]
    # ((20, 8000), [0, 0, 1], ["flite-kal", "flite-slt", "flite-kal"])
    ```
    """
    if synthesiser not in SYNTHESISERS:
        raise ValueError(
            f"Unknown synthesiser {synthesiser!r}; known: "
            f"{', '.join(SYNTHESISERS)}."
        )
    sample_rate = spoken_digits._positive_int("sample_rate", sample_rate)
    num_samples = spoken_digits._positive_int("num_samples", num_samples)
    voices = _check_voices(synthesiser, voices)
    stretches = _check_stretches(stretches)
    pitches = _check_pitches(pitches)
    peak_normalise = bool(peak_normalise)
    specs = _specs(synthesiser, voices, stretches, pitches)

    config = {
        "version": _CACHE_VERSION,
        "synthesiser": synthesiser,
        "sample_rate": sample_rate,
        "num_samples": num_samples,
        "voices": voices,
        "stretches": stretches,
        "pitches": pitches,
        "peak_normalise": peak_normalise,
        "words": list(DIGIT_WORDS),
    }
    key = hashlib.sha256(
        json.dumps(config, sort_keys=True).encode("utf-8")
    ).hexdigest()[:16]
    cache_path = os.path.join(
        file_cache.cache_dir("datasets", cache_dir),
        f"synthesised_digits_{synthesiser}_{key}.npz",
    )
    if os.path.exists(cache_path):
        return _read_cache(cache_path, len(specs), num_samples)

    executable = _find_executable(synthesiser)
    _check_installed_voices(synthesiser, executable, voices)
    waves = _synthesise_all(
        executable, specs, sample_rate, num_samples, peak_normalise, verbose
    )
    labels = np.array([spec["digit"] for spec in specs], dtype=np.int32)
    speakers = np.array(
        [f"{synthesiser}-{spec['voice']}" for spec in specs], dtype=np.str_
    )
    file_cache.write_npz_or_warn(
        cache_path,
        "synthesised-digits",
        waves=waves,
        labels=labels,
        speakers=speakers,
        config=np.array(json.dumps(config, sort_keys=True)),
    )
    return waves, labels, speakers


def _check_voices(synthesiser, voices):
    if voices is None:
        return list(DEFAULT_VOICES[synthesiser])
    if isinstance(voices, str):
        voices = [voices]
    voices = list(voices)
    if not voices:
        raise ValueError("`voices` must name at least one voice; got [].")
    for voice in voices:
        if not isinstance(voice, str) or not _VOICE_PATTERN.match(voice):
            raise ValueError(
                f"Each entry of `voices` must be a {synthesiser} voice name "
                f"such as {DEFAULT_VOICES[synthesiser][0]!r}; got {voice!r}."
            )
    if len(set(voices)) != len(voices):
        raise ValueError(f"`voices` has duplicates: {voices}.")
    return voices


def _is_number(value):
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float, np.integer, np.floating))
        and math.isfinite(value)
        and value > 0
    )


def _as_list(values):
    """A list of `values`; a lone number or `None` is a list of one."""
    if values is None or _is_number(values) or isinstance(values, str):
        return [values]
    try:
        return list(values)
    except TypeError:
        return [values]


def _check_stretches(stretches):
    stretches = _as_list(stretches)
    if not stretches or not all(_is_number(s) for s in stretches):
        raise ValueError(
            "`stretches` must be a non-empty list of positive numbers (1.0 "
            f"is the voice's own speed); got {stretches!r}."
        )
    return [float(s) for s in stretches]


def _check_pitches(pitches):
    pitches = _as_list(pitches)
    if not pitches or not all(p is None or _is_number(p) for p in pitches):
        raise ValueError(
            "`pitches` must be a non-empty list of positive numbers (mean "
            f"pitch in Hz) or None (the voice's own); got {pitches!r}."
        )
    return [None if p is None else float(p) for p in pitches]


def _takes_pitch(synthesiser, voice):
    """festival's HTS voices make their own pitch and ignore a target."""
    return not (synthesiser == "festival" and voice.endswith("_hts"))


def _specs(synthesiser, voices, stretches, pitches):
    """Every clip's word, voice, stretch and pitch, ordered by digit."""
    specs = []
    for digit, word in enumerate(DIGIT_WORDS):
        for voice in voices:
            voice_pitches = (
                pitches if _takes_pitch(synthesiser, voice) else [None]
            )
            for stretch in stretches:
                for pitch in voice_pitches:
                    specs.append(
                        {
                            "synthesiser": synthesiser,
                            "digit": digit,
                            "word": word,
                            "voice": voice,
                            "stretch": stretch,
                            "pitch": pitch,
                        }
                    )
    return specs


def _find_executable(synthesiser):
    name = EXECUTABLES[synthesiser]
    executable = shutil.which(name)
    if executable is None:
        raise FileNotFoundError(
            f"`load_synthesised_digits({synthesiser!r})` synthesises speech "
            f"with the `{name}` command, which was not found on PATH. "
            "Install it, e.g. on Debian/Ubuntu: apt-get install "
            f"{PACKAGES[synthesiser]}"
        )
    return executable


def _run(command, stdin=None):
    """Runs `command`: its stdout; a failure raises RuntimeError.

    festival reports Scheme errors ("SIOD ERROR") on stderr but exits with
    0, so those fail too.
    """
    try:
        result = subprocess.run(
            command,
            input=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            timeout=_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(
            f"`{' '.join(command)}` did not finish in {_TIMEOUT} s."
        ) from e
    stderr = result.stderr.decode("utf-8", "replace").strip()
    if result.returncode != 0 or "SIOD ERROR" in stderr:
        raise RuntimeError(
            f"`{' '.join(command)}` failed (exit code {result.returncode})"
            + (f": {stderr}" if stderr else ".")
        )
    return result.stdout.decode("utf-8", "replace")


def _installed_voices(synthesiser, executable):
    if synthesiser == "flite":
        # "Voices available: kal awb_time kal16 awb rms slt"
        listing = _run([executable, "-lv"])
        return listing.split(":", 1)[-1].split()
    # "(cmu_us_slt_arctic_hts ked_diphone kal_diphone)"
    listing = _run(
        [executable, "-eval", "(begin (print (voice.list)) (exit 0))"]
    )
    return re.findall(r"[A-Za-z0-9_\-]+", listing)


def _check_installed_voices(synthesiser, executable, voices):
    installed = _installed_voices(synthesiser, executable)
    unknown = [voice for voice in voices if voice not in installed]
    if unknown:
        hint = ""
        if synthesiser == "festival":
            hint = (
                " The default voices come with apt-get install "
                f"{PACKAGES['festival']}."
            )
        raise ValueError(
            f"Unknown {synthesiser} voices {unknown}; installed: "
            f"{', '.join(installed) or 'none'}.{hint}"
        )


def _command(executable, spec, path):
    """The synthesiser command writing `spec`'s clip to `path`."""
    stretch, pitch = spec["stretch"], spec["pitch"]
    if spec["synthesiser"] == "flite":
        command = [executable, "-voice", spec["voice"]]
        command += ["--setf", f"duration_stretch={stretch}"]
        if pitch is not None:
            command += ["--setf", f"int_f0_target_mean={pitch}"]
        return command + ["-t", spec["word"], "-o", path], None
    command = [executable, "-eval", f"(voice_{spec['voice']})"]
    if not _takes_pitch("festival", spec["voice"]):
        # HTS voices ignore Duration_Stretch; hts_engine's speed is its
        # inverse.
        command += [
            "-eval",
            "(set! hts_engine_params (append hts_engine_params "
            f'\'(("-r" {1.0 / stretch!r}))))',
        ]
    else:
        command += ["-eval", f"(Parameter.set 'Duration_Stretch {stretch!r})"]
        if pitch is not None:
            command += [
                "-eval",
                "(set! int_lr_params (cons '(target_f0_mean "
                f"{pitch!r}) int_lr_params))",
            ]
    return command + ["-o", path], spec["word"].encode("utf-8")


def _synthesise_all(
    executable, specs, sample_rate, num_samples, peak_normalise, verbose
):
    with tempfile.TemporaryDirectory() as directory:
        return spoken_digits.synthesise_in_threads(
            lambda i: _synthesise_one(
                executable,
                specs[i],
                os.path.join(directory, f"clip{i}.wav"),
                sample_rate,
                num_samples,
                peak_normalise,
            ),
            len(specs),
            num_samples,
            verbose,
        )


def _synthesise_one(
    executable, spec, path, sample_rate, num_samples, peak_normalise
):
    command, stdin = _command(executable, spec, path)
    _run(command, stdin)
    try:
        with open(path, "rb") as f:
            data = f.read()
        os.remove(path)
    except OSError as e:
        raise RuntimeError(
            f"`{' '.join(command)}` wrote no audio file ({e})."
        ) from e
    if len(data) <= 44:
        raise RuntimeError(f"`{' '.join(command)}` wrote an empty clip.")
    audio, rate = spoken_digits._decode_wav(data)
    audio = spoken_digits._resample(audio, rate, sample_rate)
    audio = spoken_digits._trim_silence(audio, sample_rate)
    if audio.size == 0 or not np.any(audio):
        raise RuntimeError(f"`{' '.join(command)}` produced only silence.")
    audio = spoken_digits._fit_length(audio, num_samples)
    if peak_normalise:
        audio = audio / np.max(np.abs(audio))
    else:
        audio = np.clip(audio, -1.0, 1.0)
    return audio.astype(np.float32)


def _read_cache(path, num_clips, num_samples):
    try:
        return spoken_digits._read_cache(path, num_clips, num_samples)
    except Exception as e:  # noqa: BLE001 - any unreadable file
        raise ValueError(
            f"The synthesised-digits cache file {path!r} is corrupt or "
            f"unreadable ({type(e).__name__}: {e}). Delete it to synthesise "
            "the set again."
        ) from e

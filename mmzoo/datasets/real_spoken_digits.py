"""Real human recordings of the digits 0-9: an EVALUATION-ONLY set.

Four Debian voice-prompt packages hold professional recordings of the digit
words, made for telephone systems (8 kHz): English and Spanish by Allison
Smith, Italian by Carlo Flora, French by "Armelle". They are the one source of
real human speech reachable offline here, so they are kept for evaluation:
never train or tune on them. (Other voice-prompt packages are reserved for an
independent evaluation and are not read.)
"""

import functools
import os
import shutil
import subprocess
import wave

import numpy as np

from mmzoo.datasets.spoken_digits import _fit_length
from mmzoo.datasets.spoken_digits import _resample

# (package, folder, file extension, language, speaker, licence)
SOURCES = (
    (
        "asterisk-core-sounds-en-wav",
        "/usr/share/asterisk/sounds/en_US_f_Allison/digits",
        ".wav",
        "en",
        "Allison Smith (en-US)",
        "CC-BY-SA-3.0",
    ),
    (
        "asterisk-core-sounds-es-wav",
        "/usr/share/asterisk/sounds/es_MX_f_Allison/digits",
        ".wav",
        "es",
        "Allison Smith (es-MX)",
        "CC-BY-SA-3.0",
    ),
    (
        "asterisk-core-sounds-it-wav",
        "/usr/share/asterisk/sounds/it_IT_m_Carlo/digits",
        ".wav",
        "it",
        "Carlo Flora (it-IT)",
        "CC-BY-3.0",
    ),
    (
        "asterisk-prompt-fr-armelle",
        "/usr/share/asterisk/sounds/fr/digits",
        ".gsm",
        "fr",
        "Armelle (fr-FR), GSM 06.10 coded",
        "permissive, attribution to Michel Gutierrez (see the package's "
        "copyright file)",
    ),
)
SOURCE_RATE = 8000


def load_real_spoken_digits(sample_rate=16000, num_samples=None):
    """Loads 40 real recordings of the digits 0-9 (4 speakers, 4 languages).

    FOR EVALUATION ONLY: do not train or tune on these clips.

    Args:
        sample_rate: int. Rate to resample to (the recordings are 8 kHz
            telephone audio).
        num_samples: int or `None`. If set, every clip is centred in (or
            trimmed to) this many samples and the waveforms come back as
            one array; if `None`, a list of arrays of their own lengths.

    Returns:
        A dict with `"audio"` (float32 waveforms in [-1, 1]), `"labels"`
        (int32 digits, `(40,)`), `"languages"` and `"speakers"` (string
        arrays), and `"sources"`, one dict per package with its name,
        speaker, language and licence.

    Raises:
        FileNotFoundError: naming the Debian packages when a recording is
            missing.
        RuntimeError: when `sox` (needed for the GSM-coded French clips)
            is missing or fails.

    Example:
    ```python
    data = mmzoo.datasets.load_real_spoken_digits(num_samples=32000)
    data["audio"].shape, data["labels"][:10]  # (40, 32000), [0 1 ... 9]
    ```
    """
    clips, labels, languages, speakers = _load(int(sample_rate))
    clips = [c.copy() for c in clips]
    if num_samples is not None:
        clips = np.stack([_fit_length(c, int(num_samples)) for c in clips])
    return {
        "audio": clips,
        "labels": np.array(labels, "int32"),
        "languages": np.array(languages),
        "speakers": np.array(speakers),
        "sources": [
            {
                "package": package,
                "language": language,
                "speaker": speaker,
                "licence": licence,
            }
            for package, _, _, language, speaker, licence in SOURCES
        ],
    }


def accuracy_per_speaker(correct, speakers):
    """`{speaker: accuracy}` (rounded to 4 places, sorted by speaker) of a
    boolean array `correct` over the clips, given each clip's speaker."""
    speakers = np.asarray(speakers)
    return {
        str(s): round(float(np.mean(correct[speakers == s])), 4)
        for s in np.unique(speakers)
    }


@functools.lru_cache(maxsize=4)
def _load(sample_rate):
    missing = [
        package
        for package, folder, ext, *_ in SOURCES
        if not os.path.isfile(os.path.join(folder, "0" + ext))
    ]
    if missing:
        raise FileNotFoundError(
            "The real spoken digits come from Debian packages that are not "
            f"installed: {missing}. Install them with `apt-get install "
            f"{' '.join(missing)}`."
        )
    clips, labels, languages, speakers = [], [], [], []
    for package, folder, ext, language, speaker, _ in SOURCES:
        for digit in range(10):
            path = os.path.join(folder, f"{digit}{ext}")
            audio = _read_gsm(path) if ext == ".gsm" else _read_wav(path)
            clips.append(
                _resample(audio, SOURCE_RATE, sample_rate).astype("float32")
            )
            labels.append(digit)
            languages.append(language)
            speakers.append(speaker)
    return tuple(clips), labels, languages, speakers


def _read_wav(path):
    with wave.open(path, "rb") as f:
        if f.getsampwidth() != 2 or f.getnchannels() != 1:
            raise ValueError(f"{path}: expected 16-bit mono PCM.")
        if f.getframerate() != SOURCE_RATE:
            raise ValueError(f"{path}: expected {SOURCE_RATE} Hz.")
        raw = f.readframes(f.getnframes())
    return np.frombuffer(raw, "<i2").astype("float32") / 32768.0


def _read_gsm(path):
    sox = shutil.which("sox")
    if sox is None:
        raise RuntimeError(
            f"Decoding {path} (GSM 06.10) needs sox: `apt-get install sox`."
        )
    result = subprocess.run(
        [sox, "-R", path, "-t", "raw", "-e", "signed-integer", "-b", "16", "-"],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"sox could not decode {path}: {result.stderr!r}")
    return np.frombuffer(result.stdout, "<i2").astype("float32") / 32768.0

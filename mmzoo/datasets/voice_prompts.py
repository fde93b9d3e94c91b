"""Telephone voice prompts with transcripts: an EVALUATION-ONLY speech set.

Asterisk's core voice prompts ("Please enter your password followed by the
pound key.") are professional recordings, 8 kHz 16-bit mono, of the same few
hundred prompts in several languages: US English and Mexican Spanish by
Allison Smith, Italian by Carlo Flora. Debian ships the audio in
`asterisk-core-sounds-XX-wav` and the transcripts in `asterisk-core-sounds-XX`
(`core-sounds-XX.txt.gz`, one `name: text` line per prompt). Prompts share
their names across languages, so the set gives speech recognition references
and, name by name, translation references. Real human speech is scarce
offline here, so these recordings are kept for evaluation: never train or
tune on them. (Other voice-prompt packages are reserved for an independent
evaluation and are not read.)
"""

import gzip
import hashlib
import io
import json
import os
import re
import warnings
import wave

import numpy as np

from mmzoo.utils import file_cache
from mmzoo.utils import resampling

LANGUAGES = ("en", "es", "it")
SOURCE_RATE = 8000
SOURCES = {
    "en": {
        "audio_package": "asterisk-core-sounds-en-wav",
        "audio_dir": "/usr/share/asterisk/sounds/en_US_f_Allison",
        "transcript_package": "asterisk-core-sounds-en",
        "transcript_file": "/usr/share/doc/asterisk-core-sounds-en/"
        "core-sounds-en.txt.gz",
        "speaker": "Allison Smith (en-US)",
        "licence": "CC-BY-SA-3.0",
    },
    "es": {
        "audio_package": "asterisk-core-sounds-es-wav",
        "audio_dir": "/usr/share/asterisk/sounds/es_MX_f_Allison",
        "transcript_package": "asterisk-core-sounds-es",
        "transcript_file": "/usr/share/doc/asterisk-core-sounds-es/"
        "core-sounds-es.txt.gz",
        "speaker": "Allison Smith (es-MX)",
        "licence": "CC-BY-SA-3.0",
    },
    "it": {
        "audio_package": "asterisk-core-sounds-it-wav",
        "audio_dir": "/usr/share/asterisk/sounds/it_IT_m_Carlo",
        "transcript_package": "asterisk-core-sounds-it",
        "transcript_file": "/usr/share/doc/asterisk-core-sounds-it/"
        "core-sounds-it.txt.gz",
        "speaker": "Carlo Flora (it-IT)",
        "licence": "CC-BY-3.0",
    },
}

# Bump when reading, filtering or resampling changes, so old caches are not
# used.
_CACHE_VERSION = 1
# Any bracket marks an annotation, not speech: "[ascending tones]",
# "(10 seconds of silence)", "<beep ascending>", "at [@]", "Il [suo]
# messaggio", "(nota: non dice "2")".
_BRACKETS = re.compile(r"[\[\]()<>]")
_LINE = re.compile(r"^([A-Za-z0-9_\-]+(?:/[A-Za-z0-9_\-]+)*):(.*)$")


def load_voice_prompts(
    language, translate_to=None, sample_rate=16000, cache_dir=None
):
    """Loads Asterisk's recorded voice prompts and their transcripts.

    FOR EVALUATION ONLY: do not train or tune on these recordings.

    `language` is `"en"` (US English, Allison Smith), `"es"` (Mexican
    Spanish, Allison Smith) or `"it"` (Italian, Carlo Flora). The recordings
    are 8 kHz 16-bit mono telephone audio (`SOURCE_RATE`), resampled to
    `sample_rate` with `mmzoo.utils.resampling.resample` (polyphase) and
    clipped to [-1, 1] (the filter overshoots a full-scale peak by about
    1 %). A clip of `n` samples becomes `ceil(n * sample_rate / 8000)`.

    A prompt is kept when its transcript line is usable and its audio file
    exists. Left out: transcripts holding any bracket (`[ ]`, `( )`,
    `< >`): whole ones are non-speech (`[ascending tones]`,
    `(10 seconds of silence)`), partial ones are notes or optional words
    whose speech is uncertain (`at [@]`, `Il [suo] messaggio`); empty
    transcripts; names listed twice with different transcripts (Spanish
    `digits/0` is listed as "cero" and as "diez"); and names without a
    `.wav` of exactly that name. Transcripts are kept as written, runs of
    spaces made one (numerals, "#" and "*" are not spelled out; the Spanish
    ones are mostly written without accents); `mmzoo.metrics.normalize_text`
    is the normalisation to score them with.

    The resampled clips are cached as one `.npz` file in `cache_dir`, keyed
    by the language, the rate and the SHA-256 of the transcript file and of
    every audio file read, so a changed package builds a new cache. A cache
    file that cannot be read or does not hold exactly the prompts, lengths
    and content hash expected is rebuilt and replaced, with a warning.

    Args:
        language: str. `"en"`, `"es"` or `"it"`.
        translate_to: optional str, another of `"en"`, `"es"`, `"it"`. If
            set, only the prompts whose name also has a usable transcript
            in that language are returned (its audio is not needed), with
            that transcript as the translation reference.
        sample_rate: int. Rate of the returned audio, in Hz. Defaults to
            `16000`.
        cache_dir: optional directory of the cache file. Defaults to the
            environment variable `MMZOO_CACHE_DIR` if set, else
            `~/.keras/datasets/mmzoo/`.

    Returns:
        A dict, prompts sorted by name: `"audio"`, a list of `float32`
        waveforms in [-1, 1] of their own lengths; `"transcripts"` and
        `"names"` (e.g. `"vm-goodbye"`, `"digits/7"`), string arrays;
        `"translations"` (only with `translate_to`), a string array;
        `"language"`, `"translate_to"`, `"sample_rate"`; and `"source"`, a
        dict with the packages, speaker and licence (CC-BY-SA-3.0 for
        English and Spanish, CC-BY-3.0 for Italian).

    Raises:
        ValueError: on an unknown `language` or `translate_to`, a bad
            `sample_rate`, or a transcript or audio file that is not in the
            expected format.
        FileNotFoundError: naming the Debian package to install when the
            transcripts or the audio are missing.

    Example:
    ```python
    data = mmzoo.datasets.load_voice_prompts("es", translate_to="en")
    data["names"][0], data["transcripts"][0], data["translations"][0]
    # ('agent-alreadyon', 'Ese agente ya ha sido autenticado. ...',
    #  'That agent is already logged on. Please enter ...')
    data["audio"][0].dtype  # float32, 16 kHz
    ```
    """
    language = _check_language("language", language)
    if translate_to is not None:
        translate_to = _check_language("translate_to", translate_to)
        if translate_to == language:
            raise ValueError(
                f"`translate_to` must differ from `language`; both are "
                f"{language!r}."
            )
    sample_rate = resampling.check_rate(sample_rate)
    source = SOURCES[language]
    entries, transcript_sha = _read_transcripts(language)
    targets = _read_transcripts(translate_to)[0] if translate_to else None
    names, transcripts, audio = _load(
        language, entries, transcript_sha, sample_rate, cache_dir
    )
    keep = [
        i for i, name in enumerate(names) if targets is None or name in targets
    ]
    data = {
        "audio": [audio[i].copy() for i in keep],
        "transcripts": np.array([transcripts[i] for i in keep], dtype=np.str_),
        "names": np.array([names[i] for i in keep], dtype=np.str_),
    }
    if targets is not None:
        data["translations"] = np.array(
            [targets[names[i]] for i in keep], dtype=np.str_
        )
    data.update(
        language=language,
        translate_to=translate_to,
        sample_rate=sample_rate,
        source={
            "audio_package": source["audio_package"],
            "transcript_package": source["transcript_package"],
            "speaker": source["speaker"],
            "licence": source["licence"],
        },
    )
    return data


def _missing(language, what, path, package):
    return FileNotFoundError(
        f"The {language!r} voice-prompt {what} ({path}) are missing: "
        f"install the Debian package {package} (`apt-get install "
        f"{package}`)."
    )


def _read_transcripts(language):
    """`({name: transcript}, sha256 of the file)` of a language's usable
    transcripts (see `load_voice_prompts` for what is left out)."""
    source = SOURCES[language]
    path = source["transcript_file"]
    if not os.path.isfile(path):
        raise _missing(
            language, "transcripts", path, source["transcript_package"]
        )
    with open(path, "rb") as f:
        raw = f.read()
    return _parse_transcripts(raw, path)


def _check_language(argument, language):
    if not isinstance(language, str) or language not in LANGUAGES:
        raise ValueError(
            f"`{argument}` must be one of {list(LANGUAGES)}. Received: "
            f"{language!r}"
        )
    return language


def _parse_transcripts(raw, path):
    """`({name: transcript}, sha256)` of a gzipped transcript file."""
    try:
        text = gzip.decompress(raw).decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise ValueError(
            f"{path} is not a gzipped UTF-8 transcript file ({e})."
        ) from e
    listed = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ValueError(
                f"{path}, line {number}: expected `name: text`, got "
                f"{line[:60]!r}."
            )
        name, transcript = match.group(1), " ".join(match.group(2).split())
        listed.setdefault(name, set()).add(transcript)
    entries = {}
    for name in sorted(listed):
        (transcript, *others) = listed[name]
        if others or not transcript or _BRACKETS.search(transcript):
            continue
        entries[name] = transcript
    return entries, hashlib.sha256(raw).hexdigest()


def _load(language, entries, transcript_sha, sample_rate, cache_dir):
    """Sorted names, transcripts and resampled clips of the prompts with
    audio, from the cache if it holds exactly this build."""
    source = SOURCES[language]
    audio_dir = source["audio_dir"]
    if not os.path.isdir(audio_dir):
        raise _missing(
            language, "recordings", audio_dir, source["audio_package"]
        )
    names, transcripts, frames = [], [], []
    digest = hashlib.sha256()
    for name in sorted(entries):
        path = os.path.join(audio_dir, name + ".wav")
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        digest.update(f"{name}\n{len(data)}\n".encode())
        digest.update(data)
        names.append(name)
        transcripts.append(entries[name])
        frames.append(_read_wav(path, data))
    if not names:
        raise FileNotFoundError(
            f"No {language!r} voice prompt has both a transcript and a .wav "
            f"in {audio_dir}: reinstall {source['audio_package']} and "
            f"{source['transcript_package']}."
        )
    config = {
        "version": _CACHE_VERSION,
        "language": language,
        "sample_rate": sample_rate,
        "source_rate": SOURCE_RATE,
        "transcripts_sha256": transcript_sha,
        "audio_sha256": digest.hexdigest(),
    }
    key = hashlib.sha256(
        json.dumps(config, sort_keys=True).encode()
    ).hexdigest()[:16]
    cache_path = os.path.join(
        file_cache.cache_dir("datasets", cache_dir),
        f"voice_prompts_{language}_{sample_rate}hz_{key}.npz",
    )
    lengths = [-(-(len(f) // 2) * sample_rate // SOURCE_RATE) for f in frames]
    if os.path.exists(cache_path):
        try:
            clips = _read_cache(cache_path, config, names, lengths)
            return names, transcripts, clips
        except Exception as e:  # noqa: BLE001 - any unusable file is rebuilt
            warnings.warn(
                f"The voice-prompts cache file {cache_path!r} is unusable "
                f"({type(e).__name__}: {e}); building it again to replace "
                "it.",
                stacklevel=3,
            )
    clips = []
    for pcm in frames:
        wave_ = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
        clip = resampling.resample(wave_, SOURCE_RATE, sample_rate)
        clips.append(np.clip(clip, -1.0, 1.0).astype(np.float32, copy=False))
    _check_clips(clips, lengths)
    audio = np.concatenate(clips)
    file_cache.write_npz_or_warn(
        cache_path,
        "voice-prompts",
        audio=audio,
        lengths=np.array(lengths, dtype=np.int64),
        names=np.array(names, dtype=np.str_),
        info=np.array(
            json.dumps(
                {"config": config, "sha256": _content_hash(audio)},
                sort_keys=True,
            )
        ),
    )
    return names, transcripts, clips


def _read_wav(path, data):
    """The 16-bit PCM frames of a prompt's `.wav` bytes, checked."""
    try:
        with wave.open(io.BytesIO(data), "rb") as f:
            params = f.getparams()
            frames = f.readframes(params.nframes)
    except (wave.Error, EOFError) as e:
        raise ValueError(f"{path} is not a readable WAV file ({e}).") from e
    if (params.sampwidth, params.nchannels, params.framerate) != (
        2,
        1,
        SOURCE_RATE,
    ):
        raise ValueError(
            f"{path}: expected 16-bit mono PCM at {SOURCE_RATE} Hz; got "
            f"{8 * params.sampwidth}-bit, {params.nchannels} channel(s), "
            f"{params.framerate} Hz."
        )
    if len(frames) < 2:
        raise ValueError(f"{path} holds no audio.")
    return frames


def _check_clips(clips, lengths):
    """A build that is not as expected is an error, never a cache."""
    for clip, length in zip(clips, lengths):
        if clip.shape != (length,) or not np.all(np.isfinite(clip)):
            raise ValueError(
                f"A resampled prompt has shape {clip.shape}, expected "
                f"({length},), or non-finite samples."
            )


def _content_hash(audio):
    return hashlib.sha256(
        np.ascontiguousarray(audio, dtype="<f4").tobytes()
    ).hexdigest()


def _read_cache(path, config, names, lengths):
    with np.load(path, allow_pickle=False) as data:
        audio = data["audio"]
        cached_lengths = data["lengths"].tolist()
        cached_names = data["names"].tolist()
        info = json.loads(str(data["info"]))
    if info.get("config") != config:
        raise ValueError("it records another build configuration")
    if cached_names != names or cached_lengths != lengths:
        raise ValueError("it does not hold the expected prompts and lengths")
    if audio.dtype != np.float32 or audio.shape != (sum(lengths),):
        raise ValueError(
            f"its audio has dtype {audio.dtype} and shape {audio.shape}; "
            f"expected float32 and ({sum(lengths)},)"
        )
    if _content_hash(audio) != info.get("sha256"):
        raise ValueError("its audio does not match the hash it records")
    if np.abs(audio).max() > 1.0:
        raise ValueError("its audio is not in [-1, 1]")
    return np.split(audio, np.cumsum(lengths)[:-1])

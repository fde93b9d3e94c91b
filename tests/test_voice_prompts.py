import gzip
import os
import re
import wave

import keras
import numpy as np
import pytest

from mmzoo.datasets import load_voice_prompts
from mmzoo.datasets import voice_prompts
from mmzoo.metrics import bleu
from mmzoo.metrics import chrf
from mmzoo.metrics import normalize_text
from mmzoo.metrics import word_error_rate

# Loading the data is backend-independent: checked once.
data_test = pytest.mark.skipif(
    keras.config.backend() != "tensorflow",
    reason="backend-independent data checks; run once, under tensorflow",
)
_BRACKET = re.compile(r"[\[\]()<>]")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """The three languages at their own 8 kHz (no resampling), cached in a
    fresh directory, and Spanish paired with English."""
    if keras.config.backend() != "tensorflow":
        pytest.skip("backend-independent data checks")
    cache = str(tmp_path_factory.mktemp("voice_prompts_cache"))
    sets = {
        language: load_voice_prompts(
            language, sample_rate=8000, cache_dir=cache
        )
        for language in voice_prompts.LANGUAGES
    }
    sets["es-en"] = load_voice_prompts(
        "es", translate_to="en", sample_rate=8000, cache_dir=cache
    )
    return sets


def _words(text):
    return len(normalize_text(text).split())


@data_test
def test_counts_per_language_and_pairs(real):
    counts = {key: len(data["names"]) for key, data in real.items()}
    pairs = real["es-en"]
    long_pairs = sum(
        _words(es) >= 3 and _words(en) >= 3
        for es, en in zip(pairs["transcripts"], pairs["translations"])
    )
    minutes = {
        language: round(sum(map(len, real[language]["audio"])) / 8000 / 60, 1)
        for language in voice_prompts.LANGUAGES
    }
    print(
        f"prompts {counts}, es/en pairs of >= 3 words: {long_pairs}, "
        f"minutes {minutes}"
    )
    # Measured on Debian's asterisk-core-sounds-* 1.6.1-1.
    assert counts == {"en": 540, "es": 475, "it": 557, "es-en": 438}
    assert long_pairs == 221
    assert minutes == {"en": 24.0, "es": 28.8, "it": 20.9}
    for language in voice_prompts.LANGUAGES:
        data = real[language]
        assert len(data["audio"]) == len(data["transcripts"]) == len(
            data["names"]
        )
        assert data["language"] == language and data["sample_rate"] == 8000
        assert data["translate_to"] is None and "translations" not in data
        assert data["source"]["licence"] and data["source"]["speaker"]


@data_test
def test_known_prompts_and_translations(real):
    en = dict(zip(real["en"]["names"], real["en"]["transcripts"]))
    es = dict(zip(real["es"]["names"], real["es"]["transcripts"]))
    it = dict(zip(real["it"]["names"], real["it"]["transcripts"]))
    assert en["agent-loginok"] == "Agent logged in."
    assert es["agent-loginok"] == "Agente conectado"
    assert it["agent-loginok"] == "operatore connesso"
    # Whitespace inside a transcript is collapsed.
    assert en["agent-alreadyon"] == (
        "That agent is already logged on. Please enter your agent number "
        "followed by the pound key."
    )
    pairs = dict(zip(real["es-en"]["names"], real["es-en"]["translations"]))
    assert pairs["digits/7"] == "seven" and es["digits/7"] == "siete"
    assert pairs["agent-loginok"] == en["agent-loginok"]
    # Only prompts with a usable transcript in both languages.
    assert set(real["es-en"]["names"]) == set(es) & set(en)
    assert real["es-en"]["translate_to"] == "en"
    # Spanish lists digits/0 twice ("cero" and "diez"): left out.
    assert "digits/0" not in es and "digits/0" in en


@data_test
def test_no_bracketed_or_empty_transcripts_and_sorted_names(real):
    for data in real.values():
        texts = list(data["transcripts"]) + list(data.get("translations", []))
        assert all(t.strip() and not _BRACKET.search(t) for t in texts)
        names = list(data["names"])
        assert names == sorted(names) and len(set(names)) == len(names)
    for name in ("ascending-2tone", "beep", "silence/1", "letters/at"):
        assert name not in real["en"]["names"]
    # A transcript without its .wav ("pls-try-call-later") is left out.
    assert "pls-try-call-later" not in real["en"]["names"]


@data_test
def test_audio_is_float32_in_range_and_resampled(real, tmp_path):
    for language in voice_prompts.LANGUAGES:
        for clip in real[language]["audio"]:
            assert clip.dtype == np.float32 and clip.ndim == 1
            assert clip.size > 0 and np.abs(clip).max() <= 1.0
    # Speech, not silence: a whole prompt is louder than -40 dBFS RMS.
    rms = [np.sqrt(np.mean(c**2)) for c in real["it"]["audio"]]
    assert np.median(rms) > 0.01
    # 16 kHz: twice the 8 kHz samples, the even ones close to the source.
    it16 = load_voice_prompts("it", cache_dir=str(tmp_path))
    assert it16["sample_rate"] == 16000
    assert list(it16["names"]) == list(real["it"]["names"])
    for clip16, clip8 in zip(it16["audio"][:50], real["it"]["audio"][:50]):
        assert clip16.dtype == np.float32 and clip16.size == 2 * clip8.size
        assert np.abs(clip16).max() <= 1.0
        assert np.corrcoef(clip16[::2], clip8)[0, 1] > 0.95


@data_test
@pytest.mark.parametrize(
    "kwargs",
    [
        {"language": "fr"},
        {"language": "EN"},
        {"language": None},
        {"language": "es", "translate_to": "de"},
        {"language": "es", "translate_to": "es"},
        {"language": "es", "sample_rate": 0},
    ],
)
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError, match="language|translate_to|sample_rate"):
        load_voice_prompts(**kwargs)


@data_test
def test_missing_packages_are_named(monkeypatch, tmp_path):
    missing = str(tmp_path / "missing")
    monkeypatch.setitem(voice_prompts.SOURCES["es"], "transcript_file", missing)
    with pytest.raises(FileNotFoundError, match="asterisk-core-sounds-es`"):
        load_voice_prompts("es")
    with pytest.raises(FileNotFoundError, match="asterisk-core-sounds-es`"):
        load_voice_prompts("en", translate_to="es")
    monkeypatch.setitem(voice_prompts.SOURCES["it"], "audio_dir", missing)
    with pytest.raises(FileNotFoundError, match="asterisk-core-sounds-it-wav"):
        load_voice_prompts("it")


def _write_wav(path, samples):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(8000)
        f.writeframes(np.asarray(samples, "<i2").tobytes())


@pytest.fixture
def fake_it(monkeypatch, tmp_path):
    """A tiny Italian set: one prompt for each rule."""
    audio_dir = str(tmp_path / "sounds")
    t = np.arange(800) / 8000.0
    for i, name in enumerate(
        ["a-prompt", "b-prompt", "tone", "quiet", "dup", "same", "sub/dir",
         "case", "empty"]
    ):
        tone = 16000 * np.sin(2 * np.pi * (200 + 50 * i) * t[: 400 + 40 * i])
        _write_wav(os.path.join(audio_dir, name + ".wav"), tone)
    lines = [
        "; a comment",
        "",
        "b-prompt: Hello there, world.",
        "a-prompt: Second   prompt ",
        "tone: [ascending tones]",
        "quiet: (1 second of silence)",
        "dup: one",
        "dup: two",
        "same: twice",
        "same: twice",
        "empty:",
        "noaudio: No audio here",
        "sub/dir: In a folder",
        "Case: upper",
    ]
    transcripts = str(tmp_path / "core-sounds-it.txt.gz")
    with open(transcripts, "wb") as f:
        f.write(gzip.compress(("\ufeff" + "\n".join(lines)).encode()))
    monkeypatch.setitem(voice_prompts.SOURCES["it"], "audio_dir", audio_dir)
    monkeypatch.setitem(
        voice_prompts.SOURCES["it"], "transcript_file", transcripts
    )
    return audio_dir, str(tmp_path / "cache")


@data_test
def test_rules_on_a_tiny_set(fake_it):
    _, cache = fake_it
    data = load_voice_prompts("it", sample_rate=8000, cache_dir=cache)
    assert list(data["names"]) == ["a-prompt", "b-prompt", "same", "sub/dir"]
    assert list(data["transcripts"]) == [
        "Second prompt", "Hello there, world.", "twice", "In a folder",
    ]
    assert [c.size for c in data["audio"]] == [400, 440, 600, 640]
    assert np.abs(data["audio"][0]).max() == pytest.approx(16000 / 32768, 1e-3)
    data = load_voice_prompts("it", sample_rate=11025, cache_dir=cache)
    # ceil(n * 11025 / 8000)
    assert [c.size for c in data["audio"]] == [552, 607, 827, 882]


@data_test
def test_bad_transcript_line_is_an_error(fake_it, tmp_path):
    path = voice_prompts.SOURCES["it"]["transcript_file"]
    with open(path, "wb") as f:
        f.write(gzip.compress(b"no colon on this line\n"))
    with pytest.raises(ValueError, match="line 1: expected `name: text`"):
        load_voice_prompts("it", cache_dir=str(tmp_path))


@data_test
def test_cache_is_read_checked_and_rebuilt(fake_it, monkeypatch):
    audio_dir, cache = fake_it
    first = load_voice_prompts("it", cache_dir=cache)
    (cache_file,) = os.listdir(cache)
    assert cache_file.startswith("voice_prompts_it_16000hz_")

    def no_resampling(*args, **kwargs):
        raise AssertionError("built again instead of read from the cache")

    with monkeypatch.context() as m:
        m.setattr(voice_prompts.resampling, "resample", no_resampling)
        cached = load_voice_prompts("it", cache_dir=cache)
    for a, b in zip(first["audio"], cached["audio"]):
        np.testing.assert_array_equal(a, b)
    # A corrupt cache file is rebuilt, with a warning, never used.
    path = os.path.join(cache, cache_file)
    with open(path, "r+b") as f:
        f.seek(200)
        f.write(b"\0" * 64)
    with pytest.warns(UserWarning, match="unusable"):
        rebuilt = load_voice_prompts("it", cache_dir=cache)
    for a, b in zip(first["audio"], rebuilt["audio"]):
        np.testing.assert_array_equal(a, b)
    # Changed audio is another build: a new cache file, the new samples.
    _write_wav(os.path.join(audio_dir, "same.wav"), np.zeros(100))
    changed = load_voice_prompts("it", cache_dir=cache)
    assert len(os.listdir(cache)) == 2
    assert changed["audio"][2].size == 200
    assert not changed["audio"][2].any()


def test_normalisation():
    assert normalize_text("Hello, World!") == normalize_text("hello world")
    assert normalize_text("  Hello,\tWorld! ") == "hello world"
    # Accents kept and composed (NFKC); compatibility forms folded.
    assert normalize_text("Trés") == "trés"
    assert normalize_text("Tre\u0301s") == "trés"
    assert normalize_text("\ufb01ne \uff21BC") == "fine abc"
    assert normalize_text("¿Qué tal? «Bien»…") == "qué tal bien"
    assert normalize_text("l'arrivo") == "l arrivo"
    # Numerals are not spelled out.
    assert normalize_text("press 2") == "press 2"
    with pytest.raises(ValueError, match="str"):
        normalize_text(b"bytes")


def test_word_error_rate():
    # One substitution in four words.
    assert word_error_rate(["the cat sat down"], ["the cat sat up"]) == 0.25
    assert word_error_rate("Hello, World!", "hello world") == 0.0
    # Accents count: one word, wrong.
    assert word_error_rate("trés", "tres") == 1.0
    # Corpus level: 1 error over 6 reference words, not the mean of 1/2, 0.
    assert word_error_rate(
        ["a b", "c d e f"], ["a x", "c d e f"]
    ) == pytest.approx(1 / 6)
    # A deletion and an insertion.
    assert word_error_rate("a b c d", "a c d e") == 0.5
    with pytest.raises(ValueError, match="one hypothesis per reference"):
        word_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="at least one word"):
        word_error_rate(["a", "!"], ["a", "b"])


def test_bleu_and_chrf():
    assert bleu(["The cat sat on the mat."], ["the cat sat on the mat"]) == (
        pytest.approx(100.0)
    )
    # One substituted word in six: n-gram precisions 5/6, 3/5, 2/4, 1/3,
    # no brevity penalty: BLEU = (5/6 * 3/5 * 1/2 * 1/3) ** (1/4).
    assert bleu(["the cat sat on the mat"], ["the cat sat on a mat"]) == (
        pytest.approx(100 * (1 / 12) ** 0.25)
    )
    assert chrf(["Goodbye!"], ["goodbye"]) == pytest.approx(100.0)
    assert 0 < chrf(["the cat sat on the mat"], ["the cat sat on a mat"]) < 100
    assert chrf(["abc"], ["xyz"]) == 0.0
    with pytest.raises(ValueError, match="no references"):
        bleu([], [])

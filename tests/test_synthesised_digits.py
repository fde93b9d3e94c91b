"""The flite/festival digit loader and the room-reverberation augmentation."""

import os
import shutil

import keras
import numpy as np
import pytest

from mmzoo.datasets import audio_augmentation as aug
from mmzoo.datasets import load_synthesised_digits
from mmzoo.datasets import synthesised_digits as module

# Pure numpy and subprocesses: one backend is enough.
pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent; runs on TensorFlow",
)

needs_flite = pytest.mark.skipif(
    shutil.which(module.EXECUTABLES["flite"]) is None,
    reason="flite is not installed (apt-get install flite)",
)
needs_festival = pytest.mark.skipif(
    shutil.which(module.EXECUTABLES["festival"]) is None,
    reason="festival is not installed (apt-get install festival ...)",
)

# A small flite set: two voices, one stretch, two pitches (40 clips).
FLITE_ARGS = {
    "synthesiser": "flite",
    "voices": ("kal", "slt"),
    "stretches": (1.0,),
    "pitches": (None, 120.0),
    "verbose": False,
}


@pytest.fixture(scope="module")
def flite_set(tmp_path_factory):
    """The small flite set, synthesised once into its own cache folder."""
    if shutil.which(module.EXECUTABLES["flite"]) is None:
        pytest.skip("flite is not installed (apt-get install flite)")
    cache = tmp_path_factory.mktemp("flite_cache")
    return cache, load_synthesised_digits(cache_dir=cache, **FLITE_ARGS)


def _cache_files(directory):
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


@needs_flite
def test_flite_shapes_dtypes_and_order(flite_set):
    cache, (waves, labels, speakers) = flite_set
    assert waves.shape == (40, 8000) and waves.dtype == np.float32
    assert labels.dtype == np.int32
    # Ordered by digit, then voice, then pitch.
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 4))
    assert list(speakers[:4]) == ["flite-kal"] * 2 + ["flite-slt"] * 2
    assert np.all(np.isfinite(waves))
    np.testing.assert_allclose(np.abs(waves).max(axis=1), 1.0)
    # The two pitches of a voice are different clips.
    assert not np.array_equal(waves[0], waves[1])
    [name] = _cache_files(cache)
    assert name.startswith("synthesised_digits_flite_")
    assert name.endswith(".npz")


@needs_flite
def test_flite_is_deterministic(flite_set, tmp_path):
    _, (waves, labels, speakers) = flite_set
    again = load_synthesised_digits(cache_dir=tmp_path, **FLITE_ARGS)
    np.testing.assert_array_equal(again[0], waves)
    np.testing.assert_array_equal(again[1], labels)
    np.testing.assert_array_equal(again[2], speakers)


@needs_flite
def test_flite_level_is_kept_without_peak_normalise(tmp_path):
    args = dict(FLITE_ARGS, voices=("kal16",), pitches=(None,))
    normalised = load_synthesised_digits(cache_dir=tmp_path, **args)[0]
    raw = load_synthesised_digits(
        cache_dir=tmp_path, peak_normalise=False, **args
    )[0]
    assert len(_cache_files(tmp_path)) == 2
    peaks = np.abs(raw).max(axis=1)
    assert np.all((peaks > 0) & (peaks < 1))
    np.testing.assert_allclose(normalised, raw / peaks[:, None], atol=1e-6)


@needs_flite
def test_cache_hit_does_not_need_the_executable(flite_set, monkeypatch):
    cache, (waves, labels, speakers) = flite_set
    monkeypatch.setitem(module.EXECUTABLES, "flite", "no-such-flite-here")
    cached = load_synthesised_digits(cache_dir=cache, **FLITE_ARGS)
    np.testing.assert_array_equal(cached[0], waves)
    np.testing.assert_array_equal(cached[1], labels)
    np.testing.assert_array_equal(cached[2], speakers)
    # Other arguments are another set, which needs flite.
    with pytest.raises(FileNotFoundError, match="apt-get install flite"):
        load_synthesised_digits(
            cache_dir=cache, **dict(FLITE_ARGS, stretches=(0.9,))
        )


@needs_flite
def test_corrupt_cache_raises_naming_the_file(flite_set, tmp_path):
    cache, _ = flite_set
    [name] = _cache_files(cache)
    shutil.copy(cache / name, tmp_path / name)
    with open(tmp_path / name, "r+b") as f:
        f.truncate(100)
    with pytest.raises(ValueError, match=f"{name}.*[Dd]elete it"):
        load_synthesised_digits(cache_dir=tmp_path, **FLITE_ARGS)
    # Not rebuilt behind the user's back.
    assert os.path.getsize(tmp_path / name) == 100


@needs_flite
def test_failed_write_warns_returns_data_and_leaves_no_file(
    flite_set, tmp_path, monkeypatch
):
    _, (waves, _, _) = flite_set

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    cache = tmp_path / "cache"
    with pytest.warns(UserWarning, match="Could not write.*disk full"):
        result = load_synthesised_digits(cache_dir=cache, **FLITE_ARGS)
    np.testing.assert_array_equal(result[0], waves)
    assert _cache_files(cache) == []


@pytest.mark.parametrize(
    "synthesiser, package",
    [("flite", "apt-get install flite"), ("festival", "festvox-us-slt-hts")],
)
def test_missing_executable_names_the_package(
    synthesiser, package, tmp_path, monkeypatch
):
    monkeypatch.setitem(module.EXECUTABLES, synthesiser, "no-such-command")
    with pytest.raises(FileNotFoundError, match=package):
        load_synthesised_digits(synthesiser, cache_dir=tmp_path)
    assert _cache_files(tmp_path) == []


def test_synthesiser_failure_raises_with_the_command(tmp_path, monkeypatch):
    if shutil.which("false") is None:
        pytest.skip("no `false` command")
    monkeypatch.setitem(module.EXECUTABLES, "flite", "false")
    with pytest.raises(RuntimeError, match="false -lv` failed"):
        load_synthesised_digits("flite", cache_dir=tmp_path, verbose=False)


@needs_festival
def test_festival_scheme_error_is_a_failure(tmp_path):
    # text2wave exits with 0 on a Scheme error; its stderr tells.
    command = [shutil.which(module.EXECUTABLES["festival"])]
    command += ["-eval", "(voice_nosuchvoice)", "-o", str(tmp_path / "x.wav")]
    with pytest.raises(RuntimeError, match="SIOD ERROR.*voice_nosuchvoice"):
        module._run(command, b"one")


def test_unknown_synthesiser_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="flite, festival"):
        load_synthesised_digits("espeak", cache_dir=tmp_path)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"voices": []},
        {"voices": ["kal", "kal"]},
        {"voices": ["kal; rm"]},
        {"stretches": []},
        {"stretches": [0.0]},
        {"pitches": [-90.0]},
        {"sample_rate": 0},
    ],
)
def test_invalid_arguments(kwargs, tmp_path):
    with pytest.raises(ValueError):
        load_synthesised_digits("flite", cache_dir=tmp_path, **kwargs)


@needs_flite
def test_unknown_flite_voice_lists_the_installed_ones(tmp_path):
    with pytest.raises(ValueError, match="nosuchvoice.*installed:.*slt"):
        load_synthesised_digits(
            "flite", voices=["slt", "nosuchvoice"], cache_dir=tmp_path
        )


@needs_festival
def test_unknown_festival_voice_lists_the_installed_ones(tmp_path):
    with pytest.raises(ValueError, match="nosuchvoice.*installed:"):
        load_synthesised_digits(
            "festival", voices=["nosuchvoice"], cache_dir=tmp_path
        )


@needs_festival
def test_festival_pitch_only_for_voices_that_take_it(tmp_path):
    installed = module._installed_voices(
        "festival", shutil.which(module.EXECUTABLES["festival"])
    )
    voices = [
        v for v in ("kal_diphone", "cmu_us_slt_arctic_hts") if v in installed
    ]
    if len(voices) < 2:
        pytest.skip(
            "needs festvox-kallpc16k and festvox-us-slt-hts; installed: "
            f"{installed}"
        )
    args = {
        "voices": voices,
        "stretches": (1.0,),
        "pitches": (None, 150.0),
        "verbose": False,
    }
    waves, labels, speakers = load_synthesised_digits(
        "festival", cache_dir=tmp_path, **args
    )
    # kal: two pitches; the HTS voice ignores `pitches`: one clip.
    assert waves.shape == (30, 8000) and waves.dtype == np.float32
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 3))
    assert list(speakers[:3]) == [
        "festival-kal_diphone",
        "festival-kal_diphone",
        "festival-cmu_us_slt_arctic_hts",
    ]
    assert not np.array_equal(waves[0], waves[1])
    np.testing.assert_allclose(np.abs(waves).max(axis=1), 1.0)
    again = load_synthesised_digits(
        "festival", cache_dir=tmp_path / "again", **args
    )
    np.testing.assert_array_equal(again[0], waves)


def _burst(num_samples=8000, sample_rate=8000):
    """A 50 ms tone at the start of a silent clip."""
    t = np.arange(num_samples) / sample_rate
    return np.where(t < 0.05, 0.5 * np.sin(2 * np.pi * 440 * t), 0.0)


def test_room_reverb_keeps_length_and_dtype():
    rng = np.random.default_rng(0)
    clip = _burst()
    single = aug.room_reverb(clip, rng, 8000)
    assert single.shape == clip.shape and single.dtype == np.float32
    batch = aug.room_reverb(np.stack([clip, clip[::-1]]), rng, 8000)
    assert batch.shape == (2, 8000) and batch.dtype == np.float32
    assert not np.array_equal(single, clip)


def test_room_reverb_is_deterministic_with_a_seed():
    audio = np.stack([_burst(), 0.5 * _burst()])
    a = aug.room_reverb(audio, np.random.default_rng(7), 8000)
    b = aug.room_reverb(audio, np.random.default_rng(7), 8000)
    c = aug.room_reverb(audio, np.random.default_rng(8), 8000)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_room_reverb_longer_rt60_more_tail_energy():
    clip = _burst()
    tail = slice(int(0.15 * 8000), None)  # 100 ms after the tone ends

    def tail_energy(rt60):
        out = aug.room_reverb(
            clip, np.random.default_rng(0), 8000, rt60=rt60, wet=(1.0, 1.0)
        )
        return float(np.sum(out[tail] ** 2))

    short, long = tail_energy((0.1, 0.1)), tail_energy((0.8, 0.8))
    assert long > 10 * short > 0


def test_room_reverb_zero_in_zero_out_and_peak_at_most_one():
    zeros = np.zeros((3, 4000), np.float32)
    out = aug.room_reverb(zeros, np.random.default_rng(0), 16000)
    np.testing.assert_array_equal(out, zeros)
    loud = np.ones((4, 4000), np.float32)
    out = aug.room_reverb(loud, np.random.default_rng(0), 16000)
    assert np.abs(out).max() <= 1.0
    # Dry only (wet 0) is the clip itself.
    clip = _burst()
    dry = aug.room_reverb(clip, np.random.default_rng(0), 8000, wet=(0, 0))
    np.testing.assert_allclose(dry, clip, atol=1e-7)


def test_room_reverb_rejects_bad_ranges():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="rt60"):
        aug.room_reverb(_burst(), rng, 8000, rt60=(0.0, 0.5))
    with pytest.raises(ValueError, match="wet"):
        aug.room_reverb(_burst(), rng, 8000, wet=(0.5, 1.5))

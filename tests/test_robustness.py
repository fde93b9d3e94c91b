"""Robustness curves (MultiBench's protocol): the corruptions do what they
say at each level, the two robustness scores are MultiBench's, and a curve
of a classifier is its accuracy per level."""

import numpy as np
import pytest
from helpers import raw_batch
from helpers import tiny_classifier

import mmzoo
from mmzoo.metrics import robustness


def images_and_clips(n=8):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, 20, 20, 1)).astype("uint8")
    t = np.arange(8000) / 8000
    # A tone inside the telephone band, one below it, a little noise.
    clip = 0.5 * np.sin(2 * np.pi * 1000 * t) + 0.3 * np.sin(
        2 * np.pi * 100 * t
    )
    clips = clip + 0.01 * rng.standard_normal((n, 8000))
    return {"image": images, "audio": clips.astype("float32")}


@pytest.mark.one_backend  # NumPy only
def test_level_zero_changes_nothing_and_the_others_grow():
    x = images_and_clips()
    for modality, kinds in robustness.CORRUPTIONS.items():
        for corruption in kinds:
            same = robustness.corrupt(x, modality, corruption, 0.0, 8000)
            np.testing.assert_array_equal(same[modality], x[modality])
            changes = []
            for level in (0.2, 0.6, 1.0):
                out = robustness.corrupt(x, modality, corruption, level, 8000)
                assert out[modality].dtype == x[modality].dtype
                assert out[modality].shape == x[modality].shape
                # The other modality is untouched.
                other = "audio" if modality == "image" else "image"
                assert out[other] is x[other]
                diff = out[modality].astype("float64") - x[modality]
                changes.append(np.mean(np.abs(diff)))
            assert changes == sorted(changes) and changes[0] > 0, (
                corruption,
                changes,
            )


@pytest.mark.one_backend  # NumPy only
def test_each_corruption_measures_what_it_claims():
    x = images_and_clips()
    # Occlusion: a black square of the level's share of the area.
    white = {"image": np.full((4, 20, 20, 1), 255, "uint8")}
    out = robustness.corrupt(white, "image", "occlusion", 0.25)["image"]
    np.testing.assert_array_equal((out == 0).mean(axis=(1, 2, 3)), 0.25)
    # Noise at 30 - 40 * level dB: 10 dB at level 0.5.
    clips = x["audio"]
    noisy = robustness.corrupt(x, "audio", "noise", 0.5)["audio"]
    noise = noisy.astype("float64") - clips
    snr = 10 * np.log10(np.mean(clips**2) / np.mean(noise**2))
    assert abs(snr - 10.0) < 0.2, snr
    # The telephone band keeps 1 kHz and removes 100 Hz.
    t = np.arange(8000) / 8000
    low = {"audio": np.sin(2 * np.pi * 100 * t)[None].astype("float32")}
    removed = robustness.corrupt(low, "audio", "telephone_band", 1.0, 8000)
    assert np.abs(removed["audio"]).max() < 1e-3
    tone = {"audio": np.sin(2 * np.pi * 1000 * t)[None].astype("float32")}
    kept = robustness.corrupt(tone, "audio", "telephone_band", 1.0, 8000)
    np.testing.assert_allclose(kept["audio"], tone["audio"], atol=1e-4)
    # Gaussian noise of standard deviation 128 * level on 0-255.
    grey = {"image": np.full((64, 20, 20, 1), 128, "uint8")}
    out = robustness.corrupt(grey, "image", "gaussian_noise", 0.1)["image"]
    assert abs(np.std(out.astype("float64")) - 12.8) < 0.3


@pytest.mark.one_backend  # NumPy only
def test_bad_corruptions_are_refused():
    x = images_and_clips()
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        robustness.corrupt(x, "image", "occlusion", 1.5)
    with pytest.raises(ValueError, match="expected one of"):
        robustness.corrupt(x, "image", "blur", 0.5)
    with pytest.raises(ValueError, match="No corruption for modality"):
        robustness.corrupt(x, "text", "noise", 0.5)
    with pytest.raises(ValueError, match="needs the waveforms' `sample_rate`"):
        robustness.corrupt(x, "audio", "telephone_band", 0.5)
    with pytest.raises(ValueError, match="uint8"):
        robustness.corrupt(
            {"image": x["image"].astype("float32")}, "image", "occlusion", 0.5
        )


@pytest.mark.one_backend  # NumPy only
def test_relative_and_effective_robustness_are_multibenchs():
    levels = robustness.LEVELS
    assert len(levels) == 11 and levels[0] == 0.0 and levels[-1] == 1.0
    assert robustness.relative_robustness([1.0] * 11) == pytest.approx(1.0)
    falling = [1.0 - level for level in levels]
    assert robustness.relative_robustness(falling) == pytest.approx(0.5)
    # MultiBench's trapezoids of width 0.1.
    curve = np.linspace(0.9, 0.3, 11) ** 2
    expected = sum((curve[i] + curve[i + 1]) * 0.1 / 2 for i in range(10))
    assert robustness.relative_robustness(curve) == pytest.approx(expected)
    # The baseline against itself, or shifted: 0. Flatter: positive.
    assert robustness.effective_robustness(falling, falling) == 0.0
    shifted = [a - 0.2 for a in falling]
    assert robustness.effective_robustness(shifted, falling) == pytest.approx(
        0.0
    )
    flat = [0.8] * 11
    assert robustness.effective_robustness(flat, falling) > 0
    with pytest.raises(ValueError, match="same levels"):
        robustness.effective_robustness(flat, falling[:5])


# `predict` on each backend is tested elsewhere: once, on the shortest slot.
@pytest.mark.one_backend("torch")
def test_a_curve_is_the_accuracy_at_each_level(tmp_path):
    classifier = tiny_classifier()
    x, y = raw_batch(16)
    x = {"image": x["image"], "audio": x["audio"]}
    curve = mmzoo.metrics.robustness_curve(
        classifier, x, y, "audio", "noise", levels=(0.0, 1.0), batch_size=8
    )
    clean = classifier.predict(x, verbose=0).argmax(-1)
    assert curve[0] == pytest.approx(np.mean(clean == y))
    noisy = robustness.corrupt(x, "audio", "noise", 1.0)
    predicted = classifier.predict(noisy, verbose=0).argmax(-1)
    assert curve[1] == pytest.approx(np.mean(predicted == y))
    figure = mmzoo.plots.plot_robustness_curves(
        {"audio: noise": {"tiny": curve}}, levels=(0.0, 1.0), chance=0.25
    )
    path = tmp_path / "curves.png"
    figure.savefig(path)
    assert path.read_bytes()[:4] == b"\x89PNG"

import shutil

import keras
import numpy as np
import pytest

from mmzoo.datasets import audio_augmentation as aug

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="numpy only, backend-independent; run once",
)
RATE = 16000


def tone(freqs, seconds=0.5, rate=RATE):
    t = np.arange(int(rate * seconds)) / rate
    return sum(0.2 * np.sin(2 * np.pi * f * t) for f in freqs).astype("float32")


def band_power(x, low, high, rate=RATE):
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / rate)
    return spectrum[(freqs >= low) & (freqs < high)].sum()


def test_gain_and_shift():
    rng = np.random.default_rng(0)
    x = np.tile(tone([440]), (50, 1))
    y = aug.random_gain(x, rng, -12.0, -6.0)
    ratio = np.abs(y).max(axis=1) / np.abs(x).max(axis=1)
    assert np.all(ratio >= 10 ** (-12 / 20) - 1e-6)
    assert np.all(ratio <= 10 ** (-6 / 20) + 1e-6)
    impulse = np.zeros((20, 100), "float32")
    impulse[:, 0] = 1
    shifted = aug.random_shift(impulse, rng, 30)
    positions = shifted.argmax(axis=1)
    assert positions.min() >= 0 and positions.max() <= 30
    assert len(set(positions)) > 5
    assert aug.random_shift(impulse[0], rng, 5).shape == (100,)


def test_noise_at_the_drawn_snr():
    rng = np.random.default_rng(0)
    x = np.tile(tone([440]), (20, 1))
    y = aug.add_noise(x, rng, snr_db=(20.0, 20.0))
    noise = y - x
    snr = 10 * np.log10(np.mean(x**2, axis=1) / np.mean(noise**2, axis=1))
    np.testing.assert_allclose(snr, 20.0, atol=0.5)
    silent = aug.add_noise(np.zeros(100, "float32"), rng)
    np.testing.assert_array_equal(silent, 0)


def test_telephone_band_keeps_300_to_3400_hz():
    x = tone([100, 1000, 6000])
    y = aug.telephone_band(x, RATE)
    assert y.shape == x.shape and y.dtype == np.float32
    kept = band_power(y, 900, 1100) / band_power(x, 900, 1100)
    low = band_power(y, 50, 150) / band_power(x, 50, 150)
    high = band_power(y, 5500, 6500) / band_power(x, 5500, 6500)
    assert kept > 0.8 and low < 0.05 and high < 0.01


@pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox")
def test_gsm_codec_degrades_but_keeps_each_clip_in_place():
    rng = np.random.default_rng(0)
    clips = np.stack([tone([300 + 200 * i]) for i in range(3)])
    clips *= np.hanning(clips.shape[1])[None]
    coded = aug.gsm_codec(clips, RATE)
    assert coded.shape == clips.shape and coded.dtype == np.float32
    for clip, out in zip(clips, coded):
        corr = np.correlate(out, clip, "full")
        lag = corr.argmax() - (clip.size - 1)
        assert abs(lag) <= 2, lag  # not shifted into a neighbour
        similarity = corr.max() / np.linalg.norm(clip) / np.linalg.norm(out)
        assert 0.8 < similarity < 0.9999  # similar, not identical
    single = aug.gsm_codec(clips[0], RATE)
    assert single.shape == clips[0].shape
    del rng


def test_missing_sox_and_bad_shapes(monkeypatch):
    monkeypatch.setattr(aug, "SOX_EXECUTABLE", "no-such-sox")
    with pytest.raises(FileNotFoundError, match="apt-get install sox"):
        aug.gsm_codec(np.zeros((1, 100), "float32"), RATE)
    with pytest.raises(ValueError, match="shape"):
        aug.random_gain(np.zeros((1, 2, 3)), np.random.default_rng(0))


@pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox")
def test_gsm_codec_is_repeatable():
    # sox seeds its dither from the clock unless told otherwise (-R): a
    # data set built with the codec must be the same on every run.
    clips = np.random.default_rng(0).normal(0, 0.1, (3, 4000)).astype("float32")
    first = aug.gsm_codec(clips, RATE)
    for _ in range(3):
        np.testing.assert_array_equal(aug.gsm_codec(clips, RATE), first)

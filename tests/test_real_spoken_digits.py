import keras
import numpy as np
import pytest

from mmzoo.datasets import load_real_spoken_digits
from mmzoo.datasets import real_spoken_digits

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent data checks; run once, under tensorflow",
)


def test_forty_real_clips_with_labels_languages_and_licences():
    data = load_real_spoken_digits(sample_rate=16000)
    assert len(data["audio"]) == 40
    assert data["labels"].tolist() == list(range(10)) * 4
    assert sorted(set(data["languages"])) == ["en", "es", "fr", "it"]
    assert len(set(data["speakers"])) == 4
    for clip in data["audio"]:
        assert clip.dtype == np.float32
        # 0.2 to 1.5 s of speech, not silence, not clipped.
        assert 0.2 * 16000 < clip.size < 1.5 * 16000
        assert 0.01 < np.sqrt(np.mean(clip**2)) and np.abs(clip).max() < 1
    assert all(source["licence"] for source in data["sources"])
    fixed = load_real_spoken_digits(sample_rate=8000, num_samples=12000)
    assert fixed["audio"].shape == (40, 12000)


def test_missing_package_is_named(monkeypatch):
    sources = list(real_spoken_digits.SOURCES)
    sources[2] = (sources[2][0], "/nonexistent") + sources[2][2:]
    monkeypatch.setattr(real_spoken_digits, "SOURCES", tuple(sources))
    real_spoken_digits._load.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="asterisk-core-sounds-it"):
            load_real_spoken_digits()
    finally:
        real_spoken_digits._load.cache_clear()

"""The shipped AV-digits clip digests and split hashes, and the real splits
built against them: on any CPU, through a glitching synthesiser."""

import glob
import json
import os
import shutil
import subprocess
import sys

import keras
import pytest

from mmzoo.datasets import av_digits
from mmzoo.datasets import load_av_digits
from mmzoo.datasets import spoken_digits

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent; runs on TensorFlow",
)
needs_espeak = pytest.mark.skipif(
    shutil.which(spoken_digits.ESPEAK_EXECUTABLE) is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)
PRESETS_DIR = os.path.join(os.path.dirname(__file__), "..", "presets")
# The test split every AV-digits preset was evaluated on.
TEST_SHA256 = "07d0dc96f46247dc19e4bb55a1e042e066799605574aff8d7a56b786dd1c146a"
# numpy >= 2.4 names its x86 dispatch targets by feature group: X86_V4 is
# AVX-512 (F, CD, BW, DQ, VL), AVX512_ICL and AVX512_SPR add to it, X86_V3
# is AVX2 with FMA3. The older names (AVX512F, AVX512_SKX, AVX2) are
# ignored by numpy 2.4, which is why each run checks what it turned off.
WITHOUT_AVX512 = "X86_V4 AVX512_ICL AVX512_SPR"
WITHOUT_AVX2 = "X86_V3 " + WITHOUT_AVX512


def test_shipped_digests_cover_every_split():
    with open(av_digits.DIGESTS_FILE, encoding="utf-8") as f:
        record = json.load(f)
    assert record["espeak_ng"].startswith("1.51")
    sizes = {"train": 8700, "validation": 600, "test": 1500}
    for split, size in sizes.items():
        recorded = av_digits.recorded_digests(split)
        assert recorded is not None, split  # recorded for this configuration
        clips = recorded["clips"]
        assert len(clips) == record["splits"][split]["num_clips"] == size
        assert all(len(c) == 16 and int(c, 16) >= 0 for c in clips)
        # A spec (word, voice, speed, pitch) drawn twice has one digest.
        specs = [
            tuple(spec.values()) for spec in av_digits._clip_specs(split)
        ]
        assert len(set(zip(clips, specs))) == len(set(specs)), split
        # Otherwise clips differ, but for a few specs espeak-ng renders
        # alike (in train: 'un' by fr-fr+m1 and fr-fr+m5 at the same speed
        # and pitch; speeds 172 and 173): no mass of silent or copied clips.
        assert len(set(clips)) >= len(set(specs)) - 10, split
    assert av_digits.recorded_digests("test")["sha256"] == TEST_SHA256
    # Small enough to ship in the package.
    assert os.path.getsize(av_digits.DIGESTS_FILE) < 300_000


def test_every_av_digits_preset_was_evaluated_on_the_recorded_split():
    hashes = {}
    for path in glob.glob(os.path.join(PRESETS_DIR, "*", "metadata.json")):
        with open(path, encoding="utf-8") as f:
            dataset = json.load(f).get("dataset") or {}
        if dataset.get("name") == "av_digits":
            hashes[os.path.basename(os.path.dirname(path))] = dataset.get(
                "test_sha256"
            )
    assert len(hashes) == 12, hashes
    assert set(hashes.values()) == {TEST_SHA256}, hashes


@needs_espeak
@pytest.mark.large
def test_the_test_split_survives_the_measured_glitch(tmp_path, monkeypatch):
    """The clip that once glitched on a fresh machine (the word "zero" by
    en-gb-x-gbclan+f5, speed 164, pitch 51) glitches on its first synthesis;
    the split still comes out with the recorded hash."""
    glitched = {
        "word": "zero",
        "voice": "en-gb-x-gbclan+f5",
        "speed": 164,
        "pitch": 51,
    }
    specs = av_digits._clip_specs("test")
    matches = [s for s in specs if {k: s[k] for k in glitched} == glitched]
    assert len(matches) == 1
    real = spoken_digits._synthesise_one
    calls = []

    def synthesise(executable, spec, sample_rate, num_samples):
        wave = real(executable, spec, sample_rate, num_samples)
        if spec == matches[0]:
            calls.append(len(calls) == 0)
            if calls[-1]:
                # As measured: most of the 8,000 samples differ.
                wave = wave.copy()
                wave[100:7900] = wave[101:7901]
        return wave

    monkeypatch.setattr(spoken_digits, "_synthesise_one", synthesise)
    _, y, info = load_av_digits(
        "test", cache_dir=tmp_path, verbose=False, with_info=True
    )
    assert calls == [True, False]
    assert len(y) == 1500
    assert info["sha256"] == TEST_SHA256 and info["verified"] is True


_BUILD_SCRIPT = """
import json, sys
from numpy._core._multiarray_umath import __cpu_features__ as features
from mmzoo.datasets import load_av_digits
off = sys.argv[2].split()
assert off == [] or not any(features[name] for name in off), off
_, _, info = load_av_digits(
    "validation", cache_dir=sys.argv[1], verbose=False, with_info=True,
    verify=False,
)
print(json.dumps({
    "sha256": info["sha256"],
    "differing": info["clips_differing_from_record"],
    "enabled": sorted(k for k, v in features.items() if v),
}))
"""


@needs_espeak
@pytest.mark.large
@pytest.mark.parametrize("disabled", ["", WITHOUT_AVX512, WITHOUT_AVX2])
def test_cpu_features_do_not_change_the_split(tmp_path, disabled):
    """The validation split (600 clips), built unverified in a process
    whose numpy may not use AVX-512, or neither AVX-512 nor AVX2, is the
    recorded one, clip by clip."""
    env = dict(os.environ, NPY_DISABLE_CPU_FEATURES=disabled)
    env.setdefault("KERAS_BACKEND", keras.backend.backend())
    result = subprocess.run(
        [sys.executable, "-c", _BUILD_SCRIPT, str(tmp_path), disabled],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    built = json.loads(result.stdout.strip().splitlines()[-1])
    for name in disabled.split():
        assert name not in built["enabled"]
    assert built["differing"] == 0
    assert built["sha256"] == av_digits.recorded_digests("validation")[
        "sha256"
    ]


_CLIP_SCRIPT = """
import sys
from mmzoo.datasets import av_digits, spoken_digits
spec = av_digits._clip_specs("train")[6213]
wave = spoken_digits._synthesise_one(
    spoken_digits._find_espeak(), spec, av_digits.SAMPLE_RATE,
    av_digits.NUM_SAMPLES,
)
print(av_digits.clip_digest(wave))
"""


@needs_espeak
@pytest.mark.one_backend
@pytest.mark.parametrize(
    "core", ["SkylakeX", "Haswell", "Sandybridge", "Prescott"]
)
def test_blas_kernels_do_not_change_a_clip(core):
    """Train clip 6213 sits on a float32 rounding edge: with `np.convolve`
    (a BLAS dot product per sample) it came out 3c7a708f5eb4c547 with
    OpenBLAS's SkylakeX kernel and 44dd5a91d9f4c43c with the others."""
    env = dict(os.environ, OPENBLAS_CORETYPE=core)
    env.setdefault("KERAS_BACKEND", keras.backend.backend())
    result = subprocess.run(
        [sys.executable, "-c", _CLIP_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    digest = result.stdout.strip().splitlines()[-1]
    assert digest == av_digits.recorded_digests("train")["clips"][6213]

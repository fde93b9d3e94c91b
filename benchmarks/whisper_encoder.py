"""Time per clip of the Whisper base encoder at 1 s, 3 s and 30 s windows.

`KERAS_BACKEND=jax python benchmarks/whisper_encoder.py [--repeats 5]`

Loads `WhisperAudioEncoder.from_preset("whisper_base_multi")`, computes the
log-mel features once per window (not timed), warms the model up (tracing
and compilation are not timed), then times `predict_on_batch` on batches of
clips and prints a Markdown row per window: milliseconds per clip, and the
cost relative to a 30 s window.
"""

import argparse
import os
import platform
import time

import keras
import numpy as np

import mmzoo

BATCH = {1: 16, 3: 8, 30: 2}


def time_window(encoder, seconds, repeats):
    converter = mmzoo.layers.WhisperAudioConverter(max_audio_length=seconds)
    rng = np.random.default_rng(0)
    audio = 0.1 * rng.normal(size=(BATCH[seconds], 16000 * seconds))
    features = keras.ops.convert_to_numpy(converter(audio.astype("float32")))
    encoder.predict_on_batch(features)  # trace and compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = encoder.predict_on_batch(features)
        keras.ops.convert_to_numpy(out["pooled_output"])  # wait for it
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times)) / BATCH[seconds]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    encoder = mmzoo.models.WhisperAudioEncoder.from_preset("whisper_base_multi")
    results = {s: time_window(encoder, s, args.repeats) for s in BATCH}
    print(
        f"# {keras.backend.backend()}, keras {keras.__version__}, "
        f"{os.cpu_count()} CPU cores, {platform.processor() or 'cpu'}"
    )
    print("| backend | window | batch | ms per clip | vs 30 s |")
    for seconds, ms in results.items():
        print(
            f"| {keras.backend.backend()} | {seconds} s | {BATCH[seconds]} "
            f"| {ms:.0f} | {ms / results[30]:.1%} |"
        )


if __name__ == "__main__":
    main()

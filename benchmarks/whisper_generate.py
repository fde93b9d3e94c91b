"""Whisper base `generate` against CTranslate2: greedy, beam 5, batch 1, 16.

`KERAS_BACKEND=jax python benchmarks/whisper_generate.py [--clips 16]
[--repeats 3]`

The same real English clips (`--clips` Asterisk voice prompts of at most
30 s, every k-th by name, `mmzoo.datasets.load_voice_prompts`; speed only, no
score is computed) are transcribed by mmzoo's `whisper_base_speech_to_text`
preset on the current backend and by CTranslate2 (the same Whisper base
weights, `whisper_base_multi`'s packages, float32), language and task given.
Both go from audio to text token ids: log-mel features (faster-whisper's
extractor for CTranslate2, padded to 30 s as faster-whisper does), then
decoding with Whisper's rules (blank suppressed at the first step, the
non-speech tokens, `<|notimestamps|>`), at most 224 tokens. Beam search:
keras-hub's `BeamSampler(num_beams=5)` (no length penalty) and CTranslate2's
`beam_size=5` (its defaults, length penalty 1), so beam outputs can differ.

Per sampler and batch size, each system runs once untimed (tracing,
compiling), then the clips are timed `--repeats` times, mmzoo and
CTranslate2 alternating; printed: the median seconds per clip, text tokens per
second (tokens generated / time), the ratio mmzoo / CTranslate2, the text
tokens per clip (mmzoo / CTranslate2) and how many clips gave the same
tokens. CTranslate2 runs with `intra_threads` = the cores
and `KMP_BLOCKTIME=0` (set here before it loads: its OpenMP threads would
otherwise spin on the cores the Keras backend needs).
"""

import os

os.environ.setdefault("KMP_BLOCKTIME", "0")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import mmzoo  # noqa: E402

PRESET = "whisper_base_speech_to_text"
SAMPLE_RATE = 16000
SAMPLERS = {"greedy": 1, "beam5": 5}


def clips(count):
    """`count` English prompts of at most one window, evenly spread over
    them by name (every k-th), so short words and long sentences both."""
    data = mmzoo.datasets.load_voice_prompts("en", sample_rate=SAMPLE_RATE)
    audio = [a for a in data["audio"] if len(a) <= 30 * SAMPLE_RATE]
    if len(audio) < count:
        raise ValueError(f"Only {len(audio)} clips; asked for {count}.")
    return audio[:: len(audio) // count][:count]


class Mmzoo:
    """mmzoo's preset: audio batch to text token ids."""

    name = "mmzoo"

    def __init__(self):
        self.model = mmzoo.models.WhisperAudioToText.from_preset(PRESET)

    def set_beams(self, beams):
        sampler = "greedy"
        if beams > 1:
            import keras_hub

            sampler = keras_hub.samplers.BeamSampler(num_beams=beams)
        self.model.compile(sampler=sampler)

    def __call__(self, audio):
        return self.model.generate_windows(list(audio), language="en")


class CTranslate2:
    """CTranslate2's Whisper with faster-whisper's features and prompt."""

    name = "CTranslate2"

    def __init__(self, directory):
        import ctranslate2
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        threads = os.cpu_count()
        self.whisper = WhisperModel(
            directory,
            device="cpu",
            compute_type="float32",
            cpu_threads=threads,
        )
        self.storage = ctranslate2.StorageView.from_array
        tokenizer = Tokenizer(
            self.whisper.hf_tokenizer,
            multilingual=True,
            task="transcribe",
            language="en",
        )
        self.prompt = list(tokenizer.sot_sequence) + [
            tokenizer.no_timestamps
        ]
        self.beams = 1

    def set_beams(self, beams):
        self.beams = beams

    def __call__(self, audio):
        from faster_whisper.audio import pad_or_trim

        extractor = self.whisper.feature_extractor
        # As faster-whisper's transcribe: the last frame dropped, zeros to
        # 30 s.
        features = np.stack(
            [
                pad_or_trim(extractor(np.asarray(a, "float32"))[:, :-1])
                for a in audio
            ]
        )
        results = self.whisper.model.generate(
            self.storage(np.ascontiguousarray(features, "float32")),
            [self.prompt] * len(audio),
            beam_size=self.beams,
            max_length=448,
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        return [list(r.sequences_ids[0]) for r in results]


def run(system, audio, batch):
    """Token ids of every clip, in batches; and the seconds it took."""
    start = time.perf_counter()
    ids = []
    for i in range(0, len(audio), batch):
        ids.extend(system(audio[i : i + batch]))
    return ids, time.perf_counter() - start


def measure(systems, audio, beams, batch, repeats):
    """`({name: (median s per clip, tokens per s, tokens per clip)},
    clips with the same tokens)`."""
    for system in systems:
        system.set_beams(beams)
        run(system, audio[:batch], batch)  # trace, compile, warm up
    times = {system.name: [] for system in systems}
    ids = {}
    for _ in range(repeats):
        for system in systems:
            ids[system.name], seconds = run(system, audio, batch)
            times[system.name].append(seconds)
    out = {}
    for system in systems:
        seconds = float(np.median(times[system.name]))
        tokens = sum(len(row) for row in ids[system.name])
        out[system.name] = (
            seconds / len(audio),
            tokens / seconds,
            tokens / len(audio),
        )
    same = sum(
        list(a) == list(b) for a, b in zip(ids["mmzoo"], ids["CTranslate2"])
    )
    return out, same


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--samplers", nargs="+", choices=list(SAMPLERS), default=list(SAMPLERS)
    )
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    args = parser.parse_args(argv)
    from mmzoo.recipes.whisper_base_multi import ctranslate2_model_dir

    audio = clips(args.clips)
    backend = keras.backend.backend()
    rows = []
    with ctranslate2_model_dir() as directory:
        systems = [Mmzoo(), CTranslate2(directory)]
        for sampler in args.samplers:
            for batch in args.batches:
                out, same = measure(
                    systems, audio, SAMPLERS[sampler], batch, args.repeats
                )
                ours, theirs = out["mmzoo"], out["CTranslate2"]
                rows.append(
                    f"| {backend} | {sampler} | {batch} | {ours[0]:.2f} "
                    f"| {theirs[0]:.2f} | {ours[0] / theirs[0]:.2f} "
                    f"| {ours[1]:.1f} | {theirs[1]:.1f} "
                    f"| {ours[2]:.1f} / {theirs[2]:.1f} "
                    f"| {same}/{len(audio)} |"
                )
                print(rows[-1], flush=True)
    print(
        f"\n# {backend}, keras {keras.__version__}, {os.cpu_count()} CPU "
        f"cores, {platform.processor() or 'cpu'}, {len(audio)} clips, "
        f"median of {args.repeats}, KMP_BLOCKTIME="
        f"{os.environ.get('KMP_BLOCKTIME')}"
    )
    print(
        "| backend | sampler | batch | mmzoo s/clip | CTranslate2 s/clip "
        "| ratio | mmzoo tokens/s | CTranslate2 tokens/s "
        "| tokens per clip | same tokens |"
    )
    print("| --- " * 10 + "|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

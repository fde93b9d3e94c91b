"""Training step time of a shipped preset, compiled and not, per backend.

`KERAS_BACKEND=torch python benchmarks/train_step.py [--preset NAME]`

Fine-tunes `--preset` (default `av_digits_attention`, image + audio, raw
inputs through its preprocessor) on 256 AV-digits validation examples in
batches of 32, with `jit_compile=True` and `False`: the first epoch
(tracing and compiling included) and the median of the next `--epochs`
epochs, per step. On PyTorch it also counts torch.compile's graphs and
recompilations, and says whether a function hit Dynamo's recompile limit
(it then runs that function uncompiled). Prints Markdown rows.
"""

import argparse
import logging
import os
import platform
import time

import keras
import numpy as np

import mmzoo
from mmzoo.datasets import load_av_digits

EXAMPLES = 256
BATCH = 32


class _LimitWatcher(logging.Handler):
    """Notes Dynamo's "hit config.recompile_limit" warnings."""

    def __init__(self):
        super().__init__()
        self.hits = 0

    def emit(self, record):
        if "recompile_limit" in record.getMessage():
            self.hits += 1


def run(preset, jit_compile, epochs):
    model = mmzoo.load(preset)
    x, y = load_av_digits("validation", verbose=False)
    x = {m: x[m][:EXAMPLES] for m in model.backbone.modalities}
    y = y[:EXAMPLES]
    model.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    watcher, torch_counters = None, None
    if keras.backend.backend() == "torch":
        from torch._dynamo.utils import counters

        torch_counters = counters
        counters.clear()
        watcher = _LimitWatcher()
        logging.getLogger("torch._dynamo").addHandler(watcher)
    steps = EXAMPLES // BATCH
    times = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        times.append(time.perf_counter() - start)
    row = {
        "first_epoch_s": times[0],
        "step_ms": 1000 * float(np.median(times[1:])) / steps,
    }
    if torch_counters is not None:
        row["graphs"] = torch_counters["stats"].get("unique_graphs", 0)
        row["limit_hits"] = watcher.hits
        logging.getLogger("torch._dynamo").removeHandler(watcher)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="av_digits_attention")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    backend = keras.backend.backend()
    print(
        f"# {backend}, keras {keras.__version__}, {os.cpu_count()} CPU "
        f"cores, {platform.processor() or 'cpu'}"
    )
    print(
        "| backend | preset | jit_compile | first epoch (s) | step (ms) "
        "| torch graphs | recompile limit hit |"
    )
    for jit_compile in (False, True):
        row = run(args.preset, jit_compile, args.epochs)
        print(
            f"| {backend} | {args.preset} | {jit_compile} "
            f"| {row['first_epoch_s']:.1f} | {row['step_ms']:.0f} "
            f"| {row.get('graphs', '—')} | {row.get('limit_hits', '—')} |"
        )


if __name__ == "__main__":
    main()

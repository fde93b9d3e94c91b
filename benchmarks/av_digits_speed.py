"""`av_digits_attention` on the current backend against its PyTorch twin.

`for b in jax torch tensorflow; do
KERAS_BACKEND=$b python benchmarks/av_digits_speed.py; done`

Times, on the current Keras backend and interleaved with the plain-PyTorch
twin of `benchmarks/av_digits_torch_twin.py` (its weights copied from the
preset and checked equal first), medians of `--repeats` runs after one
untimed run:

- inference from preprocessed inputs (`keras.Model.predict_on_batch`, the
  preprocessor's output; the twin under `torch.inference_mode`) at batch 1,
  64 and 256, in examples per second, and the same through the task's own
  `predict_on_batch` on raw inputs (preprocessing included);
- one training step at batch 64 (`train_on_batch` on preprocessed inputs;
  the twin's forward, backward and Adam update), in ms;
- `mmzoo.load("av_digits_attention")`: the first in the process, after
  imports (the preset's files on disk), and the median of later ones, in s;
- peak memory of inference at batch 256: the process's peak RSS during one
  call above its RSS before it (Linux: `/proc/self/clear_refs` resets the
  peak), in a fresh process per side.

Prints Markdown rows: the backend's, the twin's, and their ratio (the
twin's time over the backend's: above 1 means the backend is faster).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from timing import interleaved_medians  # noqa: E402 (after HERE)

PRESET = "av_digits_attention"


def _median_time(fn, repeats):
    fn()  # untimed: tracing, compiling, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _data(task, n):
    from mmzoo.datasets import load_av_digits

    x, y = load_av_digits("test", verbose=False)
    x = {name: x[name][:n] for name in task.backbone.modalities}
    return x, y[:n]


def peak_memory(side, batch):
    """The growth of peak RSS (MB) from after loading to after one
    inference at `batch`, in this (fresh) process."""
    import keras
    import torch

    import mmzoo
    from av_digits_torch_twin import build_twin
    from av_digits_torch_twin import twin_inputs

    task = mmzoo.load(PRESET)
    x, _ = _data(task, batch)
    preprocessed = task.preprocessor(x)
    twin = build_twin(task) if side == "twin" else None
    kwargs = twin_inputs(preprocessed) if twin is not None else None
    before = _status_kb("VmRSS")
    # Linux: reset the process's peak RSS (VmHWM) to its current RSS.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    if twin is not None:
        with torch.inference_mode():
            twin(**kwargs)
    else:
        keras.Model.predict_on_batch(task, preprocessed)
    return (_status_kb("VmHWM") - before) / 1024


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _memory_in_subprocess(side, batch):
    out = subprocess.run(
        [sys.executable, __file__, "--memory", side, "--batch", str(batch)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["mb"]


def run(repeats):
    import keras
    import torch

    import mmzoo
    from av_digits_torch_twin import build_twin
    from av_digits_torch_twin import check
    from av_digits_torch_twin import twin_inputs

    backend = keras.config.backend()
    # The first load in this process (the preset files in the OS cache):
    # what a user waits for after importing.
    start = time.perf_counter()
    task = mmzoo.load(PRESET)
    load = time.perf_counter() - start
    worst = max(check(task, n=64).values())
    if worst > 1e-4:
        raise RuntimeError(f"The twin differs by {worst:.3g}: not timed.")
    twin = build_twin(task)
    rows = []

    def row(what, unit, keras_value, twin_value, faster_is_smaller):
        ratio = (
            twin_value / keras_value
            if faster_is_smaller
            else keras_value / twin_value
        )
        rows.append((what, unit, keras_value, twin_value, ratio))

    x256, y256 = _data(task, 256)
    for batch in (1, 64, 256):
        x = {k: v[:batch] for k, v in x256.items()}
        preprocessed = task.preprocessor(x)
        kwargs = twin_inputs(preprocessed)

        def keras_predict():
            keras.Model.predict_on_batch(task, preprocessed)

        def twin_predict():
            with torch.inference_mode():
                twin(**kwargs)

        k, t = interleaved_medians((keras_predict, twin_predict), repeats)
        row(
            f"inference, batch {batch}",
            "examples/s",
            batch / k,
            batch / t,
            faster_is_smaller=False,
        )
        if batch == 64:
            k_raw = _median_time(lambda: task.predict_on_batch(x), repeats)
            rows.append(
                (
                    "inference from raw inputs, batch 64",
                    "examples/s",
                    batch / k_raw,
                    None,
                    None,
                )
            )

    # A training step at batch 64, on preprocessed inputs.
    x = {k: v[:64] for k, v in x256.items()}
    preprocessed = task.preprocessor(x)
    labels = y256[:64]
    task.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    train_twin = build_twin(task).train()
    optimizer = torch.optim.Adam(train_twin.parameters(), lr=1e-4)
    kwargs = twin_inputs(preprocessed)
    targets = torch.from_numpy(np.asarray(labels, "int64"))

    def keras_step():
        keras.Model.train_on_batch(task, preprocessed, labels)

    def twin_step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(
            train_twin(**kwargs), targets
        )
        loss.backward()
        optimizer.step()

    k, t = interleaved_medians((keras_step, twin_step), repeats)
    row("training step, batch 64", "ms", 1000 * k, 1000 * t, True)

    rows.append(("first `mmzoo.load` after imports", "s", load, None, None))
    again = _median_time(lambda: mmzoo.load(PRESET), repeats)
    rows.append(("`mmzoo.load` again", "s", again, None, None))
    k_mb = _memory_in_subprocess("keras", 256)
    t_mb = _memory_in_subprocess("twin", 256)
    row("peak RSS growth, inference batch 256", "MB", k_mb, t_mb, True)
    return backend, rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory", choices=("keras", "twin"))
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args(argv)
    if args.memory:
        print(json.dumps({"mb": peak_memory(args.memory, args.batch)}))
        return
    import keras
    import torch

    backend, rows = run(args.repeats)
    print(
        f"# {backend}, keras {keras.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), {os.cpu_count()} CPU cores, "
        f"{platform.machine()}"
    )
    print("| backend | measure | unit | mmzoo | twin | twin time / mmzoo's |")
    for what, unit, keras_value, twin_value, ratio in rows:
        twin_text = "" if twin_value is None else f"{twin_value:.4g}"
        ratio_text = "" if ratio is None else f"{ratio:.2f}"
        print(
            f"| {backend} | {what} | {unit} | {keras_value:.4g} "
            f"| {twin_text} | {ratio_text} |"
        )


if __name__ == "__main__":
    main()

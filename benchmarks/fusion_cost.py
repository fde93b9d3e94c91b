"""What each fusion layer costs as modalities and widths grow (JAX, CPU).

`KERAS_BACKEND=jax python benchmarks/fusion_cost.py`

Every modality is a vector of `width` features and every fusion is built to
give a `width`-wide output, except `CrossModalAttentionFusion`: its
`hidden_dim` is `width` and it gives one `width`-wide slot per ordered pair
of modalities, `M (M - 1) width` (its cost grows with the number of pairs:
MulT's design); Tensor and Low-rank Fusion fuse the inputs as they are (no
projection) with a dense output layer / rank-4 factors. Two sweeps: the
number of modalities `M` from 2 to 6 at width 64, and the width from 64 to
1024 with 2 modalities. For each point: parameters (`count_params()` of the
built layer; for Tensor Fusion beyond `--max-parameters` the formula
`(width + 1)^M · width + width`, not built), FLOPs of the compiled forward
pass (XLA's `cost_analysis()`), and its median latency on a batch of
`--batch` (each layer jitted once untimed, the fusions of a point timed
alternately, medians of `--repeats`). A third table gives the same for
the AV-digits presets' fusion layers (two 128-wide modalities). Writes
`fusion_cost.json` and the plot `fusion_cost.png` beside this file.
"""

import argparse
import json
import os
import platform

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import mmzoo  # noqa: E402
from mmzoo.recipes import av_digits  # noqa: E402
from timing import interleaved_medians  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODALITY_COUNTS = (2, 3, 4, 5, 6)
WIDTHS = (64, 128, 256, 512, 1024)


def fusions(num_modalities, width):
    return {
        "projection (mean)": lambda: mmzoo.layers.ProjectionFusion(
            width, combine="mean"
        ),
        "attention": lambda: mmzoo.layers.AttentionFusion(width),
        "late": lambda: mmzoo.layers.LateFusion(width),
        "gated (GMU)": lambda: mmzoo.layers.GatedMultimodalUnit(width),
        "low-rank (LMF, rank 4)": lambda: mmzoo.layers.LowRankFusion(
            width, rank=4
        ),
        "tensor (TFN)": lambda: mmzoo.layers.TensorFusion(output_dim=width),
        "cross-modal (MulT)": lambda: (
            mmzoo.layers.CrossModalAttentionFusion(width, num_heads=1)
        ),
    }


def tensor_fusion_parameters(num_modalities, width):
    return (width + 1) ** num_modalities * width + width


def measure(make_layers, inputs, batch, repeats, max_parameters):
    """{name: (parameters, flops, seconds)} for layers built on `inputs`."""
    rows, timed = {}, {}
    num_modalities = len(inputs)
    width = next(iter(inputs.values())).shape[-1]
    for name, make in make_layers.items():
        if (
            name.startswith("tensor")
            and tensor_fusion_parameters(num_modalities, width) > max_parameters
        ):
            rows[name] = (
                tensor_fusion_parameters(num_modalities, width),
                None,
                None,
            )
            continue
        layer = make()
        layer.build({k: v.shape for k, v in inputs.items()})
        variables = [v.value for v in layer.trainable_variables]
        others = [v.value for v in layer.non_trainable_variables]

        def forward(variables, x, layer=layer, others=others):
            return layer.stateless_call(variables, others, x)[0]

        jitted = jax.jit(forward)
        compiled = jitted.lower(variables, inputs).compile()
        cost = compiled.cost_analysis()
        if isinstance(cost, (list, tuple)):
            cost = cost[0]
        flops = float(cost.get("flops", float("nan")))
        rows[name] = [layer.count_params(), flops / batch, None]
        timed[name] = lambda c=compiled, v=variables: jax.block_until_ready(
            c(v, inputs)
        )
    medians = interleaved_medians(list(timed.values()), repeats)
    for name, seconds in zip(timed, medians):
        rows[name][2] = seconds
    return {k: tuple(v) for k, v in rows.items()}


def data(num_modalities, width, batch, rng):
    return {
        f"m{i}": rng.standard_normal((batch, width)).astype("float32")
        for i in range(num_modalities)
    }


def table(title, points, column):
    names = list(next(iter(points.values())))
    print(f"\n{title}\n")
    print(f"| fusion | " + " | ".join(f"{column} {p}" for p in points) + " |")
    print("|---|" + "---|" * len(points))
    for what, index, fmt in (
        ("parameters", 0, "{:,.0f}"),
        ("MFLOP/example", 1, "{:.3g}"),
        ("ms/batch", 2, "{:.3g}"),
    ):
        for name in names:
            cells = []
            for point in points.values():
                value = point[name][index]
                if value is None:
                    cells.append("—")
                else:
                    scale = 1e-6 if index == 1 else 1e3 if index == 2 else 1
                    cells.append(fmt.format(value * scale))
            print(f"| {name}: {what} | " + " | ".join(cells) + " |")


def plot(by_count, by_width, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(11, 8))
    for row, (points, label) in enumerate(
        ((by_count, "modalities M (width 64)"), (by_width, "width (M = 2)"))
    ):
        xs = list(points)
        for name in next(iter(points.values())):
            params = [points[x][name][0] for x in xs]
            times = [points[x][name][2] for x in xs]
            line = axes[row][0].plot(xs, params, marker="o", label=name)[0]
            # Open markers: counted by the formula, too large to build.
            unbuilt = [
                (x, p) for x, p, t in zip(xs, params, times) if t is None
            ]
            if unbuilt:
                axes[row][0].plot(
                    *zip(*unbuilt),
                    linestyle="none",
                    marker="o",
                    markerfacecolor="white",
                    color=line.get_color(),
                )
            timed = [(x, t * 1e3) for x, t in zip(xs, times) if t is not None]
            if timed:
                axes[row][1].plot(
                    *zip(*timed), marker="o", color=line.get_color()
                )
        for column, ylabel in enumerate(("parameters", "ms per batch")):
            axis = axes[row][column]
            axis.set_yscale("log")
            axis.set_xlabel(label)
            axis.set_ylabel(ylabel)
            if row == 1:
                axis.set_xscale("log", base=2)
            axis.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    axes[0][0].set_title("parameters (open: Tensor Fusion's formula)")
    axes[0][1].set_title("forward latency, JAX on CPU (batch 64)")
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--max-parameters",
        type=float,
        default=1.5e8,
        help="Tensor Fusion is built and timed up to this many parameters",
    )
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, JAX {jax.__version__}, "
        f"Keras {keras.__version__}, batch {args.batch}"
    )
    rng = np.random.default_rng(0)
    by_count = {}
    for m in MODALITY_COUNTS:
        inputs = data(m, 64, args.batch, rng)
        by_count[m] = measure(
            fusions(m, 64),
            inputs,
            args.batch,
            args.repeats,
            args.max_parameters,
        )
    by_width = {}
    for width in WIDTHS:
        inputs = data(2, width, args.batch, rng)
        by_width[width] = measure(
            fusions(2, width),
            inputs,
            args.batch,
            args.repeats,
            args.max_parameters,
        )
    inputs = {
        "image": rng.standard_normal((args.batch, 128)).astype("float32"),
        "audio": rng.standard_normal((args.batch, 128)).astype("float32"),
    }
    presets = {
        f"av_digits_{name}": measure(
            {name: factory}, inputs, args.batch, args.repeats, np.inf
        )[name]
        for name, factory in av_digits.FUSIONS.items()
    }
    table("By number of modalities (width 64)", by_count, "M =")
    table("By width (2 modalities)", by_width, "width")
    print("\nThe AV-digits presets' fusion layers (two 128-wide inputs)\n")
    print("| preset | parameters | MFLOP/example | ms/batch |")
    print("|---|---|---|---|")
    for name, (params, flops, seconds) in presets.items():
        print(
            f"| {name} | {params:,} | {flops * 1e-6:.3g} | "
            f"{seconds * 1e3:.3g} |"
        )
    record = {
        "batch": args.batch,
        "by_modalities": by_count,
        "by_width": by_width,
        "av_digits": presets,
    }
    with open(os.path.join(HERE, "fusion_cost.json"), "w") as f:
        json.dump(record, f, indent=1)
    plot(by_count, by_width, os.path.join(HERE, "fusion_cost.png"))
    print(f"\nwrote {os.path.join(HERE, 'fusion_cost.png')}")


if __name__ == "__main__":
    main()

"""Robustness curves of the AV-digits presets (MultiBench's protocol).

```
python -m mmzoo.recipes.av_digits_robustness \\
    --figure examples/figures/av_digits_robustness.png
```

On the AV-digits test split (1,500 image + speech pairs), each preset's
accuracy as one modality is corrupted at levels 0, 0.1, ..., 1 (image:
Gaussian noise, occlusion; audio: noise at a falling SNR, the telephone
band; `mmzoo.metrics.robustness`), the other modality clean. Printed: the
curves, and Markdown rows for the README with each curve's relative
robustness (the area under it) and effective robustness against
`av_digits_projection` (MultiBench's baseline is late fusion; projection,
concatenated per-modality projections, is the plainest fusion here). The
single-modality presets are scored on the corruptions of their own
modality. `--figure` saves the curves as a picture
(`mmzoo.plots.plot_robustness_curves`).
"""

import argparse
import json

import keras

import mmzoo
from mmzoo.metrics import robustness
from mmzoo.recipes.av_digits import RECIPES

BASELINE = "av_digits_projection"


def curves(x, y, presets=tuple(RECIPES), seed=0, verbose=True):
    """`{(modality, corruption): {preset: accuracies}}` on `x`, `y`."""
    out = {}
    for name in presets:
        model = mmzoo.load(name)
        modalities = model.backbone.modalities
        inputs = {m: x[m] for m in modalities}
        for modality, kinds in robustness.CORRUPTIONS.items():
            if modality not in modalities:
                continue
            for corruption in kinds:
                accuracies = robustness.robustness_curve(
                    model, inputs, y, modality, corruption, seed=seed
                )
                out.setdefault((modality, corruption), {})[name] = accuracies
                if verbose:
                    print(
                        f"{name} {modality} {corruption}: "
                        + " ".join(f"{100 * a:.1f}" for a in accuracies)
                    )
    return out


def table_rows(results):
    """The README's rows: per preset and corruption, the clean accuracy,
    the accuracy at level 1, relative robustness and effective robustness
    against `BASELINE`."""
    lines = [
        "| preset | corrupted | clean (%) | at level 1 (%) "
        "| relative robustness | effective robustness |",
        "|---|---|---|---|---|---|",
    ]
    for (modality, corruption), by_preset in results.items():
        baseline = by_preset.get(BASELINE)
        for name, accuracies in by_preset.items():
            effective = "—"
            if baseline is not None:
                # (+ 0.0: no "-0.000" for the baseline itself.)
                value = robustness.effective_robustness(accuracies, baseline)
                effective = f"{round(value, 3) + 0.0:+.3f}"
            lines.append(
                f"| `{name}` | {modality}: {corruption} "
                f"| {100 * accuracies[0]:.1f} | {100 * accuracies[-1]:.1f} "
                f"| {robustness.relative_robustness(accuracies):.3f} "
                f"| {effective} |"
            )
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=list(RECIPES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", default=None, help="a .png path")
    parser.add_argument(
        "--output", default=None, help="a .json path for the curves"
    )
    args = parser.parse_args(argv)
    print(
        f"mmzoo {mmzoo.__version__}, Keras {keras.version()}, backend "
        f"{keras.backend.backend()}"
    )
    x, y = mmzoo.datasets.load_av_digits("test", verbose=False)
    results = curves(x, y, args.presets, seed=args.seed)
    print("\nREADME rows:")
    print("\n".join(table_rows(results)))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(
                {
                    f"{m}:{c}": by_preset
                    for (m, c), by_preset in results.items()
                },
                f,
                indent=1,
            )
    if args.figure:
        panels = {
            f"{modality}: {corruption.replace('_', ' ')}": by_preset
            for (modality, corruption), by_preset in results.items()
        }
        figure = mmzoo.plots.plot_robustness_curves(
            panels, chance=0.1, title="AV-digits test split"
        )
        figure.savefig(args.figure, dpi=100)
        print(f"Saved {args.figure}")


if __name__ == "__main__":
    main()

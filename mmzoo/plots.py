"""Pictures of what a multimodal model does, with matplotlib.

- `modality_weights(task, x)`: how much an `AttentionFusion` listened to
  each modality, per example (the numbers behind the first picture).
- `plot_modality_weights(weights, labels, modalities)`: those weights per
  example and averaged per class.
- `subset_accuracy(task, x, y)` and `plot_subset_accuracy(accuracies)`:
  accuracy with every non-empty subset of the modalities given (the others
  left out, as missing).
- `plot_robustness_curves(curves)`: accuracy as a modality is corrupted
  more and more (`mmzoo.metrics.robustness_curve`, MultiBench's protocol).

matplotlib is imported when a picture is drawn (`pip install matplotlib`);
the functions return the `Figure`, for `fig.savefig(path)`.
"""

import itertools

import keras
import numpy as np

from mmzoo.layers.fusion.attention_fusion import AttentionFusion


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "mmzoo.plots draws with matplotlib: `pip install matplotlib`."
        ) from error
    return plt


def modality_weights(task, x, batch_size=32, sample_rate=None):
    """An attention fusion's weight on each modality, per example.

    Args:
        task: a `MultimodalTask` (e.g. `MultimodalClassifier`) whose
            backbone fuses with `mmzoo.layers.AttentionFusion`, with a
            preprocessor.
        x: raw inputs, a dict keyed by modality (a modality may be left
            out, as in `predict`).
        batch_size: examples per forward pass.
        sample_rate: the audio's rate in Hz, as in `predict`.

    Returns:
        A `(n, num_modalities)` array, columns in `backbone.modalities`
        order: the fusion's softmax weights averaged over heads (and summed
        over a sequence modality's steps). Each row sums to 1; a missing
        modality gets exactly 0.

    Example:

    ```python
    classifier = mmzoo.load("av_digits_attention")
    x, y = mmzoo.datasets.load_av_digits("test")
    weights = mmzoo.plots.modality_weights(classifier, x)
    weights.mean(axis=0)  # the average weight of image and audio
    ```
    """
    backbone = task.backbone
    fusion = backbone.fusion
    if not isinstance(fusion, AttentionFusion):
        raise ValueError(
            "`modality_weights` reads an attention fusion's weights; this "
            f"backbone fuses with {type(fusion).__name__}. Use a preset "
            "with `AttentionFusion` (e.g. 'av_digits_attention')."
        )
    if task.preprocessor is None:
        raise ValueError(
            "`modality_weights` takes raw inputs through the task's "
            "preprocessor; this task has none."
        )
    features = task.preprocessor(x, sample_rate=sample_rate)
    features = backbone.standardize_inputs(features)
    mask = keras.ops.convert_to_numpy(features["modality_mask"])
    outputs = backbone.predict(features, batch_size=batch_size, verbose=0)
    per_modality = outputs["modality_outputs"]
    # Tokens per modality: one for a vector, one per step for a sequence.
    steps = [
        1 if per_modality[m].ndim == 2 else per_modality[m].shape[1]
        for m in backbone.modalities
    ]
    ends = np.cumsum(steps)
    rows = []
    for start in range(0, len(mask), batch_size):
        batch = {
            m: per_modality[m][start : start + batch_size]
            for m in backbone.modalities
        }
        _, scores = fusion(
            batch,
            modality_mask=mask[start : start + batch_size],
            return_attention_scores=True,
        )
        scores = keras.ops.convert_to_numpy(scores).astype("float64")
        scores = scores.mean(axis=1)  # over heads: (batch, tokens)
        rows.append(
            np.stack(
                [s.sum(axis=1) for s in np.split(scores, ends[:-1], axis=1)],
                axis=1,
            )
        )
    return np.concatenate(rows)


def plot_modality_weights(
    weights, labels=None, modalities=None, class_names=None, examples=40
):
    """Modality weights per example (stacked bars) and averaged per class.

    Args:
        weights: `(n, num_modalities)`, e.g. from `modality_weights`.
        labels: optional `(n,)` class ids: examples are sorted by class and
            a second panel shows each class's mean weights.
        modalities: the column names (default `"modality 0"`, ...).
        class_names: optional names of the classes.
        examples: how many examples the first panel shows.

    Returns:
        The matplotlib `Figure`.
    """
    plt = _pyplot()
    weights = np.asarray(weights, "float64")
    if weights.ndim != 2:
        raise ValueError(
            "`weights` must be (examples, modalities). Received shape "
            f"{weights.shape}."
        )
    count = weights.shape[1]
    modalities = list(modalities or [f"modality {i}" for i in range(count)])
    if len(modalities) != count:
        raise ValueError(
            f"Got {len(modalities)} modality names for {count} columns."
        )
    order = np.arange(len(weights))
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(weights):
            raise ValueError(
                f"Got {len(labels)} labels for {len(weights)} examples."
            )
        order = np.argsort(labels, kind="stable")
    shown = order[:examples]
    panels = 1 if labels is None else 2
    figure, axes = plt.subplots(
        1, panels, figsize=(6 * panels, 3.2), squeeze=False
    )
    _stacked_bars(axes[0, 0], weights[shown], modalities)
    sorted_by = "" if labels is None else " (sorted by class)"
    axes[0, 0].set_xlabel("example" + sorted_by)
    axes[0, 0].set_title("Weight on each modality, per example")
    if labels is not None:
        classes = np.unique(labels)
        means = np.stack([weights[labels == c].mean(axis=0) for c in classes])
        names = [
            str(class_names[c]) if class_names is not None else str(c)
            for c in classes
        ]
        _stacked_bars(axes[0, 1], means, modalities, names)
        axes[0, 1].set_xlabel("class")
        axes[0, 1].set_title("Mean weight per class")
    axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    return figure


def _stacked_bars(ax, weights, modalities, ticks=None):
    bottom = np.zeros(len(weights))
    positions = np.arange(len(weights))
    for column, name in enumerate(modalities):
        ax.bar(positions, weights[:, column], bottom=bottom, label=name)
        bottom += weights[:, column]
    ax.set_ylim(0, 1)
    ax.set_ylabel("weight")
    if ticks is not None:
        ax.set_xticks(positions, ticks)


def subset_accuracy(task, x, y, batch_size=32, sample_rate=None):
    """Accuracy with each non-empty subset of the modalities given.

    Args:
        task: a classifier on a `MultimodalBackbone` (`predict` returns
            class scores).
        x: raw inputs with every modality; y: class ids.

    Returns:
        `{("image", "audio"): accuracy, ("image",): ..., ...}`, all
        modalities first, then smaller subsets.
    """
    modalities = [m for m in task.backbone.modalities if m in x]
    labels = np.asarray(y).reshape(-1)
    accuracies = {}
    for size in range(len(modalities), 0, -1):
        for subset in itertools.combinations(modalities, size):
            scores = task.predict(
                {m: x[m] for m in subset},
                batch_size=batch_size,
                sample_rate=sample_rate,
                verbose=0,
            )
            accuracies[subset] = float(np.mean(scores.argmax(-1) == labels))
    return accuracies


def plot_subset_accuracy(accuracies, chance=None, title=None):
    """Bars of accuracy per modality subset (from `subset_accuracy`).

    Args:
        accuracies: `{subset: accuracy}`; a subset is a tuple of modality
            names or a string.
        chance: optional accuracy of chance, drawn as a line.
        title: optional title.

    Returns:
        The matplotlib `Figure`.
    """
    plt = _pyplot()
    names = [
        " + ".join(k) if isinstance(k, (tuple, list)) else str(k)
        for k in accuracies
    ]
    values = [100 * float(v) for v in accuracies.values()]
    figure, ax = plt.subplots(figsize=(1.4 * len(values) + 2, 3.2))
    bars = ax.bar(names, values, color="tab:blue")
    ax.bar_label(bars, fmt="%.1f")
    if chance is not None:
        ax.axhline(100 * chance, color="grey", linestyle="--", label="chance")
        ax.legend()
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy (%)")
    ax.set_xlabel("modalities given")
    ax.set_title(title or "Accuracy by the modalities given")
    figure.tight_layout()
    return figure


def plot_robustness_curves(curves, levels=None, chance=None, title=None):
    """Accuracy against corruption level, one line per model (from
    `mmzoo.metrics.robustness_curve`), in panels.

    Args:
        curves: `{panel title: {model name: accuracies}}`, e.g. one panel
            per corruption; or `{model name: accuracies}` for one panel.
        levels: the corruption levels (default MultiBench's 0, 0.1, ...,
            1).
        chance: optional accuracy of chance, drawn as a line.
        title: optional title of the figure.

    Returns:
        The matplotlib `Figure`.

    Example:

    ```python
    curve = mmzoo.metrics.robustness_curve(classifier, x, y, "audio", "noise")
    figure = mmzoo.plots.plot_robustness_curves({"attention": curve})
    ```
    """
    from mmzoo.metrics.robustness import LEVELS

    plt = _pyplot()
    levels = list(LEVELS if levels is None else levels)
    first = next(iter(curves.values()), None)
    if not isinstance(first, dict):
        curves = {"": curves}
    figure, axes = plt.subplots(
        1, len(curves), figsize=(3.6 * len(curves) + 1, 3.4), squeeze=False
    )
    # One colour per model across the panels, one legend for them all.
    names = list(dict.fromkeys(n for panel in curves.values() for n in panel))
    colours = {n: f"C{i % 10}" for i, n in enumerate(names)}
    handles = {}
    for ax, (panel, by_model) in zip(axes[0], curves.items()):
        for name, accuracies in by_model.items():
            if len(accuracies) != len(levels):
                raise ValueError(
                    f"{name!r} has {len(accuracies)} accuracies for "
                    f"{len(levels)} levels."
                )
            (handles[name],) = ax.plot(
                levels,
                [100 * a for a in accuracies],
                marker=".",
                color=colours[name],
                label=name,
            )
        if chance is not None:
            ax.axhline(100 * chance, color="grey", linestyle="--")
        ax.set_ylim(0, 100)
        ax.set_xlabel("corruption level")
        ax.set_title(panel)
    axes[0][0].set_ylabel("accuracy (%)")
    axes[0][-1].legend(
        [handles[n] for n in names],
        names,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
    )
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure

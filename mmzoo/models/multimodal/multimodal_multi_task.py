import keras
import numpy as np

from mmzoo.api_export import mmzoo_export
from mmzoo.models.multimodal.multimodal_classifier import MultimodalTask
from mmzoo.models.multimodal.multimodal_classifier import _as_array
from mmzoo.models.multimodal.multimodal_classifier import check_labels

HEAD_TYPES = ("classification", "regression")


def _standardize_heads(heads):
    """Validate a heads dict and fill in defaults."""
    if not isinstance(heads, dict) or not heads:
        raise ValueError(
            "`heads` must be a non-empty dict {name: {'type': "
            "'classification', 'num_classes': k} or {'type': 'regression'}}. "
            f"Received: {heads!r}"
        )
    standardized = {}
    for name, spec in heads.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"Head names must be identifiers (letters, digits, _). "
                f"Received: {name!r}"
            )
        if not isinstance(spec, dict) or spec.get("type") not in HEAD_TYPES:
            raise ValueError(
                f"Head '{name}' must be a dict with 'type' one of "
                f"{HEAD_TYPES}. Received: {spec!r}"
            )
        spec = dict(spec)
        known = {"type", "num_classes", "units", "hidden_dim"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(
                f"Head '{name}' has unknown keys {unknown}; expected some of "
                f"{sorted(known)}."
            )
        if spec["type"] == "classification":
            num_classes = spec.get("num_classes")
            if not isinstance(num_classes, int) or num_classes < 2:
                raise ValueError(
                    f"Classification head '{name}' needs 'num_classes', an "
                    f"int >= 2. Received: {num_classes!r}"
                )
            if "units" in spec:
                raise ValueError(
                    f"Classification head '{name}' takes 'num_classes', not "
                    "'units'."
                )
        else:
            spec.setdefault("units", 1)
            if "num_classes" in spec:
                raise ValueError(
                    f"Regression head '{name}' takes 'units', not "
                    "'num_classes'."
                )
            if not isinstance(spec["units"], int) or spec["units"] < 1:
                raise ValueError(
                    f"Regression head '{name}' needs 'units', an int >= 1. "
                    f"Received: {spec['units']!r}"
                )
        spec.setdefault("hidden_dim", None)
        standardized[name] = spec
    return standardized


@mmzoo_export("mmzoo.models.MultimodalMultiTask")
class MultimodalMultiTask(MultimodalTask):
    """Several named prediction heads on one shared `MultimodalBackbone`.

    Multi-task learning with hard parameter sharing: every head reads the
    backbone's `fused_output` `h`; head `k` computes
    `y_k = Dense_k(Dropout(h))` (after an optional hidden `Dense` + GELU), and
    training minimises `Σ_k w_k · L_k(y_k, t_k)`: sparse categorical
    cross-entropy for a classification head, mean squared error for a
    regression head, weighted by `loss_weights`.

    `fit` takes a dict of targets `{head_name: array}` with every head;
    `predict` returns a dict `{head_name: array}` (logits for classification
    heads). With a `preprocessor`, inputs are raw (strings, images,
    waveforms) and modalities may be left out, as for
    `MultimodalClassifier`.

    Args:
        backbone: a `mmzoo.models.MultimodalBackbone`.
        heads: dict `{name: spec}`; a spec is `{"type": "classification",
            "num_classes": k}` or `{"type": "regression", "units": n}`
            (`units` defaults to 1), each with an optional `"hidden_dim"`.
        preprocessor: a `mmzoo.models.MultimodalPreprocessor`, or `None`.
        loss_weights: dict `{name: weight}`; missing heads weigh 1.
        dropout: float. Dropout rate before each head.

    Example:
    ```python
    model = mmzoo.models.MultimodalMultiTask(
        backbone=backbone,
        heads={
            "digit": {"type": "classification", "num_classes": 10},
            "parity": {"type": "classification", "num_classes": 2},
            "value": {"type": "regression"},
        },
        loss_weights={"digit": 1.0, "parity": 0.5, "value": 0.5},
    )
    model.fit(x, {"digit": y, "parity": y % 2, "value": y / 9}, epochs=3)
    outputs = model.predict(x)  # {"digit": (n, 10), "parity": ..., ...}
    ```
    """

    def __init__(
        self,
        backbone,
        heads,
        preprocessor=None,
        loss_weights=None,
        dropout=0.0,
        **kwargs,
    ):
        self._check_preprocessor(preprocessor, backbone)
        heads = _standardize_heads(heads)
        loss_weights = dict(loss_weights or {})
        unknown = sorted(set(loss_weights) - set(heads))
        if unknown:
            raise ValueError(
                f"`loss_weights` names unknown heads {unknown}; heads are "
                f"{list(heads)}."
            )
        # Set before `Task.__init__`, which compiles with the defaults.
        self.heads = heads
        self.loss_weights = {
            name: float(loss_weights.get(name, 1.0)) for name in heads
        }

        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.head_layers = {}
        for name, spec in heads.items():
            layers = [
                keras.layers.Dropout(
                    dropout, dtype=backbone.dtype_policy, name=f"{name}_dropout"
                )
            ]
            if spec["hidden_dim"]:
                layers.append(
                    keras.layers.Dense(
                        spec["hidden_dim"],
                        activation="gelu",
                        dtype=backbone.dtype_policy,
                        name=f"{name}_hidden",
                    )
                )
            units = (
                spec["num_classes"]
                if spec["type"] == "classification"
                else spec["units"]
            )
            # Outputs in float32, so losses are stable under mixed precision.
            layers.append(keras.layers.Dense(units, dtype="float32", name=name))
            self.head_layers[name] = layers

        # === Functional Model ===
        inputs = backbone.input
        fused = backbone(inputs)["fused_output"]
        outputs = {}
        for name, layers in self.head_layers.items():
            x = fused
            for layer in layers:
                x = layer(x)
            outputs[name] = x
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.dropout = dropout

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        loss_weights="auto",
        metrics="auto",
        **kwargs,
    ):
        """Configures the model for training.

        `"auto"` picks Adam (learning rate 1e-3); per head, sparse
        categorical cross-entropy from logits and accuracy for
        classification, mean squared error and mean absolute error for
        regression; and the `loss_weights` given to the constructor. Other
        arguments go to `keras.Model.compile`.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(1e-3)
        if loss == "auto":
            loss = {
                name: keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True
                )
                if spec["type"] == "classification"
                else keras.losses.MeanSquaredError()
                for name, spec in self.heads.items()
            }
        if loss_weights == "auto":
            loss_weights = dict(self.loss_weights)
        if metrics == "auto":
            metrics = {
                name: [keras.metrics.SparseCategoricalAccuracy("accuracy")]
                if spec["type"] == "classification"
                else [keras.metrics.MeanAbsoluteError("mae")]
                for name, spec in self.heads.items()
            }
        super().compile(
            optimizer=optimizer,
            loss=loss,
            loss_weights=loss_weights,
            metrics=metrics,
            **kwargs,
        )

    def _check_targets(self, y, batch_size=None):
        """Checks targets: a dict naming every head; per head, with
        `batch_size`, class ids in range (classification) or finite numbers
        `(batch,)`/`(batch, units)` (regression), one row per input row."""
        if y is None:
            return
        if not isinstance(y, dict):
            raise ValueError(
                "MultimodalMultiTask takes targets as a dict {head_name: "
                f"array}} with keys {list(self.heads)}. Received: {type(y)}"
            )
        unknown = sorted(set(y) - set(self.heads))
        missing = sorted(set(self.heads) - set(y))
        if unknown or missing:
            raise ValueError(
                f"The targets must name every head {list(self.heads)} and no "
                f"other. Unknown: {unknown}; missing: {missing}."
            )
        if batch_size is None:
            return
        for name, spec in self.heads.items():
            what = f"Targets of head '{name}'"
            if spec["type"] == "classification":
                check_labels(y[name], spec["num_classes"], batch_size, what)
                continue
            values = _as_array(y[name], what)
            if values.dtype.kind not in "biuf":
                raise ValueError(
                    f"{what} (regression) must be numbers. Received dtype "
                    f"{values.dtype}."
                )
            units = spec["units"]
            shapes = [(batch_size, units)] + (
                [(batch_size,)] if units == 1 else []
            )
            if values.shape not in shapes:
                raise ValueError(
                    f"{what} (regression, {units} units) must have shape "
                    f"{' or '.join(map(str, shapes))}. Received shape "
                    f"{values.shape}."
                )
            if not np.all(np.isfinite(values)):
                raise ValueError(f"{what} contain NaN or inf values.")

    def fit(self, x=None, y=None, **kwargs):
        self._check_targets(y)
        validation_data = kwargs.get("validation_data")
        if isinstance(validation_data, tuple) and len(validation_data) > 1:
            self._check_targets(validation_data[1])
        return super().fit(x=x, y=y, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        self._check_targets(y)
        return super().evaluate(x=x, y=y, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "heads": {
                    name: dict(spec) for name, spec in self.heads.items()
                },
                "loss_weights": dict(self.loss_weights),
                "dropout": self.dropout,
            }
        )
        return config

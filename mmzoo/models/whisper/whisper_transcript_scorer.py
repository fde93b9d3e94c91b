import keras
import numpy as np
from keras import ops

from mmzoo.api_export import mmzoo_export


def prefix_tree(sequences):
    """Packs token sequences into one prefix tree.

    Returns `(tokens, depth, parent, node_of)`: the token and depth (position)
    of every node, each node's parent (`-1` for roots) and, for each sequence,
    the node of each of its tokens. Sequences sharing a prefix share its
    nodes, so the decoder runs once per distinct prefix.
    """
    tokens, depth, parent, node_of = [], [], [], []
    children = {}
    for sequence in sequences:
        nodes, current = [], -1
        for token in sequence:
            key = (current, int(token))
            if key not in children:
                children[key] = len(tokens)
                tokens.append(int(token))
                depth.append(0 if current < 0 else depth[current] + 1)
                parent.append(current)
            current = children[key]
            nodes.append(current)
        node_of.append(nodes)
    return (
        np.array(tokens, "int32"),
        np.array(depth, "int32"),
        np.array(parent, "int32"),
        node_of,
    )


@mmzoo_export("mmzoo.layers.WhisperTranscriptScorer")
class WhisperTranscriptScorer(keras.layers.Layer):
    """Log-likelihood of fixed transcripts under Whisper's decoder.

    Scores a fixed list of token sequences (e.g. "<|startoftranscript|>
    <|fr|> <|transcribe|> <|notimestamps|> Sept. <|endoftext|>") against each
    clip's encoder output: `log p(token_t | tokens_<t, audio)` summed over
    the scored tokens of each sequence. This turns a Whisper backbone into a
    zero-shot classifier over any closed set of words or phrases.

    All sequences are packed into one prefix tree and decoded in a single
    pass (tree attention: every node attends to its ancestors, at its depth's
    position embedding), so shared prompts and word prefixes cost once, and
    the vocabulary projection runs only at nodes whose children are scored.
    Cross-attention treats the tree's nodes as one query sequence, so the
    encoder's keys and values are computed once per clip.

    Args:
        backbone: a `keras_hub.models.WhisperBackbone` (or mmzoo's), whose
            decoder layers are used (not copied, not trained).
        sequences: list of lists of token ids, each starting with
            `<|startoftranscript|>`.
        scored: list of lists of bools, one per token of each sequence:
            whether its log-probability counts (forced prompt tokens such
            as `<|transcribe|>` need not). The first token is never scored.

    Call arguments:
        encoder_sequence: float tensor `(batch, frames, hidden_dim)`, the
            backbone's `encoder_sequence_output`.

    Returns:
        `(batch, len(sequences))` log-likelihoods in float32.

    Example:
    ```python
    backbone = mmzoo.models.WhisperBackbone.from_preset("whisper_base_multi")
    tokenizer = mmzoo.models.WhisperTokenizer(
        pretrained_weights="whisper_base_multi"
    )
    prompt = [50258, 50259, 50359, 50363]  # start, <|en|>, transcribe, ...
    words = [list(tokenizer(w)) + [50257] for w in (" Yes.", " No.")]
    sequences = [prompt + w for w in words]
    scored = [[False] * 4 + [True] * len(w) for w in words]
    scorer = mmzoo.layers.WhisperTranscriptScorer(backbone, sequences, scored)
    encoded = backbone.predict(...)["encoder_sequence_output"]
    scorer(encoded)  # (batch, 2): log p(" Yes.") and log p(" No.")
    ```
    """

    def __init__(self, backbone, sequences, scored, **kwargs):
        kwargs.setdefault("dtype", backbone.dtype_policy)
        # Always frozen; `get_config()` records `trainable: False`.
        kwargs.pop("trainable", None)
        super().__init__(trainable=False, **kwargs)
        sequences = [[int(t) for t in s] for s in sequences]
        scored = [[bool(f) for f in s] for s in scored]
        if not sequences:
            raise ValueError("`sequences` is empty: nothing to score.")
        if len(scored) != len(sequences) or any(
            len(a) != len(b) for a, b in zip(sequences, scored)
        ):
            raise ValueError(
                "`scored` needs one flag per token of each sequence; got "
                f"lengths {[len(s) for s in scored]} for sequences of "
                f"lengths {[len(s) for s in sequences]}."
            )
        if any(not s for s in sequences):
            raise ValueError("Every sequence needs at least one token.")
        max_length = backbone.max_decoder_sequence_length
        if max(len(s) for s in sequences) > max_length:
            raise ValueError(
                f"A sequence is longer than the decoder's {max_length} "
                "positions."
            )
        self.backbone = backbone
        self.sequences = sequences
        self.scored = scored
        tokens, depth, parent, node_of = prefix_tree(sequences)
        num_nodes = len(tokens)
        ancestors = np.eye(num_nodes, dtype=bool)
        for node in range(num_nodes):
            if parent[node] >= 0:
                ancestors[node] |= ancestors[parent[node]]
        # The scored (node, next token) pairs; the vocabulary projection runs
        # only at their nodes. `weights[i, k]` counts pair `k` in sequence i.
        pairs, entries = {}, []
        for i, (nodes, flags) in enumerate(zip(node_of, scored)):
            for t in range(1, len(nodes)):
                if flags[t]:
                    key = (nodes[t - 1], sequences[i][t])
                    entries.append((i, pairs.setdefault(key, len(pairs))))
        sources = sorted({node for node, _ in pairs})
        row_of = {node: row for row, node in enumerate(sources)}
        weights = np.zeros((len(sequences), max(1, len(pairs))), "float32")
        for i, k in entries:
            weights[i, k] += 1.0
        self._tokens = tokens
        self._positions = depth
        self._attention_mask = ancestors.astype("int32")
        self._source_nodes = np.array(sources or [0], "int32")
        self._target_rows = np.array(
            [row_of[node] for node, _ in pairs] or [0], "int32"
        )
        self._target_tokens = np.array(
            [token for _, token in pairs] or [0], "int32"
        )
        self._weights = weights
        self.num_nodes = num_nodes

    def _decoder_block(self, layer, x, mask, encoder_sequence):
        # keras-hub's `TransformerDecoder` (pre-norm, as Whisper's), with a
        # tree attention mask and cross-attention over the flattened nodes.
        residual = x
        x = layer._self_attention_layer_norm(x)
        x = layer._self_attention_layer(query=x, value=x, attention_mask=mask)
        x = x + residual
        residual = x
        x = layer._cross_attention_layer_norm(x)
        x = layer._cross_attention_layer(query=x, value=encoder_sequence)
        x = x + residual
        residual = x
        x = layer._feedforward_layer_norm(x)
        x = layer._feedforward_intermediate_dense(x)
        x = layer._feedforward_output_dense(x)
        return x + residual

    def call(self, encoder_sequence):
        backbone = self.backbone
        batch = ops.shape(encoder_sequence)[0]
        embedding = backbone.decoder_embeddings
        x = embedding.token_embedding(ops.convert_to_tensor(self._tokens))
        positions = ops.take(
            embedding.position_embedding.position_embeddings,
            ops.convert_to_tensor(self._positions),
            axis=0,
        )
        x = ops.cast(x, self.compute_dtype) + ops.cast(
            positions, self.compute_dtype
        )
        x = ops.broadcast_to(x[None], (batch, self.num_nodes, x.shape[-1]))
        mask = ops.broadcast_to(
            ops.convert_to_tensor(self._attention_mask)[None],
            (batch, self.num_nodes, self.num_nodes),
        )
        encoder_sequence = ops.cast(encoder_sequence, self.compute_dtype)
        for layer in backbone.decoder_transformer_layers:
            x = self._decoder_block(layer, x, mask, encoder_sequence)
        x = backbone.decoder_layer_norm(x)
        x = ops.take(x, ops.convert_to_tensor(self._source_nodes), axis=1)
        logits = embedding.token_embedding(x, reverse=True)
        log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        # One flat index per scored (node, token) pair.
        vocabulary = ops.shape(log_probs)[-1]
        flat = ops.reshape(log_probs, (batch, -1))
        rows = ops.convert_to_tensor(self._target_rows)
        flat_index = rows * vocabulary + ops.convert_to_tensor(
            self._target_tokens
        )
        picked = ops.take(flat, flat_index, axis=1)
        return ops.matmul(picked, ops.convert_to_tensor(self._weights.T))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.sequences))

    def compute_output_spec(self, encoder_sequence):
        # float32 under every policy, as `call` returns.
        return keras.KerasTensor(
            self.compute_output_shape(encoder_sequence.shape), "float32"
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.layers.serialize(self.backbone),
                "sequences": self.sequences,
                "scored": self.scored,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("backbone"), dict):
            config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)

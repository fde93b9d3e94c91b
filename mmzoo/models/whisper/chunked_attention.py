"""Whisper's unmasked attention in query chunks on JAX.

At a 30 s window Whisper base attends over 1,500 frames: the scores of one
layer are `(batch, 8, 1500, 1500)` float32, 144 MB at batch 2. XLA on CPU
gets a program's temporary memory fresh at every call, and `perf` showed a
third of JAX's encoder time in the kernel's page faults. The same attention
computed for chunks of queries (each chunk's scores at most
`SCORE_BYTES`) needs a few chunks' worth: JAX's encoder at 30 s went from
1.14-1.24 to 0.85-0.97 times CTranslate2's time (chunks of 150-300 queries
measured; 750 gave 1.10). Every query's softmax is over all keys either
way, so the values are the same up to float32 rounding. PyTorch and
TensorFlow (whose allocators reuse memory) measured no gain and keep
keras-hub's layer.
"""

import keras
from keras import ops
from keras_hub.src.models.whisper.whisper_cached_multi_head_attention import (
    WhisperCachedMultiHeadAttention as KerasHubAttention,
)

from mmzoo.utils.layer_classes import switch_layer_classes

# The largest scores tensor of one chunk, in bytes.
SCORE_BYTES = 32 * 2**20


@keras.saving.register_keras_serializable(package="mmzoo")
class WhisperCachedMultiHeadAttention(KerasHubAttention):
    """keras-hub's Whisper attention; without a mask (the encoder's
    self-attention), on JAX, its queries attend in chunks whose scores are
    at most `SCORE_BYTES`: see this module's docstring. Named as keras-hub's
    class, and with its weights and config.

    Example:
    ```python
    layer = WhisperCachedMultiHeadAttention(num_heads=2, key_dim=4)
    x = np.ones((1, 300, 8), "float32")
    layer(x, x).shape  # (1, 300, 8)
    ```
    """

    def _compute_attention(
        self,
        query,
        key,
        value,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        **kwargs,
    ):
        compute = super()._compute_attention

        def whole(q):
            return compute(
                q,
                key,
                value,
                attention_mask=attention_mask,
                training=training,
                return_attention_scores=return_attention_scores,
                **kwargs,
            )

        queries, keys = query.shape[1], key.shape[1]
        batch, heads = query.shape[0], query.shape[2]
        chunk = None
        if (
            keras.config.backend() == "jax"
            and attention_mask is None
            and not return_attention_scores
            and not kwargs.get("use_causal_mask")
            # Known sizes only (not `None`, nor a symbolic size of
            # `jax.export`'s shape polymorphism).
            and all(isinstance(n, int) for n in (queries, keys, batch, heads))
        ):
            per_query = batch * heads * keys * query.dtype.itemsize
            chunk = max(1, SCORE_BYTES // per_query)
        if chunk is None or chunk >= queries:
            return whole(query)
        outputs = [
            whole(query[:, start : start + chunk])[0]
            for start in range(0, queries, chunk)
        ]
        return ops.concatenate(outputs, axis=1), None


def use_chunked_attention(model):
    """Switches keras-hub's Whisper attention layers inside `model` to the
    class above, on JAX (elsewhere nothing changes). Returns how many."""
    swaps = {KerasHubAttention: WhisperCachedMultiHeadAttention}
    return switch_layer_classes(model, swaps, "jax")

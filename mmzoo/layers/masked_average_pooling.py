import keras
from keras import ops

from mmzoo.api_export import mmzoo_export


@mmzoo_export("mmzoo.layers.MaskedAveragePooling")
class MaskedAveragePooling(keras.layers.Layer):
    """Averages a sequence over its unmasked steps.

    `h = Σ_t mask_t · x_t / max(Σ_t mask_t, 1)`. Unlike
    `keras.layers.GlobalAveragePooling1D(mask=...)`, a row whose steps are all
    masked (a missing modality's placeholder) gives zeros, not NaN, and so do
    its gradients.

    Call arguments:
        inputs: `(batch, steps, dim)` tensor.
        padding_mask: optional `(batch, steps)` tensor, nonzero for real
            steps. Defaults to all steps.

    Returns:
        A `(batch, dim)` tensor.

    Example:
    ```python
    pool = mmzoo.layers.MaskedAveragePooling()
    x = np.arange(12.0).reshape(1, 3, 4)
    pool(x, padding_mask=np.array([[1, 1, 0]]))  # mean of the first 2 steps
    ```
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # No weights: built from the start. An unbuilt layer makes Keras'
        # JAX `predict_on_batch` run the whole model eagerly at every call
        # to build it (MultimodalBackbone keeps a pooler per modality, used
        # only for encoders without a pooled output).
        self.built = True

    def call(self, inputs, padding_mask=None):
        if padding_mask is None:
            return ops.mean(inputs, axis=1)
        mask = ops.cast(ops.cast(padding_mask, "bool"), inputs.dtype)
        total = ops.sum(inputs * mask[..., None], axis=1)
        count = ops.sum(mask, axis=1, keepdims=True)
        return total / ops.maximum(count, ops.ones_like(count))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

"""Dense layers' products as 1×1 transposed convolutions on PyTorch.

PyTorch multiplies float32 matrices with MKL's `sgemm`, which on AMD CPUs
runs at about half the rate of oneDNN's kernels: on a 2-core AMD EPYC, one
`(800, 512) × (512, 2048)` product runs at 230 GFLOP/s through
`torch.matmul`, 453 in TensorFlow and 501 in JAX. Written with `keras.ops`
as a 1×1 transposed convolution (oneDNN) over the rows viewed as a
channels-last image of one column, it runs at 450-530 GFLOP/s from 256
rows on, and beats `keras.ops.matmul` from 64 rows (190-350 against
160-175 GFLOP/s). A transposed convolution's kernel is laid out
`(in, out)`, as a Dense kernel is, so nothing is copied; a plain 1×1
convolution wants `(out, in)` and copied the kernel at every call
(250-470 GFLOP/s). So this module's `Dense` and `EinsumDense` take that
path on PyTorch for float32 products of at least `MIN_ROWS` rows, and
Keras' own otherwise. The threshold is 512, not 64: oneDNN builds a kernel
for each new shape, and Whisper's decoding passes (prompts, growing
sequences) bring new shapes of 64-511 rows at every step: greedy
`generate` at batch 16 took 1.00-1.01 s per clip with 64, 0.88-0.89 with
512. The results are the same products (up to float32
rounding); the weights, names and configs are Keras'. Whether MKL is as
slow on Intel CPUs is not measured here.
"""

import math

import keras
from keras import ops

from mmzoo.utils.layer_classes import switch_layer_classes
from mmzoo.utils.tracing import torch_compiling

# Fewer rows than this: Keras' own product (see the module docstring:
# oneDNN builds a kernel per new shape, and decoding brings new shapes).
MIN_ROWS = 512


def convolution_matmul(x, kernel):
    """`x @ kernel` for `x` `(rows, in)` and `kernel` `(in, out)`, as a 1×1
    transposed convolution over `x` viewed as a channels-last image of one
    column.

    Example:
    ```python
    x, kernel = np.ones((600, 4), "float32"), np.ones((4, 3), "float32")
    convolution_matmul(x, kernel)  # (600, 3), every entry 4.0
    ```
    """
    rows, channels = x.shape
    image = ops.transpose(ops.reshape(x, (1, rows, 1, channels)), (0, 3, 1, 2))
    # Keras' transposed-convolution kernel is `(..., out, in)`: PyTorch gets
    # the `(in, out)` kernel as it is stored.
    kernel = ops.reshape(ops.transpose(kernel), (1, 1, -1, channels))
    y = ops.conv_transpose(image, kernel, data_format="channels_first")
    return ops.reshape(ops.transpose(y, (0, 2, 3, 1)), (rows, -1))


def _convolves(x, kernel, lead):
    """Whether `x`'s product with `kernel` over all but its `lead` axes
    is to be a convolution."""
    return (
        keras.config.backend() == "torch"
        and all(isinstance(n, int) for n in lead)  # no unknown sizes
        and not torch_compiling()
        and keras.backend.standardize_dtype(x.dtype) == "float32"
        and keras.backend.standardize_dtype(kernel.dtype) == "float32"
        and math.prod(lead) >= MIN_ROWS
    )


def _matmul(x, kernel, lead):
    """`x @ kernel`, `x` of shape `lead + (in,)`, `kernel` `(in, out)`."""
    x = ops.reshape(x, (math.prod(lead), kernel.shape[0]))
    return ops.reshape(convolution_matmul(x, kernel), lead + (-1,))


def _finish(layer, x):
    if layer.bias is not None:
        x = ops.add(x, layer.bias)
    if layer.activation is not None:
        x = layer.activation(x)
    return x


@keras.saving.register_keras_serializable(package="mmzoo")
class Dense(keras.layers.Dense):
    """`keras.layers.Dense` whose product is a 1×1 convolution on PyTorch
    (float32, at least `MIN_ROWS` rows): see this module's docstring. Named
    as Keras' class, which Keras' weight files key a model's layers by.

    Example:
    ```python
    layer = Dense(3)
    layer(np.ones((2, 300, 4), "float32")).shape  # (2, 300, 3)
    ```
    """

    def call(self, inputs, training=None):
        lead = tuple(inputs.shape[:-1])
        if self.quantization_mode is not None or not _convolves(
            inputs, self.kernel, lead
        ):
            return super().call(inputs, training=training)
        return _finish(self, _matmul(inputs, self.kernel, lead))


@keras.saving.register_keras_serializable(package="mmzoo")
class EinsumDense(keras.layers.EinsumDense):
    """`keras.layers.EinsumDense` whose product is a 1×1 convolution on
    PyTorch (float32, at least `MIN_ROWS` rows) when its equation is a
    dense layer's: the inputs' trailing axes contracted with the kernel's
    leading ones, e.g. `"abc,cde->abde"` (attention's query) or
    `"abcd,cde->abe"` (its output). Other equations are Keras' einsum.
    Named as Keras' class, which Keras' weight files key a model's layers
    by.

    Example:
    ```python
    layer = EinsumDense("abc,cde->abde", output_shape=(None, 2, 3))
    layer(np.ones((2, 300, 4), "float32")).shape  # (2, 300, 2, 3)
    ```
    """

    def call(self, inputs, training=None):
        contracted = _contracted_axes(self.equation)
        if self.quantization_mode is not None or contracted is None:
            return super().call(inputs, training=training)
        lead = tuple(inputs.shape[: len(inputs.shape) - contracted])
        if not _convolves(inputs, self.kernel, lead):
            return super().call(inputs, training=training)
        free = tuple(self.kernel.shape[contracted:])
        kernel = ops.reshape(self.kernel, (-1, math.prod(free)))
        x = ops.reshape(_matmul(inputs, kernel, lead), lead + free)
        return _finish(self, x)


def _contracted_axes(equation):
    """How many trailing input axes a dense-form einsum contracts with the
    kernel's leading ones, or `None` for another form."""
    inputs, outputs = equation.split("->")
    x, kernel = inputs.split(",")
    if "." in equation:
        return None
    contracted = [c for c in x if c in kernel and c not in outputs]
    n = len(contracted)
    joined = "".join(contracted)
    dense = (
        n > 0
        and x.endswith(joined)
        and kernel.startswith(joined)
        and outputs == x[: len(x) - n] + kernel[n:]
    )
    return n if dense else None


_SWAPS = {
    keras.layers.Dense: Dense,
    keras.layers.EinsumDense: EinsumDense,
}


def use_convolution_matmuls(model):
    """Switches every Keras `Dense` and `EinsumDense` inside `model` to the
    classes above, on PyTorch (elsewhere nothing changes). Only the
    layers' Python class changes: weights, names, configs and saved files
    are Keras'. Returns the number of layers switched.
    """
    return switch_layer_classes(model, _SWAPS, "torch")

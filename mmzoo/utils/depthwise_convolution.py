"""Depthwise convolutions as kernel-window products on JAX's CPU backend.

XLA:CPU runs a depthwise convolution (a grouped convolution with one group
per channel) far slower than the same arithmetic written out: on a 2-core
AMD EPYC, a 3×3 depthwise convolution of a `(128, 32, 32, 96)` batch took
274 ms through `jax.lax.conv_general_dilated(feature_group_count=96)` and
13 ms as the sum of its nine shifted, channel-scaled windows; EfficientNet-
Lite0 ran at 151 images/s in JAX against 769 in TensorFlow at 64×64, and
trained 17× slower. This module's `DepthwiseConv2D` computes that sum on
JAX when the default device is a CPU (channels last, a depth multiplier of
1, no dilation). On PyTorch it hands the channels-last inputs to PyTorch
as a channels-first view (Keras copies them to channels first at every
call). TensorFlow keeps Keras' layer. XLA differentiates the window sum
itself: the gradients are window products too. `use_fast_convolutions(model)`
switches a model's Keras `DepthwiseConv2D` layers to it, and its `Conv2D`
layers to mmzoo's on PyTorch (the same view).
"""

import keras
from keras import ops

from mmzoo.utils.layer_classes import switch_layer_classes


def on_channels_first_view(op, inputs):
    """`op` (a channels-first op) on channels-last `inputs` seen as a
    channels-first view with channels-last strides, its outputs viewed
    back: no copy on PyTorch, whose kernels then run channels last."""
    return ops.transpose(op(ops.transpose(inputs, (0, 3, 1, 2))), (0, 2, 3, 1))


def _on_cpu():
    import jax

    return jax.default_backend() == "cpu"


def _same_padding(size, kernel, stride):
    """TensorFlow's "same" padding `(before, after)` of one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def window_depthwise_conv(x, kernel, strides, padding):
    """`keras.ops.depthwise_conv` (channels last, multiplier 1) as a sum of
    shifted windows of `x` scaled by the kernel's taps.

    Args:
        x: `(batch, height, width, channels)`.
        kernel: `(kernel_h, kernel_w, channels, 1)`.
        strides: `(stride_h, stride_w)`.
        padding: `"valid"` or `"same"` (TensorFlow's).
    """
    kh, kw = kernel.shape[0], kernel.shape[1]
    sh, sw = strides
    if padding == "same":
        pads = (
            _same_padding(x.shape[1], kh, sh),
            _same_padding(x.shape[2], kw, sw),
        )
        x = ops.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    out_h = (x.shape[1] - kh) // sh + 1
    out_w = (x.shape[2] - kw) // sw + 1
    taps = kernel[..., 0]
    total = None
    for i in range(kh):
        for j in range(kw):
            window = x[
                :,
                i : i + (out_h - 1) * sh + 1 : sh,
                j : j + (out_w - 1) * sw + 1 : sw,
                :,
            ]
            term = window * taps[i, j]
            total = term if total is None else total + term
    return total


@keras.saving.register_keras_serializable(package="mmzoo")
class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """`keras.layers.DepthwiseConv2D` as window products on JAX's CPU
    backend, on a channels-first view on PyTorch (see this module's
    docstring). Named as Keras' class, which
    Keras' weight files key a model's layers by.

    Example:
    ```python
    layer = DepthwiseConv2D(3, strides=2, padding="same")
    layer(np.ones((2, 9, 9, 4), "float32")).shape  # (2, 5, 5, 4)
    ```
    """

    def call(self, inputs):
        if self._as_windows(inputs):
            kernel = ops.cast(self.kernel, inputs.dtype)
            outputs = window_depthwise_conv(
                inputs, kernel, self.strides, self.padding
            )
        elif self._on_view():
            outputs = on_channels_first_view(
                lambda x: ops.depthwise_conv(
                    x,
                    self.kernel,
                    strides=self.strides,
                    padding=self.padding,
                    data_format="channels_first",
                ),
                inputs,
            )
        else:
            return super().call(inputs)
        if self.use_bias:
            outputs = outputs + ops.cast(self.bias, outputs.dtype)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def _on_view(self):
        return (
            keras.config.backend() == "torch"
            and self.data_format == "channels_last"
            and tuple(self.dilation_rate) == (1, 1)
        )

    def _as_windows(self, inputs):
        return (
            keras.config.backend() == "jax"
            and self.data_format == "channels_last"
            and self.depth_multiplier == 1
            and tuple(self.dilation_rate) == (1, 1)
            and self.padding in ("valid", "same")
            and all(isinstance(d, int) for d in inputs.shape[1:])
            and _on_cpu()
        )


def use_fast_convolutions(model):
    """Switches the convolutions inside `model` to faster forms of the same
    layers: every Keras `DepthwiseConv2D` to this module's on JAX and
    PyTorch, and every Keras `Conv2D` to mmzoo's (which hands PyTorch the
    channels-last inputs as they are) on PyTorch. Only the layers' Python
    class changes; TensorFlow keeps Keras' layers. Returns the number of
    layers switched."""
    from mmzoo.models.encoders import conv_blocks

    backend = keras.config.backend()
    if backend not in ("jax", "torch"):
        return 0
    switched = switch_layer_classes(
        model, {keras.layers.DepthwiseConv2D: DepthwiseConv2D}, backend
    )
    if backend != "torch":
        return switched
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if type(layer) is keras.layers.Conv2D:
            layer.__class__ = conv_blocks.Conv2D
            layer.pool_size = None  # mmzoo's Conv2D without its pool
            layer.pool = None
            switched += 1
    return switched

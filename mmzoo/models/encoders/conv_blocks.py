import keras
from keras import ops

from mmzoo.utils.tracing import torch_compiling


def _edge(x, axis, size):
    """`size` slices of `-inf` along `axis` of `x`, or `None`."""
    if not size:
        return None
    shape = list(x.shape)
    shape[axis] = size
    return ops.full(shape, float("-inf"), dtype=x.dtype)


def _halve(x, axis):
    """Maximum of neighbouring pairs along `axis`; an odd last one alone.

    Pooling by 2 with `"same"` padding, along one axis, from strided
    slices: views on every backend, read once.
    """
    size = x.shape[axis]

    def take(start, stop=None, step=None):
        index = [slice(None)] * len(x.shape)
        index[axis] = slice(start, stop, step)
        return x[tuple(index)]

    pairs = size // 2
    evens = take(0, 2 * pairs, 2)
    odds = take(1, 2 * pairs, 2)
    pooled = ops.maximum(evens, odds)
    if size % 2:
        pooled = ops.concatenate([pooled, take(size - 1, size)], axis)
    return pooled


def _on_channels_first_view(op, inputs):
    """`op` (a channels-first op) on channels-last `inputs` seen as a
    channels-first view with channels-last strides, its outputs viewed
    back: no copy on PyTorch, whose kernels then run channels last."""
    return ops.transpose(op(ops.transpose(inputs, (0, 3, 1, 2))), (0, 2, 3, 1))


@keras.saving.register_keras_serializable(package="mmzoo")
class MaxPooling2D(keras.layers.MaxPooling2D):
    """`keras.layers.MaxPooling2D`, fast on PyTorch and JAX.

    The same results. On PyTorch, Keras' pool copies channels-last inputs
    to channels first and back and runs PyTorch's channels-first kernel
    (about a third of an mmzoo CNN encoder's time at batch 64), and with
    uneven `"same"` padding (an odd size pooled by 2) it pads by repeating
    the edge (`replication_pad2d`), whose backward pass torch.compile
    (2.13, CPU) mistakes the memory layout of (an `assert_size_stride`
    error). On PyTorch, a 2×2 pool with stride 2 (the encoders' pool) is
    therefore the maximum of strided slices, an odd edge kept alone (what
    `"same"` padding gives), 2-5× faster, outside training (the backward
    pass of `maximum` is slower than the pool's). In training, and for
    other pools, uneven `"same"` padding is `-inf` and the pool PyTorch's,
    given channels-last inputs as a channels-first view without a copy, so
    that PyTorch runs its channels-last kernel (6-8× faster than its
    channels-first one on the audio encoder's maps). On JAX it is the
    other way round: the 2×2 pool with stride 2 is the strided slices'
    maximum in training, since XLA's CPU gradient of Keras' pool
    (`select_and_scatter`) took 99 ms for the audio encoder's first map at
    batch 64, the slices' 23 ms (a training step of `av_digits_attention`
    290 -> 160 ms), and Keras' pool outside training, which XLA compiles
    better there (2.4× the slices' speed at batch 256). Where two inputs
    tie for the maximum, the slices share its gradient between them
    (another subgradient; the pool gives it all to one). A maximum never
    picks the padding, so the values are the same. TensorFlow uses Keras'
    own.

    Example:
    ```python
    layer = MaxPooling2D(2, padding="same")
    layer(np.zeros((1, 7, 7, 3), "float32")).shape  # (1, 4, 4, 3)
    ```
    """

    def call(self, inputs, training=None):
        backend = keras.config.backend()
        if backend not in ("torch", "jax") or self.padding != "same":
            return super().call(inputs)
        channels_last = self.data_format == "channels_last"
        first = 1 if channels_last else 2
        pairs = tuple(self.pool_size) == tuple(self.strides) == (2, 2)
        halve = training if backend == "jax" else not training
        if pairs and halve:
            return _halve(_halve(inputs, first), first + 1)
        if backend == "jax":
            return super().call(inputs)
        spatial = inputs.shape[1:-1] if channels_last else inputs.shape[2:]
        pads = []
        for size, pool, stride in zip(
            spatial, self.pool_size, self.strides
        ):
            total = max((-(-size // stride) - 1) * stride + pool - size, 0)
            pads.append((total // 2, total - total // 2))
        if all(before == after for before, after in pads):
            return self._pool(inputs, self.padding)
        # `-inf` edges concatenated (`ops.pad` would make a new Keras
        # operation, and name, at every call: torch.compile breaks its graph
        # on that).
        padded = inputs
        for axis, (before, after) in enumerate(pads, start=first):
            parts = [_edge(padded, axis, before), padded]
            parts.append(_edge(padded, axis, after))
            padded = ops.concatenate([p for p in parts if p is not None], axis)
        return self._pool(padded, "valid")

    def _pool(self, inputs, padding):
        if self.data_format != "channels_last":
            return ops.max_pool(
                inputs,
                self.pool_size,
                self.strides,
                padding=padding,
                data_format=self.data_format,
            )
        # Keras would copy channels-last inputs to channels first; the view
        # runs PyTorch's channels-last kernel.
        return _on_channels_first_view(
            lambda x: ops.max_pool(
                x,
                self.pool_size,
                self.strides,
                padding=padding,
                data_format="channels_first",
            ),
            inputs,
        )


# PyTorch inference convolves batches in chunks whose outputs are at most
# this large: glibc serves larger tensors with fresh memory from the OS at
# every call (its mmap threshold grows to 32 MB at most), whose page faults
# cost as much as the convolution.
_CHUNK_BYTES = 16 * 2**20

# Activations that never decrease: `max(f(x + b)) == f(max(x) + b)`.
_MONOTONIC = ("relu", "relu6", "elu", "selu", "sigmoid", "tanh", "linear")


@keras.saving.register_keras_serializable(package="mmzoo")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D`, optionally max pooled before its bias.

    With `pool_size`, returns what `MaxPooling2D(pool_size,
    padding="same")` returns on `keras.layers.Conv2D(...)`'s outputs,
    computed in the cheaper order
    `activation(pool(conv(x)) + bias)`: the same values (adding a
    per-channel bias and a non-decreasing activation commute with a
    maximum, rounding included), but the bias and activation touch a
    `pool_size`-times smaller tensor. At batch 64 the first audio conv's
    output is 33 MB, and on PyTorch every new tensor that large is fresh
    memory from the OS (page faults): adding the bias and applying ReLU
    took as long as the convolution. On PyTorch the convolution gets the
    channels-last inputs as a channels-first view (Keras copies them twice,
    to channels first and back to channels-last memory for oneDNN), and,
    outside training, a batch whose convolution outputs would exceed 16 MB
    is convolved and pooled in chunks (glibc serves larger tensors with
    fresh memory, page faults and all, at every call: at batch 256 this
    made the AV-digits model 1.5-1.7× faster). The weights are Keras'
    `Conv2D`'s
    (`kernel`, `bias`), and so is the class name, which Keras' weight files
    key layers by: the seed CNN's saved weights load into it.

    Args:
        filters, kernel_size, **kwargs: as `keras.layers.Conv2D`.
        pool_size: `None` (the default: Keras' `Conv2D`), or an int or
            tuple, the max pool's size and strides.
        activation: with `pool_size`, a non-decreasing activation
            (`"relu"`, `"relu6"`, `"elu"`, `"selu"`, `"sigmoid"`, `"tanh"`,
            `"linear"`) or `None`: only those commute with the maximum.

    Example:
    ```python
    layer = Conv2D(8, 3, pool_size=2, padding="same", activation="relu")
    layer(np.zeros((1, 7, 7, 3), "float32")).shape  # (1, 4, 4, 8)
    ```
    """

    def __init__(self, filters, kernel_size, pool_size=None, **kwargs):
        activation = kwargs.get("activation")
        monotonic = activation is None or activation in _MONOTONIC
        if pool_size is not None and not monotonic:
            raise ValueError(
                "`activation` must be one of "
                f"{_MONOTONIC} or None: the pool comes before it. "
                f"Received: activation={activation!r}"
            )
        super().__init__(filters, kernel_size, **kwargs)
        self.pool_size = pool_size
        self.pool = None
        if pool_size is not None:
            self.pool = MaxPooling2D(
                pool_size,
                padding="same",
                data_format=self.data_format,
                dtype=self.dtype_policy,
                name="pool",
            )

    def call(self, inputs, training=None):
        if self.pool is None:
            return super().call(inputs)
        if torch_compiling():
            # Keras' order while torch.compile traces: with the pool's
            # `-inf` edges straight after the convolution, inductor (2.13,
            # CPU) fails to lower the convolution's backward pass once it
            # compiles for dynamic shapes ("Exponent must be
            # non-negative"). The same values.
            return self.pool(super().call(inputs), training=training)
        outputs = self._pooled_convolution(inputs, training)
        if self.use_bias:
            if self.data_format == "channels_last":
                shape = (1, 1, 1, self.filters)
            else:
                shape = (1, self.filters, 1, 1)
            outputs = ops.add(outputs, ops.reshape(self.bias, shape))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def convolution_op(self, inputs, kernel):
        torch = keras.config.backend() == "torch"
        if not torch or self.data_format != "channels_last":
            return super().convolution_op(inputs, kernel)
        # On PyTorch Keras copies channels-last inputs to channels first,
        # then to channels-last memory again for oneDNN, which takes the
        # view as it is.
        return _on_channels_first_view(
            lambda x: ops.conv(
                x,
                kernel,
                strides=self.strides,
                padding=self.padding,
                dilation_rate=self.dilation_rate,
                data_format="channels_first",
            ),
            inputs,
        )

    def _pooled_convolution(self, inputs, training):
        batch = inputs.shape[0]
        chunks = 1
        if keras.config.backend() == "torch" and not training and batch:
            out = self.compute_output_shape(inputs.shape)
            pooled_bytes = inputs.dtype.itemsize
            for size in out:
                pooled_bytes *= size
            pool = self.pool.pool_size
            conv_bytes = pooled_bytes * pool[0] * pool[1]
            chunks = min(batch, -(-conv_bytes // _CHUNK_BYTES))
        if chunks <= 1:
            outputs = self.convolution_op(inputs, self.kernel)
            return self.pool(outputs, training=training)
        step = -(-batch // chunks)
        parts = []
        for start in range(0, batch, step):
            part = inputs[start : start + step]
            part = self.convolution_op(part, self.kernel)
            parts.append(self.pool(part, training=training))
        return ops.concatenate(parts, axis=0)

    def compute_output_shape(self, input_shape):
        shape = super().compute_output_shape(input_shape)
        if self.pool is None:
            return shape
        return self.pool.compute_output_shape(shape)

    def get_config(self):
        config = super().get_config()
        config["pool_size"] = self.pool_size
        return config


def conv_blocks(filters, dtype, name, data_format="channels_last"):
    """The seed CNN's blocks: `Conv2D 3×3 + ReLU, MaxPool 2×2` per filter,
    one mmzoo `Conv2D` with `pool_size=2` each.

    Pools use `"same"` padding, so any input size of at least one pixel
    gives a feature map (sizes halve, rounding up). `data_format` is always
    explicit, so Keras' global `image_data_format` never reinterprets the
    axes behind a caller's back.
    """
    blocks = []
    for i, width in enumerate(filters):
        # Named as the seed's conv layers, whose weights it holds.
        blocks.append(
            Conv2D(
                width,
                3,
                pool_size=2,
                padding="same",
                activation="relu",
                data_format=data_format,
                dtype=dtype,
                name=f"{name}_conv_{i}",
            )
        )
    return blocks

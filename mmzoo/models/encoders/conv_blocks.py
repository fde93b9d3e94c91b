import keras
from keras import ops

from mmzoo.utils.depthwise_convolution import on_channels_first_view
from mmzoo.utils.tracing import torch_compiling


def _edge(x, axis, size):
    """`size` slices of `-inf` along `axis` of `x`, or `None`."""
    if not size:
        return None
    shape = list(x.shape)
    shape[axis] = size
    return ops.full(shape, float("-inf"), dtype=x.dtype)


def _take(x, axis, start, stop=None, step=None):
    index = [slice(None)] * len(x.shape)
    index[axis] = slice(start, stop, step)
    return x[tuple(index)]


def _pairs(x, axis, op):
    """`op` of neighbouring pairs along `axis`; an odd last one alone.

    With `ops.maximum`, pooling by 2 with `"same"` padding along one axis,
    from strided slices: views on every backend, read once.
    """
    size = x.shape[axis]
    pairs = size // 2
    evens = _take(x, axis, 0, 2 * pairs, 2)
    odds = _take(x, axis, 1, 2 * pairs, 2)
    out = op(evens, odds)
    if size % 2:
        out = ops.concatenate([out, _take(x, axis, size - 1, size)], axis)
    return out


def _halve(x, axis):
    """Maximum of neighbouring pairs along `axis`; an odd last one alone."""
    return _pairs(x, axis, ops.maximum)


def _unpool(x, axis, size):
    """Each entry of `x` twice along `axis`, cut to `size`."""
    return _take(ops.repeat(x, 2, axis=axis), axis, 0, size)


def _patches(x, kernel_size, padding):
    """Each output position's input window, `(batch, rows, columns,
    kh * kw * channels)`, ordered as a `Conv2D` kernel's rows (stride 1,
    channels last)."""
    kh, kw = kernel_size
    if padding == "same":
        top, left = (kh - 1) // 2, (kw - 1) // 2
        x = ops.pad(
            x, ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0))
        )
    rows, columns = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    windows = [
        x[:, i : i + rows, j : j + columns, :]
        for i in range(kh)
        for j in range(kw)
    ]
    return ops.concatenate(windows, axis=-1)


def _unpatch(z, kernel_size, padding, shape):
    """The adjoint of `_patches`: each window of `z` summed back onto an
    input of `shape`."""
    kh, kw = kernel_size
    channels = shape[-1]
    total = None
    for i in range(kh):
        for j in range(kw):
            start = (i * kw + j) * channels
            part = ops.pad(
                z[..., start : start + channels],
                ((0, 0), (i, kh - 1 - i), (j, kw - 1 - j), (0, 0)),
            )
            total = part if total is None else total + part
    if padding == "same":
        top, left = (kh - 1) // 2, (kw - 1) // 2
        total = total[:, top : top + shape[1], left : left + shape[2], :]
    return total


def _narrow_convolution(inputs, kernel, padding):
    """`ops.conv` (stride 1, channels last) whose gradients are matrix
    products over the input windows: for inputs of a few channels, XLA's
    CPU convolution gradients take 3-4× longer (JAX)."""
    kernel_size = tuple(kernel.shape[:2])
    shape = tuple(inputs.shape)

    @ops.custom_gradient
    def convolve(x, w):
        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            rows = ops.reshape(w, (-1, w.shape[-1]))
            windows = _patches(x, kernel_size, padding)
            kernel_grad = ops.einsum("bhwn,bhwo->no", windows, upstream)
            windows_grad = ops.matmul(upstream, ops.transpose(rows))
            inputs_grad = _unpatch(windows_grad, kernel_size, padding, shape)
            return inputs_grad, ops.reshape(kernel_grad, w.shape)

        outputs = ops.conv(x, w, padding=padding, data_format="channels_last")
        return outputs, grad

    return convolve(inputs, kernel)


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
    channels-first one on the audio encoder's maps). On JAX the pool is
    Keras' (XLA compiles it well), but in training its 2×2, stride-2
    gradient is computed elementwise (a custom gradient): XLA's CPU
    gradient of the pool (`select_and_scatter`) took 99 ms for the audio
    encoder's first map at batch 64. Inputs tied for a window's maximum
    share its gradient equally (another subgradient; Keras' pool gives it
    all to one). A maximum never picks the padding, so the values are the
    same. TensorFlow uses Keras' own.

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
        if backend == "jax":
            if pairs and training:
                return self._pool_sharing_ties(inputs, first)
            return super().call(inputs)
        if pairs and not training:
            return _halve(_halve(inputs, first), first + 1)
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

    def _pool_sharing_ties(self, inputs, first):
        """Keras' 2×2 pool, its gradient elementwise: each input equal to
        its window's maximum gets the window's gradient divided by the
        number of such inputs."""
        parent = super().call
        rows, columns = inputs.shape[first], inputs.shape[first + 1]

        def unpool(x):
            return _unpool(_unpool(x, first, rows), first + 1, columns)

        @ops.custom_gradient
        def pool(x):
            pooled = parent(x)

            def grad(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                winners = ops.cast(ops.equal(x, unpool(pooled)), x.dtype)
                ties = _pairs(winners, first, ops.add)
                ties = _pairs(ties, first + 1, ops.add)
                return winners * unpool(upstream / ties)

            return pooled, grad

        return pool(inputs)

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
        return on_channels_first_view(
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

# On JAX, convolutions of inputs with at most this many channels take
# their gradients as matrix products over the input windows.
_NARROW_CHANNELS = 4

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
    made the AV-digits model 1.5-1.7× faster). On JAX, for inputs of at
    most 4 channels (the encoders' first convolution), the gradients are
    matrix products over the input windows (a custom gradient): XLA's CPU
    convolution gradients took 3-4× longer there. The weights are Keras'
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
        backend = keras.config.backend()
        narrow = (
            inputs.shape[-1] <= _NARROW_CHANNELS
            and tuple(self.strides) == (1, 1)
            and tuple(self.dilation_rate) == (1, 1)
            and self.groups == 1
        )
        if self.data_format != "channels_last":
            return super().convolution_op(inputs, kernel)
        if backend == "jax" and narrow:
            return _narrow_convolution(inputs, kernel, self.padding)
        if backend != "torch":
            return super().convolution_op(inputs, kernel)
        # On PyTorch Keras copies channels-last inputs to channels first,
        # then to channels-last memory again for oneDNN, which takes the
        # view as it is.
        return on_channels_first_view(
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

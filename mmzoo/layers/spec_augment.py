import keras
from keras import ops

from mmzoo.api_export import mmzoo_export


@mmzoo_export("mmzoo.layers.SpecAugment")
class SpecAugment(keras.layers.Layer):
    """SpecAugment-style masking of a spectrogram, in training only.

    Park et al. (2019) mask random bands of time steps and of frequency
    bins so a speech model cannot rely on any one of them. For each
    example, `time_masks` bands of `0..time_mask_width` consecutive time
    steps and `freq_masks` bands of `0..freq_mask_width` consecutive bins
    (widths and positions drawn uniformly) are set to `mask_value`. Use it
    after a per-frame normalisation, where 0 is the mean. At inference (and
    whenever `training` is not true) the input passes through unchanged.

    Args:
        time_masks: int. Number of time bands per example.
        time_mask_width: int. Largest width of a time band, in steps.
        freq_masks: int. Number of frequency bands per example.
        freq_mask_width: int. Largest width of a frequency band, in bins.
        mask_value: float. Value written into the bands.
        seed: optional int, the seed of the draws.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`.

    Call arguments:
        inputs: a `(batch, time, freq)` or `(batch, time, freq, channels)`
            tensor.
        training: bool. Masks are drawn only when true.

    Example:
    ```python
    layer = mmzoo.layers.SpecAugment(time_masks=2, time_mask_width=10,
                                     freq_masks=2, freq_mask_width=8)
    spectrogram = np.ones((4, 100, 40), "float32")
    masked = layer(spectrogram, training=True)  # some bands are 0
    layer(spectrogram)  # unchanged
    ```
    """

    def __init__(
        self,
        time_masks=2,
        time_mask_width=10,
        freq_masks=2,
        freq_mask_width=8,
        mask_value=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("time_masks", time_masks),
            ("time_mask_width", time_mask_width),
            ("freq_masks", freq_masks),
            ("freq_mask_width", freq_mask_width),
        ):
            if isinstance(value, bool) or int(value) != value or value < 0:
                raise ValueError(
                    f"`{name}` must be a non-negative int. Received: {value!r}"
                )
        self.time_masks = int(time_masks)
        self.time_mask_width = int(time_mask_width)
        self.freq_masks = int(freq_masks)
        self.freq_mask_width = int(freq_mask_width)
        self.mask_value = float(mask_value)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def _bands(self, batch, length, count, max_width):
        """A `(batch, length)` boolean: inside any of `count` bands."""
        shape = (batch, count, 1)
        width = ops.floor(
            keras.random.uniform(shape, seed=self.seed_generator)
            * (max_width + 1)
        )
        width = ops.minimum(width, ops.cast(length, "float32"))
        start = ops.floor(
            keras.random.uniform(shape, seed=self.seed_generator)
            * (ops.cast(length, "float32") - width + 1)
        )
        position = ops.cast(ops.arange(length), "float32")[None, None, :]
        inside = ops.logical_and(position >= start, position < start + width)
        return ops.any(inside, axis=1)

    def call(self, inputs, training=None):
        if not training or (
            (self.time_masks == 0 or self.time_mask_width == 0)
            and (self.freq_masks == 0 or self.freq_mask_width == 0)
        ):
            return inputs
        if len(inputs.shape) not in (3, 4):
            raise ValueError(
                "SpecAugment expects a (batch, time, freq) or (batch, time, "
                f"freq, channels) input. Received shape {inputs.shape}."
            )
        shape = ops.shape(inputs)
        batch, time, freq = shape[0], shape[1], shape[2]
        masked = ops.zeros((batch, time, freq), "bool")
        if self.time_masks and self.time_mask_width:
            bands = self._bands(
                batch, time, self.time_masks, self.time_mask_width
            )
            masked = ops.logical_or(masked, bands[:, :, None])
        if self.freq_masks and self.freq_mask_width:
            bands = self._bands(
                batch, freq, self.freq_masks, self.freq_mask_width
            )
            masked = ops.logical_or(masked, bands[:, None, :])
        if len(inputs.shape) == 4:
            masked = masked[..., None]
        value = ops.cast(self.mask_value, inputs.dtype)
        return ops.where(masked, value, inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "time_masks": self.time_masks,
                "time_mask_width": self.time_mask_width,
                "freq_masks": self.freq_masks,
                "freq_mask_width": self.freq_mask_width,
                "mask_value": self.mask_value,
                "seed": self.seed,
            }
        )
        return config

import keras
from keras_hub.models import Backbone

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.masked_average_pooling import MaskedAveragePooling
from mmzoo.layers.spec_augment import SpecAugment
from mmzoo.models.encoders.conv_blocks import conv_blocks
from mmzoo.models.encoders.mel_spectrogram import MelSpectrogram
from mmzoo.models.encoders.per_clip_decibels import PerClipDecibels


@mmzoo_export("mmzoo.models.AudioEncoder")
class AudioEncoder(Backbone):
    """An audio encoder over raw mono waveforms: log-mel front end + CNN.

    `keras.layers.MelSpectrogram` turns the waveform into a mel power
    spectrogram, converted to dB and floored `top_db` below each clip's own
    loudest bin (computed in float32 even under mixed precision), so a
    clip's outputs are the same alone and in any batch (MelSpectrogram's own
    dB conversion floors every clip by the loudest clip of the batch), each
    frame is normalised across its mel bins (`LayerNormalization`),
    then `Conv2D(3×3) + ReLU + MaxPool(2×2)` blocks run over the
    (time, mel) plane, every remaining time step is projected to
    `hidden_dim`, and the pooled vector is the mean over time.

    Args:
        sample_rate: int. Sample rate of the waveforms, in Hz.
        num_mel_bins: int. Number of mel bands.
        fft_length: int. FFT size (and window length), in samples.
        sequence_stride: int. Hop between frames, in samples.
        filters: tuple of ints, the width of each conv block.
        hidden_dim: int. Width of the outputs.
        dropout: float. Dropout before the projection.
        spec_augment: optional dict of `mmzoo.layers.SpecAugment` arguments
            (e.g. `{"time_masks": 2, "time_mask_width": 10, "freq_masks": 2,
            "freq_mask_width": 8}`): masks bands of the normalised log-mel
            spectrogram while training. Defaults to `None`, no masking.
        top_db: float. Dynamic range kept below each clip's loudest mel bin,
            in dB. Defaults to `80.0`.
        dtype: string or `keras.mixed_precision.DTypePolicy`.

    Inputs:
        A float tensor `(batch, samples)` of at least `fft_length` samples.

    Outputs:
        A dict with `"sequence_output"` `(batch, frames, hidden_dim)` and
        `"pooled_output"` `(batch, hidden_dim)`.

    Example:
    ```python
    encoder = mmzoo.models.AudioEncoder(sample_rate=8000)
    encoder(np.zeros((2, 8000)))["pooled_output"].shape  # (2, 128)
    ```
    """

    def __init__(
        self,
        sample_rate=16000,
        num_mel_bins=64,
        fft_length=512,
        sequence_stride=160,
        filters=(32, 64),
        hidden_dim=128,
        dropout=0.0,
        spec_augment=None,
        top_db=80.0,
        dtype=None,
        **kwargs,
    ):
        filters = tuple(int(f) for f in filters)
        spec_augment = dict(spec_augment) if spec_augment else None
        mel_bins_out = num_mel_bins
        for _ in filters:
            mel_bins_out = -(-mel_bins_out // 2)
        # === Layers ===
        # Keras' layer, made traceable by torch.compile.
        self.melspectrogram = MelSpectrogram(
            fft_length=fft_length,
            sequence_stride=sequence_stride,
            sampling_rate=sample_rate,
            num_mel_bins=num_mel_bins,
            power_to_db=False,
            dtype="float32",
            name="melspectrogram",
        )
        self.decibels = PerClipDecibels(
            top_db=top_db, dtype="float32", name="decibels"
        )
        self.to_frames = keras.layers.Permute(
            (2, 1), dtype=dtype, name="to_frames"
        )
        self.frame_norm = keras.layers.LayerNormalization(
            dtype=dtype, name="frame_norm"
        )
        self.spec_augment_layer = None
        if spec_augment is not None:
            self.spec_augment_layer = SpecAugment(
                **spec_augment, dtype=dtype, name="spec_augment"
            )
        self.to_plane = keras.layers.Reshape(
            (-1, num_mel_bins, 1), dtype=dtype, name="to_plane"
        )
        # The (time, mel, 1) plane is built here, channels last, whatever
        # Keras' global `image_data_format` says.
        self.blocks = conv_blocks(
            filters, dtype, name="block", data_format="channels_last"
        )
        self.flatten_frames = keras.layers.Reshape(
            (-1, mel_bins_out * filters[-1]), dtype=dtype, name="flatten_frames"
        )
        self.dropout_layer = keras.layers.Dropout(
            dropout, dtype=dtype, name="dropout"
        )
        self.projection = keras.layers.Dense(
            hidden_dim, dtype=dtype, name="projection"
        )
        self.pooler = MaskedAveragePooling(dtype=dtype, name="pooler")

        # === Functional Model ===
        audio = keras.Input(shape=(None,), dtype="float32", name="audio")
        x = self.melspectrogram(audio)
        x = self.decibels(x)
        x = self.to_frames(x)
        x = self.frame_norm(x)
        if self.spec_augment_layer is not None:
            x = self.spec_augment_layer(x)
        x = self.to_plane(x)
        for layer in self.blocks:
            x = layer(x)
        x = self.flatten_frames(x)
        x = self.dropout_layer(x)
        sequence = self.projection(x)
        pooled = self.pooler(sequence)
        super().__init__(
            inputs=audio,
            outputs={"sequence_output": sequence, "pooled_output": pooled},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.sample_rate = sample_rate
        self.num_mel_bins = num_mel_bins
        self.fft_length = fft_length
        self.sequence_stride = sequence_stride
        self.filters = filters
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.spec_augment = spec_augment
        self.top_db = top_db

    @property
    def min_sequence_length(self):
        """The shortest waveform, in samples, the front end accepts."""
        return self.fft_length

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sample_rate": self.sample_rate,
                "num_mel_bins": self.num_mel_bins,
                "fft_length": self.fft_length,
                "sequence_stride": self.sequence_stride,
                "filters": self.filters,
                "hidden_dim": self.hidden_dim,
                "dropout": self.dropout,
                "spec_augment": self.spec_augment,
                "top_db": self.top_db,
            }
        )
        return config

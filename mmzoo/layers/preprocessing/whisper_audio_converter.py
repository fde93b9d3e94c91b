import keras_hub
import numpy as np
from keras_hub.src.utils.tensor_utils import convert_to_numpy

from mmzoo.api_export import mmzoo_export

WHISPER_SAMPLE_RATE = 16000


def _is_symbolic(audio):
    try:
        import tensorflow as tf
    except ImportError:
        return False
    return isinstance(audio, (tf.Tensor, tf.RaggedTensor)) and (
        not tf.executing_eagerly()
    )


@mmzoo_export("mmzoo.layers.WhisperAudioConverter")
class WhisperAudioConverter(keras_hub.layers.WhisperAudioConverter):
    """Whisper's 80-bin log-mel features, from checked 16 kHz waveforms.

    keras-hub's `WhisperAudioConverter` (the features Whisper was trained
    on: a 25 ms Hann window every 10 ms, 80 mel bins, log10, clipped 8 below
    the clip's maximum, scaled to about [-1, 1]), with two additions:

    - windows of any length, including fractions of a second
      (`max_audio_length=1.5`): waveforms are zero-padded or trimmed to it,
      giving `100 × max_audio_length` frames;
    - clear errors for bad input: a rank other than 1 or 2, a non-float
      dtype, empty audio, NaN or infinite samples, or a sample rate other
      than the 16 kHz Whisper was trained on.

    It is the `audio_converter` of a `mmzoo.models.MultimodalPreprocessor`
    whose audio encoder is a `mmzoo.models.WhisperAudioEncoder`.

    Args:
        max_audio_length: float. Window length in seconds. Defaults to `30`.
        sampling_rate: int. Must be `16000`; given so that configs state it.
        **kwargs: the other arguments of keras-hub's converter.

    Call arguments:
        audio: float waveforms in [-1, 1], `(samples,)` or `(batch,
            samples)`, at 16 kHz.
        sample_rate: optional int. The rate `audio` was recorded at; a
            mismatch raises an error instead of computing wrong features.

    Example:
    ```python
    converter = mmzoo.layers.WhisperAudioConverter(max_audio_length=2)
    converter(np.zeros((4, 30000), "float32")).shape  # (4, 200, 80)
    converter(audio_8k, sample_rate=8000)  # ValueError: resample first
    ```
    """

    def __init__(
        self, max_audio_length=30, sampling_rate=WHISPER_SAMPLE_RATE, **kwargs
    ):
        if int(sampling_rate) != WHISPER_SAMPLE_RATE:
            raise ValueError(
                "Whisper's features are defined on 16 kHz audio; "
                f"`sampling_rate` must be 16000. Received: {sampling_rate}. "
                "Resample the audio first, e.g. "
                "`scipy.signal.resample_poly(audio, 16000, rate, axis=-1)`."
            )
        if not max_audio_length > 0:
            raise ValueError(
                "`max_audio_length` must be a positive number of seconds. "
                f"Received: {max_audio_length}"
            )
        # Features in float32 whatever the global policy: the STFT has no
        # bfloat16 kernel, and the encoder casts them itself.
        kwargs.setdefault("dtype", "float32")
        super().__init__(
            max_audio_length=max_audio_length,
            sampling_rate=int(sampling_rate),
            **kwargs,
        )
        self.num_samples = int(round(self.sampling_rate * max_audio_length))

    @property
    def num_frames(self):
        """Frames per window: one every `stride` samples."""
        return self.num_samples // self.stride

    def audio_shape(self):
        return (self.num_frames, self.num_mels)

    def _check(self, audio, sample_rate):
        if sample_rate is not None and int(sample_rate) != self.sampling_rate:
            raise ValueError(
                f"Modality 'audio' was declared at {sample_rate} Hz; Whisper "
                f"takes {self.sampling_rate} Hz. Resample it first, e.g. "
                "`scipy.signal.resample_poly(audio, 16000, "
                f"{sample_rate}, axis=-1)`."
            )
        if _is_symbolic(audio):
            shape, dtype = audio.shape, audio.dtype
            if shape.rank is not None and shape.rank not in (1, 2):
                raise ValueError(
                    "Modality 'audio' expects float waveforms of shape "
                    "(samples,) or (batch, samples). Received shape "
                    f"{tuple(shape)}."
                )
            if not dtype.is_floating:
                raise ValueError(
                    "Modality 'audio' expects float waveforms (e.g. float32 "
                    f"in [-1, 1]). Received dtype {dtype.name}."
                )
            return
        if (
            isinstance(audio, (list, tuple))
            and audio
            and all(np.ndim(row) == 1 for row in audio)
        ):
            rows = [np.asarray(row) for row in audio]
        else:
            array = convert_to_numpy(audio)
            if array.ndim not in (1, 2):
                raise ValueError(
                    "Modality 'audio' expects float waveforms of shape "
                    "(samples,) or (batch, samples). Received shape "
                    f"{array.shape}."
                )
            rows = [array] if array.ndim == 1 else list(array)
        if not rows:
            raise ValueError(
                "Modality 'audio' got an empty batch; expected at least one "
                "waveform."
            )
        for i, row in enumerate(rows):
            if row.dtype.kind != "f":
                raise ValueError(
                    "Modality 'audio' expects float waveforms (e.g. float32 "
                    f"in [-1, 1]). Received dtype {row.dtype}; scale integer "
                    "PCM first, e.g. `x / 32768.0`."
                )
            if row.size == 0:
                raise ValueError(
                    f"Modality 'audio' got an empty waveform at row {i}; "
                    "expected at least one sample."
                )
            if not np.all(np.isfinite(row)):
                raise ValueError(
                    f"Modality 'audio' has NaN or infinite samples at row {i}."
                )

    def call(self, audio, sample_rate=None):
        self._check(audio, sample_rate)
        return super().call(audio)

import keras_hub
import numpy as np
from keras_hub.src.utils.audio_utils import frame_signal
from keras_hub.src.utils.audio_utils import hann_window
from keras_hub.src.utils.tensor_utils import convert_to_numpy

from mmzoo.api_export import mmzoo_export
from mmzoo.utils.resampling import check_rate
from mmzoo.utils.resampling import resample

WHISPER_SAMPLE_RATE = 16000
# A trailing axis at most this long is read as channels, never as samples.
MAX_CHANNELS = 8
# Float waveforms are nominally in [-1, 1]; a larger peak than this (24 dB
# over full scale) is integer PCM cast to float without scaling.
MAX_AMPLITUDE = 16.0
_PCM_SCALING = {
    "int8": "`x / 128.0`",
    "uint8": "`(x - 128) / 128.0`",
    "int16": "`x / 32768.0`",
    "int32": "`x / 2147483648.0`",
}


def _tf():
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf


def _is_symbolic(audio):
    tf = _tf()
    return (
        tf is not None
        and isinstance(audio, (tf.Tensor, tf.RaggedTensor))
        and not tf.executing_eagerly()
    )


def _is_ragged(audio):
    tf = _tf()
    return tf is not None and isinstance(audio, tf.RaggedTensor)


def _dtype_error(dtype, where=""):
    dtype = np.dtype(dtype) if not isinstance(dtype, str) else dtype
    name = str(dtype)
    scaling = _PCM_SCALING.get(name, "e.g. `x / 32768.0` for int16")
    return ValueError(
        "Modality 'audio' expects float waveforms (e.g. float32 in [-1, 1])"
        f". Received dtype {name}{where}; integer PCM is not scaled "
        f"implicitly: scale it first, {scaling}."
    )


@mmzoo_export("mmzoo.layers.WhisperAudioConverter")
class WhisperAudioConverter(keras_hub.layers.WhisperAudioConverter):
    """Whisper's 80-bin log-mel features, from checked 16 kHz waveforms.

    keras-hub's `WhisperAudioConverter` (the features Whisper was trained
    on: a 25 ms Hann window every 10 ms, 80 mel bins, log10, clipped 8 below
    the clip's maximum, scaled to about [-1, 1]), with these additions:

    - windows of any length, including fractions of a second
      (`max_audio_length=1.5`): waveforms are zero-padded at the end or
      trimmed to it, giving `100 × max_audio_length` frames;
    - a declared sample rate: `converter(audio, sample_rate=8000)`
      resamples the audio to 16 kHz (`mmzoo.utils.resampling.resample`, a
      polyphase filter) before computing features. Undeclared
      (`sample_rate=None`), the audio is taken to be at 16 kHz, as before.
    - every input form, checked eagerly: an array `(samples,)` (one clip;
      the features come back unbatched, `(frames, 80)`) or `(batch,
      samples)`; a list of clips of different lengths; a
      `tf.RaggedTensor` `(batch, None)`. Each clip is padded or trimmed to
      the window.
    - stereo: `(batch, samples, channels)`, or list clips `(samples,
      channels)`, with at most 8 channels, are mixed down to mono by
      averaging the channels. Channels-first audio, and a 2-D array whose
      last axis is 8 or shorter (one clip `(samples, channels)`, not a
      batch of 8-sample clips), are refused.
    - clear errors for bad input: a dict, a rank other than those above,
      a non-float dtype (integer PCM is refused, never scaled implicitly:
      the message gives the scaling, e.g. `x / 32768.0` for int16),
      float samples beyond ±16 (integer PCM cast to float), an empty batch
      or clip, NaN or infinite samples.

    Inside a `tf.data` pipeline (graph mode) only the rank and dtype can be
    checked; a declared rate is resampled there with `tf.numpy_function`.

    It is the `audio_converter` of a `mmzoo.models.MultimodalPreprocessor`
    whose audio encoder is a `mmzoo.models.WhisperAudioEncoder`.

    Args:
        max_audio_length: float. Window length in seconds. Defaults to `30`.
        sampling_rate: int. Must be `16000`; given so that configs state it.
        **kwargs: the other arguments of keras-hub's converter.

    Call arguments:
        audio: float waveforms in [-1, 1], in any form listed above.
        sample_rate: optional int. The rate `audio` was recorded at, in Hz;
            resampled to 16 kHz when it differs. `None`: 16 kHz.

    Example:
    ```python
    converter = mmzoo.layers.WhisperAudioConverter(max_audio_length=2)
    converter(np.zeros((4, 30000), "float32")).shape  # (4, 200, 80)
    converter(np.zeros((4, 15000), "float32"), sample_rate=8000).shape
    # (4, 200, 80): resampled to 16 kHz first
    converter([np.zeros(9000), np.zeros(40000)]).shape  # (2, 200, 80)
    ```
    """

    def __init__(
        self, max_audio_length=30, sampling_rate=WHISPER_SAMPLE_RATE, **kwargs
    ):
        if int(sampling_rate) != WHISPER_SAMPLE_RATE:
            raise ValueError(
                "Whisper's features are defined on 16 kHz audio; "
                f"`sampling_rate` must be 16000. Received: {sampling_rate}. "
                "Declare the rate of your audio when calling instead, e.g. "
                "`converter(audio, sample_rate=8000)`, and it is resampled."
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

    # --- Features -----------------------------------------------------------
    # keras-hub computes the features twice over: NumPy when called eagerly
    # (`_extract_audio_features_python`), TensorFlow inside tf.data
    # (`_extract_audio_features`). In float32 their FFTs round differently
    # (up to 3e-6 apart on the same clip), so a direct call and the same
    # call mapped over a dataset disagreed. Both run the same steps in
    # float64 here and round to float32 once, at the end: they agree to
    # float32 rounding.

    def _extract_audio_features(self, audio):
        tf = _tf()
        audio = tf.cast(audio, "float64")
        pad = self.num_fft_bins // 2
        audio = tf.pad(audio, [[0, 0], [pad, pad]], mode="REFLECT")
        stft = tf.signal.stft(
            audio,
            frame_length=self.num_fft_bins,
            frame_step=self.stride,
            fft_length=self.num_fft_bins,
            # The same window as the NumPy path, to the last bit.
            window_fn=lambda _, dtype: tf.constant(
                hann_window(self.num_fft_bins, dtype="float64"), dtype
            ),
        )
        return self._log_mel_features(tf.square(tf.abs(stft[:, :-1, :])))

    def _log_mel_features(self, magnitudes):
        """Whisper's features from STFT powers `(batch, frames, bins)`
        (TensorFlow ops, in the powers' dtype): mel bins, log10, clipped 8
        below each clip's peak, scaled. Shared by the ONNX export, whose
        STFT is a DFT convolution (`mmzoo.utils.onnx_export`)."""
        tf = _tf()
        mel_spec = tf.matmul(
            magnitudes, tf.constant(self.mel_filters, magnitudes.dtype)
        )
        log_spec = tf.math.log(tf.maximum(mel_spec, 1e-10)) / np.log(10.0)
        floor = tf.reduce_max(log_spec, axis=[1, 2], keepdims=True) - 8.0
        log_spec = (tf.maximum(log_spec, floor) + 4.0) / 4.0
        return tf.cast(log_spec, self.compute_dtype)

    def _extract_audio_features_python(self, audio):
        audio = np.asarray(audio, "float64")
        pad = self.num_fft_bins // 2
        audio = np.pad(audio, ((0, 0), (pad, pad)), mode="reflect")
        frames = frame_signal(audio, self.num_fft_bins, self.stride)
        frames = frames * hann_window(self.num_fft_bins, dtype="float64")
        stft = np.fft.rfft(frames, n=self.num_fft_bins, axis=-1)
        magnitudes = np.square(np.abs(stft[:, :-1, :]))
        mel_spec = magnitudes @ self.mel_filters.astype("float64")
        log_spec = np.log(np.maximum(mel_spec, 1e-10)) / np.log(10.0)
        floor = np.max(log_spec, axis=(1, 2), keepdims=True) - 8.0
        log_spec = (np.maximum(log_spec, floor) + 4.0) / 4.0
        return log_spec.astype(self.compute_dtype)

    # --- Eager path ---------------------------------------------------------

    def _rows(self, audio):
        """Checked mono clips as a list of 1-D arrays, and if unbatched."""
        if isinstance(audio, dict):
            raise ValueError(
                "Modality 'audio' expects waveforms (an array, a list of "
                "clips or a tf.RaggedTensor), not a dict. Received a dict "
                f"with keys {sorted(map(str, audio))}; pass the waveforms "
                "themselves."
            )
        if isinstance(audio, (list, tuple)) and not audio:
            raise ValueError(
                "Modality 'audio' got an empty list; expected at least one "
                "waveform."
            )
        if isinstance(audio, (list, tuple)) and any(
            np.ndim(row) >= 1 for row in audio
        ):
            return [self._clip(row, i) for i, row in enumerate(audio)], False
        if _is_ragged(audio):
            values = audio.flat_values.numpy()
            splits = audio.nested_row_splits
            if len(splits) != 1 or values.ndim != 1:
                raise ValueError(
                    "Modality 'audio' expects a tf.RaggedTensor of shape "
                    f"(batch, None). Received shape {tuple(audio.shape)}."
                )
            bounds = splits[0].numpy()
            rows = [values[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
            return [self._clip(row, i) for i, row in enumerate(rows)], False
        array = convert_to_numpy(audio)
        if array.dtype == object:
            raise ValueError(
                "Modality 'audio' expects float waveforms. Received an "
                f"object array of shape {array.shape}; pass a list of 1-D "
                "clips for clips of different lengths."
            )
        if array.ndim == 1:
            return [self._clip(array, None)], True
        if array.ndim == 2 and 1 <= array.shape[-1] <= MAX_CHANNELS:
            raise ValueError(
                "Modality 'audio' expects (batch, samples). Received shape "
                f"{array.shape}: clips of {array.shape[-1]} samples, or one "
                "clip (samples, channels)? Give one multichannel clip as "
                "(1, samples, channels), or mix it down first, e.g. "
                "`x.mean(axis=-1)`."
            )
        if array.ndim == 3:
            if array.shape[-1] > MAX_CHANNELS:
                raise ValueError(
                    "Modality 'audio' takes multichannel audio as (batch, "
                    f"samples, channels) with at most {MAX_CHANNELS} "
                    f"channels. Received shape {array.shape}; transpose "
                    "channels-first audio, e.g. `np.swapaxes(x, 1, 2)`."
                )
            self._check_dtype(array.dtype, "")
            array = array.mean(axis=-1)
        if array.ndim != 2:
            raise ValueError(
                "Modality 'audio' expects float waveforms of shape "
                "(samples,), (batch, samples) or (batch, samples, channels)"
                f". Received shape {array.shape}."
            )
        self._check_dtype(array.dtype, "")
        return [self._clip(row, i) for i, row in enumerate(array)], False

    def _check_dtype(self, dtype, where):
        if np.dtype(dtype).kind != "f":
            raise _dtype_error(dtype, where)

    def _check_values(self, clip, row):
        where = "" if row is None else f" at row {row}"
        if clip.shape[-1] == 0:
            raise ValueError(
                f"Modality 'audio' got an empty waveform{where} (shape "
                f"{clip.shape}); expected at least one sample."
            )
        finite = np.isfinite(clip)
        if not np.all(finite):
            bad = np.argwhere(~finite)[0]
            at = "" if row is not None else f" at index {tuple(bad)}"
            raise ValueError(
                f"Modality 'audio' has NaN or infinite samples{where}{at}; "
                "expected finite float waveforms."
            )
        peak = float(np.max(np.abs(clip)))
        if peak > MAX_AMPLITUDE:
            raise ValueError(
                "Modality 'audio' expects float waveforms in [-1, 1]. "
                f"Received a peak of {peak:g}{where} (more than "
                f"{MAX_AMPLITUDE:g}): integer PCM cast to float? Scale it, "
                "e.g. `x / 32768.0` for 16-bit PCM."
            )

    def _clip(self, row, i):
        """One clip of a list or ragged batch, checked and mixed to mono."""
        if row is None:
            raise ValueError(
                f"Modality 'audio' got None at row {i}; expected a waveform."
            )
        where = "" if i is None else f" at row {i}"
        clip = convert_to_numpy(row)
        if clip.ndim == 2 and 1 <= clip.shape[-1] <= MAX_CHANNELS:
            self._check_dtype(clip.dtype, where)
            clip = clip.mean(axis=-1)
        if clip.ndim != 1:
            expected = "(samples,)" + (
                "" if i is None else " or (samples, channels)"
            )
            raise ValueError(
                f"Modality 'audio' expects each clip of shape {expected}. "
                f"Received shape {clip.shape}{where}."
            )
        self._check_dtype(clip.dtype, where)
        self._check_values(clip, i)
        return clip

    def standardize(self, audio, sample_rate=None):
        """Eagerly turns any accepted audio into `(batch, num_samples)`.

        Checks it (the errors listed in the class docstring), mixes it down
        to mono, resamples it from `sample_rate` to 16 kHz when declared,
        and pads or trims each clip to the window. A 1-D clip gives a batch
        of one.

        Returns:
            float32 numpy array `(batch, num_samples)`.
        """
        return self._standardize(audio, sample_rate)[0]

    def _standardize(self, audio, sample_rate):
        if sample_rate is not None:
            sample_rate = check_rate(sample_rate)
        rows, unbatched = self._rows(audio)
        if not rows:
            raise ValueError(
                "Modality 'audio' got an empty batch; expected at least one "
                "waveform."
            )
        return self._window(rows, sample_rate), unbatched

    def _window(self, rows, sample_rate):
        """Checked 1-D clips resampled, padded or trimmed, float32."""
        if sample_rate is not None:
            rows = resample(rows, sample_rate, self.sampling_rate)
        batch = np.zeros((len(rows), self.num_samples), "float32")
        for i, row in enumerate(rows):
            row = row[: self.num_samples]
            batch[i, : len(row)] = row
        return batch

    # --- Graph (tf.data) path ------------------------------------------------

    def _symbolic(self, audio, sample_rate):
        """Checks what a graph tensor shows, and resamples a declared rate."""
        tf = _tf()
        shape, dtype = audio.shape, audio.dtype
        if shape.rank is not None and shape.rank not in (1, 2):
            raise ValueError(
                "Modality 'audio' expects float waveforms of shape "
                "(samples,) or (batch, samples) inside tf.data. Received "
                f"shape {tuple(shape)}."
            )
        if not dtype.is_floating:
            raise _dtype_error(dtype.name)
        if sample_rate is None or sample_rate == self.sampling_rate:
            return audio
        if _is_ragged(audio):
            audio = audio.to_tensor()
        rank = audio.shape.rank
        audio = tf.numpy_function(
            lambda a: resample(a, sample_rate, self.sampling_rate),
            [audio],
            audio.dtype,
        )
        return tf.ensure_shape(audio, [None] * rank)

    def call(self, audio, sample_rate=None):
        if sample_rate is not None:
            sample_rate = check_rate(sample_rate)
        if _is_symbolic(audio):
            return super().call(self._symbolic(audio, sample_rate))
        batch, unbatched = self._standardize(audio, sample_rate)
        return super().call(batch[0] if unbatched else batch)

from keras_hub.layers import AudioConverter

from mmzoo.api_export import mmzoo_export


@mmzoo_export("mmzoo.layers.WaveformConverter")
class WaveformConverter(AudioConverter):
    """Pads or trims raw mono waveforms to a fixed number of samples.

    The audio converter of `mmzoo.models.MultimodalPreprocessor`: it takes
    float waveforms `(batch, samples)` at `sample_rate` Hz, casts them to
    float32 and zero-pads (at the end) or trims each to `num_samples`, so
    batches have one shape for `fit`. It runs inside `tf.data` pipelines.
    The log-mel front end lives in the model (`mmzoo.models.AudioEncoder`), so
    it runs on the accelerator and is saved with the weights.

    Args:
        sample_rate: int. Expected sample rate, in Hz (recorded in the
            config so presets state what they were trained on).
        num_samples: int. Output length, in samples.

    Example:
    ```python
    converter = mmzoo.layers.WaveformConverter(sample_rate=8000,
                                               num_samples=8000)
    converter(np.zeros((2, 5000), "float32")).shape  # (2, 8000)
    ```
    """

    def __init__(self, sample_rate=16000, num_samples=16000, **kwargs):
        super().__init__(**kwargs)
        if int(num_samples) <= 0:
            raise ValueError(
                f"`num_samples` must be positive. Received: {num_samples}"
            )
        self.sample_rate = int(sample_rate)
        self.num_samples = int(num_samples)
        self._allow_python_workflow = False

    def audio_shape(self):
        return (self.num_samples,)

    def call(self, audio):
        import tensorflow as tf

        audio = tf.convert_to_tensor(audio)
        if audio.shape.rank != 2:
            raise ValueError(
                "Modality 'audio' expects float waveforms of shape "
                f"(batch, samples). Received shape {tuple(audio.shape)}."
            )
        if not audio.dtype.is_floating:
            raise ValueError(
                "Modality 'audio' expects float waveforms (e.g. float32 in "
                f"[-1, 1]). Received dtype {audio.dtype.name}; scale integer "
                "PCM first, e.g. `x / 32768.0`."
            )
        if audio.shape[1] == 0:
            raise ValueError(
                "Modality 'audio' got zero-length waveforms (shape "
                f"{tuple(audio.shape)}); expected at least one sample."
            )
        audio = tf.cast(audio, "float32")[:, : self.num_samples]
        pad = self.num_samples - tf.shape(audio)[1]
        audio = tf.pad(audio, [[0, 0], [0, pad]])
        return tf.ensure_shape(audio, [None, self.num_samples])

    def get_config(self):
        config = super().get_config()
        config.update(
            {"sample_rate": self.sample_rate, "num_samples": self.num_samples}
        )
        return config

import math

import keras
import keras_hub
import numpy as np
from keras_hub.src.models.audio_to_text_preprocessor import (
    AudioToTextPreprocessor,
)
from keras_hub.src.utils.tensor_utils import convert_preprocessing_outputs
from keras_hub.src.utils.tensor_utils import convert_to_numpy

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.preprocessing.whisper_audio_converter import (
    WhisperAudioConverter,
)
from mmzoo.layers.preprocessing.whisper_audio_converter import _is_symbolic
from mmzoo.layers.preprocessing.whisper_audio_converter import _tf
from mmzoo.models.whisper.whisper_backbone import WhisperBackbone
from mmzoo.models.whisper.whisper_tokenizer import WhisperTokenizer
from mmzoo.presets import presets_holding
from mmzoo.utils import preset_weights
from mmzoo.utils.resampling import check_rate
from mmzoo.utils.resampling import resample

TASKS = ("transcribe", "translate")
# The number of prompt tokens: <|startoftranscript|> <|lang|> <|task|>
# <|notimestamps|>.
PROMPT_LENGTH = 4
# The position of the language token in the prompt.
LANGUAGE_POSITION = 1
# Value of the decoder positions that generation has not filled yet. Not
# `<|endoftext|>` (Whisper's pad token): the samplers stop on it.
UNFILLED = 0


def _as_str(text):
    return text.decode("utf-8") if isinstance(text, bytes) else str(text)


def _is_unbatched(audio):
    if isinstance(audio, (list, tuple, dict)) or audio is None:
        return False
    shape = getattr(audio, "shape", None)
    if shape is None:
        return False
    return len(shape) == 1


def check_task(task):
    """`task` if it is `"transcribe"` or `"translate"`, else a ValueError."""
    if task not in TASKS:
        raise ValueError(
            f"Unknown Whisper task {task!r}: use \"transcribe\" (speech to "
            "text in the language spoken) or \"translate\" (speech to "
            "English text)."
        )
    return task


@mmzoo_export("mmzoo.models.WhisperAudioToTextPreprocessor")
class WhisperAudioToTextPreprocessor(
    preset_weights.CheckedPreprocessorPreset, AudioToTextPreprocessor
):
    """Waveforms and transcripts to Whisper's encoder and decoder inputs.

    A keras-hub `AudioToTextPreprocessor` (not exported by keras-hub 0.32:
    `keras_hub.src.models.audio_to_text_preprocessor`). The preprocessor of
    `mmzoo.models.WhisperAudioToText`. Audio goes
    through the `audio_converter` (`mmzoo.layers.WhisperAudioConverter`:
    80-bin log-mel features of a window, `sample_rate=` resampled to
    16 kHz, bad audio refused with the reason), then, as Whisper's own
    transcription does (OpenAI's `pad_or_trim` of the log-mel, which
    faster-whisper keeps), the frames after the end of each clip are set to
    `0` (the clip has `samples // 160` frames of content). Clips of
    different lengths can share a batch.

    Text is spelt with the `tokenizer` (`mmzoo.models.WhisperTokenizer`)
    behind Whisper's prompt `<|startoftranscript|> <|language|> <|task|>
    <|notimestamps|>` (no timestamps).

    - `call(x, y)` (used by `fit`): `x` is the audio (or a dict with
      `"audio"` and `"text"`), `y` the transcripts. Returns `(x, y,
      sample_weight)`: `x` holds `"encoder_features"`, `"decoder_token_ids"`
      (prompt, transcript tokens, `<|endoftext|>`, padding) and
      `"decoder_padding_mask"`; `y` is the token ids shifted by one; the
      sample weights are `0` on the prompt tokens and the padding, so the
      loss counts the transcript and its end only (teacher forcing).
      Audio alone (`predict`) gives the prompt as decoder input.
    - `generate_preprocess(x, language=None, task="transcribe")`: the
      features and the decoder prompt, padded to `sequence_length`. With
      `language=None` the language slot is left for the model to fill
      (`WhisperAudioToText` detects the language of each clip).
    - `generate_postprocess(x)`: token ids back to text, without the
      prompt, special, language or timestamp tokens, leading and trailing
      spaces stripped.

    Audio longer than the converter's window (30 s by default):
    `audio_windows` cuts each clip into consecutive windows, which
    `WhisperAudioToText.generate` decodes one by one (and
    `detect_language` reads the first of). Everything else takes clips of
    at most one window: training inputs (`call` with transcripts) raise a
    ValueError, since a transcript cannot be split across windows
    (eagerly; inside a `tf.data` pipeline, an `InvalidArgumentError` with
    the same message when the batch is read); `audio_features`,
    `generate_preprocess` and `call` on audio alone raise a ValueError
    eagerly and trim to the window inside `tf.data`.

    Args:
        audio_converter: a `mmzoo.layers.WhisperAudioConverter`.
        tokenizer: a `mmzoo.models.WhisperTokenizer` with language tokens.
        decoder_sequence_length: int. Length of the decoder inputs in `call`
            (prompt, transcript and end token, padded or trimmed). Defaults
            to `448`, Whisper's context.
        language: optional str. Language code of the training transcripts
            (`"en"`, `"es"`, ...), for `call`. Defaults to `None` (then
            `call` asks for one).
        task: `"transcribe"` or `"translate"`, for `call`.

    Example:
    ```python
    # Whisper base's (preset `whisper_base_speech_to_text`).
    preprocessor = mmzoo.models.WhisperAudioToTextPreprocessor.from_preset(
        "whisper_base_speech_to_text"
    )
    # Built by hand, here to train on English transcripts.
    preprocessor = mmzoo.models.WhisperAudioToTextPreprocessor(
        audio_converter=mmzoo.layers.WhisperAudioConverter(),
        tokenizer=mmzoo.models.WhisperTokenizer(
            pretrained_weights="whisper_base_multi"
        ),
        decoder_sequence_length=32,
        language="en",
    )
    audio = [np.zeros(16000, "float32"), np.zeros(8000, "float32")]
    x, y, sample_weight = preprocessor(audio, ["Hello.", "Yes."])
    x["encoder_features"].shape  # (2, 3000, 80)
    x["decoder_token_ids"].shape  # (2, 32)
    prompt = preprocessor.generate_preprocess(audio, language="es")
    windows = preprocessor.audio_windows(np.zeros(65 * 16000, "float32"))
    [len(w) for w in windows[0]]  # [480000, 480000, 80000]
    ```
    """

    backbone_cls = WhisperBackbone
    # The Whisper presets with a tokenizer.
    presets = presets_holding("tokenizer.json")
    audio_converter_cls = WhisperAudioConverter
    tokenizer_cls = WhisperTokenizer

    def __init__(
        self,
        audio_converter,
        tokenizer,
        decoder_sequence_length=448,
        language=None,
        task="transcribe",
        **kwargs,
    ):
        super().__init__(
            tokenizer=tokenizer,
            decoder_sequence_length=decoder_sequence_length,
            **kwargs,
        )
        self.audio_converter = audio_converter
        self.language = language
        self.task = check_task(task)
        if language is not None:
            self.language_token_id(language)

    def build(self, input_shape):
        # The base class builds packers from `start_token_id`, which
        # Whisper's tokenizer lacks; the prompt is packed in `call`.
        self.built = True

    # --- Tokens -------------------------------------------------------------

    @property
    def languages(self):
        """Whisper's language codes, in token order (`"en"`, `"zh"`, ...)."""
        tokens = self.tokenizer.language_tokens or {}
        return [t[2:-2] for t, _ in sorted(tokens.items(), key=lambda i: i[1])]

    @property
    def language_token_ids(self):
        """The ids of the language tokens, in token order."""
        tokens = self.tokenizer.language_tokens or {}
        return sorted(int(i) for i in tokens.values())

    def language_token_id(self, language):
        """The id of `<|language|>` (the tokenizer's `language_token_id`);
        a ValueError naming valid codes and `None`."""
        if isinstance(language, str):
            try:
                return int(self.tokenizer.language_token_id(language))
            except ValueError:
                pass
        codes = self.languages
        some = ", ".join(repr(c) for c in codes[:8])
        raise ValueError(
            f"Unknown Whisper language code {language!r}. Valid codes "
            f"are lowercase codes such as {some} "
            f"({len(codes)} in all: see `preprocessor.languages`), or "
            "`None` to detect the language of each clip."
        )

    def prompt_token_ids(self, language, task):
        """Whisper's prompt: start, language, task, no timestamps.

        With `language=None` the language slot holds a placeholder that
        generation fills.
        """
        tokenizer = self.tokenizer
        task_id = (
            tokenizer.transcribe_token_id
            if check_task(task) == "transcribe"
            else tokenizer.translate_token_id
        )
        language_id = (
            UNFILLED if language is None else self.language_token_id(language)
        )
        return [
            int(tokenizer.bos_token_id),
            language_id,
            int(task_id),
            int(tokenizer.no_timestamps_token_id),
        ]

    # --- Audio --------------------------------------------------------------

    def _checked_rows(self, audio):
        """The converter's checked mono clips, or a ValueError."""
        if audio is None:
            raise ValueError(
                "No audio: `WhisperAudioToText` needs waveforms (a float "
                "array (samples,) or (batch, samples), or a list of clips)."
            )
        rows, _ = self.audio_converter._rows(audio)
        if not rows:
            raise ValueError("No audio: got an empty batch of waveforms.")
        return rows

    def _training_advice(self):
        return (
            "Training takes clips of at most one window: a transcript "
            "cannot be split across windows (which words fall in which "
            "window is not known). Cut the recording and its transcript "
            f"into clips of at most {self.window_seconds:g} s."
        )

    def _too_long_message(self, clip, seconds, training):
        window = self.window_seconds
        start = (
            f"Clip {clip} lasts {seconds:.2f} s, longer than the {window:g} s "
            "window."
        )
        if training:
            return f"{start} {self._training_advice()}"
        return (
            f"{start} `audio_features` and `generate_preprocess` take clips "
            "of at most one window; `WhisperAudioToText.generate` and "
            "`detect_language` take longer audio (cut into windows by "
            "`audio_windows`)."
        )

    @property
    def window_seconds(self):
        """The converter's window, in seconds (30 for Whisper)."""
        converter = self.audio_converter
        return converter.num_samples / converter.sampling_rate

    def _content_frames(self, audio, sample_rate, training=False):
        """Frames of content per clip (eager), checking the audio."""
        converter = self.audio_converter
        rows = self._checked_rows(audio)
        lengths = np.array([len(row) for row in rows])
        if sample_rate is not None and sample_rate != converter.sampling_rate:
            lengths = np.array(
                [
                    math.ceil(n * converter.sampling_rate / sample_rate)
                    for n in lengths
                ]
            )
        too_long = np.flatnonzero(lengths > converter.num_samples)
        if too_long.size:
            seconds = lengths[too_long[0]] / converter.sampling_rate
            raise ValueError(
                self._too_long_message(int(too_long[0]), seconds, training)
            )
        return lengths // converter.stride

    def check_training_audio(self, audio, sample_rate=None):
        """Eagerly check training audio (`WhisperAudioToText.fit` calls it
        before building its dataset): the converter's checks, and a
        ValueError for a clip longer than one window, whose transcript
        cannot be split across windows."""
        self._content_frames(audio, sample_rate, training=True)

    def audio_windows(self, audio, sample_rate=None):
        """Each clip cut into consecutive windows of the converter's length.

        The audio is checked and mixed down to mono as the converter does,
        resampled to 16 kHz when `sample_rate` is declared, then cut every
        window (30 s): a clip of 65 s gives windows of 30, 30 and 5 s, a
        clip of at most one window gives itself. A last piece shorter than
        one frame (`stride` samples, 10 ms) holds no frame of content and
        is left out, as faster-whisper's seek loop leaves it.

        Each window is a clip of its own: its log-mel features are computed
        on its samples alone (faster-whisper computes them once over the
        whole recording, so frames at the cuts and the features' floor,
        8 below the maximum, can differ slightly).

        Args:
            audio: any form the converter takes, clips of any length.
            sample_rate: optional int, the rate of the audio in Hz.

        Returns:
            A list with, per clip, the list of its windows: float32 16 kHz
            waveforms `(samples,)` of at most one window each.
        """
        converter = self.audio_converter
        if sample_rate is not None:
            sample_rate = check_rate(sample_rate)
        rows = self._checked_rows(audio)
        if sample_rate is not None and sample_rate != converter.sampling_rate:
            rows = resample(rows, sample_rate, converter.sampling_rate)
        size = converter.num_samples
        clips = []
        for row in rows:
            row = np.asarray(row, "float32")
            frames = len(row) // converter.stride
            count = max(1, -(-frames // converter.num_frames))
            clips.append(
                [row[k * size : (k + 1) * size] for k in range(count)]
            )
        return clips

    def audio_features(self, audio, sample_rate=None):
        """Whisper's encoder input: log-mel frames, `0` after each clip.

        Clips of at most one window (see `audio_windows` for longer ones).
        Returns a float32 `(batch, frames, 80)` tensor (one clip
        `(samples,)` gives a batch of one).
        """
        return self._features(audio, sample_rate)

    def _features(self, audio, sample_rate, training=False):
        converter = self.audio_converter
        if sample_rate is not None:
            sample_rate = check_rate(sample_rate)
        if _is_symbolic(audio):
            return self._symbolic_features(audio, sample_rate, training)
        content = self._content_frames(audio, sample_rate, training)
        features = convert_to_numpy(converter(audio, sample_rate=sample_rate))
        if features.ndim == 2:
            features = features[None]
        frames = np.arange(features.shape[1])
        keep = frames[None, :] < content[:, None]
        return np.where(keep[..., None], features, 0.0).astype("float32")

    def _symbolic_features(self, audio, sample_rate, training=False):
        """The same inside tf.data: every row has the tensor's length.

        Longer clips are trimmed to the window, or refused for training
        (an assertion, raised when the batch is read).
        """
        tf = _tf()
        converter = self.audio_converter
        if isinstance(audio, tf.RaggedTensor):
            lengths = audio.row_lengths()
            audio = audio.to_tensor()
        else:
            if audio.shape.rank == 1:
                audio = audio[tf.newaxis]
            lengths = tf.fill(tf.shape(audio)[:1], tf.shape(audio)[1])
        lengths = tf.cast(lengths, "int64")
        if sample_rate is not None and sample_rate != converter.sampling_rate:
            up, down = converter.sampling_rate, sample_rate
            lengths = (lengths * up + down - 1) // down
        features = converter(audio, sample_rate=sample_rate)
        if training:
            longest = tf.reduce_max(lengths)
            seconds = tf.strings.as_string(
                tf.cast(longest, "float64") / converter.sampling_rate,
                precision=2,
            )
            check = tf.debugging.Assert(
                longest <= converter.num_samples,
                [
                    tf.strings.join(
                        [
                            "A clip lasts ",
                            seconds,
                            f" s, longer than the {self.window_seconds:g} s "
                            f"window. {self._training_advice()}",
                        ]
                    )
                ],
            )
            with tf.control_dependencies([check]):
                features = tf.identity(features)
        content = tf.minimum(
            lengths // converter.stride, converter.num_frames
        )
        frames = tf.range(tf.shape(features)[1], dtype="int64")
        keep = frames[tf.newaxis, :] < content[:, tf.newaxis]
        return tf.where(
            keep[..., tf.newaxis], features, tf.zeros_like(features)
        )

    # --- Training -----------------------------------------------------------

    def _split(self, x, y):
        if isinstance(x, dict):
            unknown = set(x) - {"audio", "text"}
            if unknown or "audio" not in x:
                raise ValueError(
                    "A dict input takes the keys 'audio' and 'text' "
                    f"(optional). Received keys {sorted(map(str, x))}."
                )
            text = x.get("text")
            if text is not None and y is not None:
                raise ValueError(
                    "Give the transcripts once: as `x['text']` or as `y`."
                )
            return x["audio"], y if text is None else text
        return x, y

    def call(
        self,
        x,
        y=None,
        sample_weight=None,
        sequence_length=None,
        sample_rate=None,
    ):
        audio, text = self._split(x, y)
        training = text is not None
        features = self._features(audio, sample_rate, training=training)
        if _is_unbatched(audio):
            # One clip (and one transcript): unbatched outputs.
            features = features[0]
        if self.language is None:
            raise ValueError(
                "Training needs the language of the transcripts: set it "
                "on the preprocessor, e.g. "
                "`WhisperAudioToTextPreprocessor(..., language=\"en\")` or "
                "`preprocessor.language = \"en\"`."
            )
        if text is None:
            # Audio alone (`predict`): the decoder sees the prompt.
            return self._prompt_inputs(features, sequence_length)
        if isinstance(text, np.ndarray):
            text = text.tolist()
            if isinstance(text, list):
                text = [_as_str(t) for t in text]
            else:
                text = _as_str(text)
        tf = _tf()
        length = sequence_length or self.decoder_sequence_length
        prompt = self.prompt_token_ids(self.language, self.task)
        packer = keras_hub.layers.StartEndPacker(
            start_value=prompt,
            end_value=int(self.tokenizer.eos_token_id),
            pad_value=int(self.tokenizer.pad_token_id),
            sequence_length=length + 1,
            return_padding_mask=True,
        )
        token_ids, padding_mask = packer(self.tokenizer(text))
        token_ids = tf.convert_to_tensor(token_ids)
        padding_mask = tf.convert_to_tensor(padding_mask)
        # No loss on predicting the prompt's own tokens, nor on padding.
        not_prompt = tf.range(length) >= len(prompt) - 1
        weights = tf.cast(
            tf.logical_and(padding_mask[..., 1:], not_prompt), "float32"
        )
        if sample_weight is not None:
            weights = weights * tf.cast(sample_weight, "float32")
        x = {
            "encoder_features": features,
            "decoder_token_ids": token_ids[..., :-1],
            "decoder_padding_mask": padding_mask[..., :-1],
        }
        outputs = (x, token_ids[..., 1:], weights)
        if not _is_symbolic(token_ids):
            outputs = convert_preprocessing_outputs(outputs)
        return keras.utils.pack_x_y_sample_weight(*outputs)

    def _prompt_inputs(self, features, sequence_length):
        tf = _tf()
        length = sequence_length or self.decoder_sequence_length
        prompt = self.prompt_token_ids(self.language, self.task)
        row = np.full(length, int(self.tokenizer.pad_token_id), "int32")
        row[: len(prompt)] = prompt[:length]
        mask = np.arange(length) < len(prompt)
        features = tf.convert_to_tensor(features)
        if features.shape.rank == 3:
            batch = tf.shape(features)[:1]
            token_ids = tf.tile(row[None], tf.concat([batch, [1]], 0))
            mask = tf.tile(mask[None], tf.concat([batch, [1]], 0))
        else:
            token_ids, mask = tf.constant(row), tf.constant(mask)
        x = {
            "encoder_features": features,
            "decoder_token_ids": token_ids,
            "decoder_padding_mask": mask,
        }
        if not _is_symbolic(features):
            x = convert_preprocessing_outputs(x)
        return x

    # --- Generation ---------------------------------------------------------

    def generate_preprocess(
        self,
        x,
        sequence_length=None,
        language=None,
        task="transcribe",
        sample_rate=None,
    ):
        """Audio to encoder features and the decoder prompt.

        Args:
            x: the audio (any form the converter takes), or a dict with
                `"audio"`.
            sequence_length: int. Length of the decoder sequence (prompt and
                generated tokens). Defaults to `decoder_sequence_length`.
            language: `None` (detected by the model), a language code for
                every clip, or a list of codes, one per clip.
            task: `"transcribe"` or `"translate"`.
            sample_rate: optional int, the rate of the audio in Hz.

        Returns:
            A dict: `"encoder_features"` `(batch, frames, 80)`,
            `"decoder_token_ids"` `(batch, sequence_length)` (the prompt,
            then `0` where tokens are to be generated, also in the language
            slot when the language is to be detected) and
            `"decoder_padding_mask"` (`True` on the given prompt tokens).
        """
        if isinstance(x, dict):
            x, _ = self._split(x, None)
        check_task(task)
        features = self.audio_features(x, sample_rate)
        batch = features.shape[0]
        if language is None or isinstance(language, str):
            languages = [language] * batch
        else:
            languages = list(language)
            if len(languages) != batch:
                raise ValueError(
                    f"Got {len(languages)} languages for {batch} clips; "
                    "give one language, or one per clip."
                )
        length = sequence_length or self.decoder_sequence_length
        if length <= PROMPT_LENGTH:
            raise ValueError(
                f"`sequence_length` must leave room after the "
                f"{PROMPT_LENGTH} prompt tokens. Received: {length}."
            )
        token_ids = np.full((batch, length), UNFILLED, "int32")
        padding_mask = np.zeros((batch, length), bool)
        for i, code in enumerate(languages):
            token_ids[i, :PROMPT_LENGTH] = self.prompt_token_ids(code, task)
            padding_mask[i, :PROMPT_LENGTH] = True
            if code is None:
                padding_mask[i, LANGUAGE_POSITION] = False
        return {
            "encoder_features": features,
            "decoder_token_ids": token_ids,
            "decoder_padding_mask": padding_mask,
        }

    def text_token_ids(self, token_ids, padding_mask=None):
        """The text tokens of each generated row, as lists of ints.

        Drops positions outside `padding_mask`, and the special, language
        and timestamp tokens.
        """
        token_ids = convert_to_numpy(token_ids)
        if padding_mask is None:
            padding_mask = np.ones_like(token_ids, bool)
        padding_mask = convert_to_numpy(padding_mask).astype(bool)
        tokenizer = self.tokenizer
        special = set(int(i) for i in tokenizer.special_token_ids)
        special |= set(self.language_token_ids)
        limit = tokenizer.vocabulary_size()
        rows = []
        for ids, mask in zip(token_ids, padding_mask):
            end = tokenizer.eos_token_id
            row = []
            for i, keep in zip(ids[PROMPT_LENGTH:], mask[PROMPT_LENGTH:]):
                if not keep or i == end:
                    break
                if int(i) not in special and 0 <= i < limit:
                    row.append(int(i))
            rows.append(row)
        return rows

    def generate_postprocess(self, x):
        """Generated token ids to text: a list of strings."""
        return self.detokenize_text(
            self.text_token_ids(
                x["decoder_token_ids"], x.get("decoder_padding_mask")
            )
        )

    def detokenize_text(self, rows):
        """Rows of text token ids (`text_token_ids`) to stripped strings."""
        texts = []
        for row in rows:
            text = self.tokenizer.detokenize(row) if row else ""
            text = convert_to_numpy(text)
            if isinstance(text, np.ndarray):
                text = text.item()
            if isinstance(text, bytes):
                text = text.decode("utf-8")
            texts.append(str(text).strip())
        return texts

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "decoder_sequence_length": self.decoder_sequence_length,
                "language": self.language,
                "task": self.task,
            }
        )
        return config

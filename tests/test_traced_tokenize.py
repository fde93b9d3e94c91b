"""TokenizeTracedOnce: tf.data pipelines reuse the tokenizer's first trace,
and the tokens are keras-hub's."""

import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from test_sentence_encoder import VOCAB
from test_whisper_transcript_classifier import LANGUAGE_TOKENS
from test_whisper_transcript_classifier import MERGES
from test_whisper_transcript_classifier import SPECIAL_TOKENS
from test_whisper_transcript_classifier import VOCABULARY
from test_whisper_transcript_classifier import tiny_tokenizer

from mmzoo.models import SentenceEncoderTokenizer

TEXTS = [" yes", " no nonsense", "", " yes<|endoftext|> no", "nonsense  no"]


def mapped(tokenizer, texts, batch=True):
    """The tokens of `texts` from a new tf.data pipeline."""
    ds = tf.data.Dataset.from_tensor_slices(texts)
    if batch:
        ds = ds.batch(len(texts))
    ds = ds.map(tokenizer)
    out = []
    for tokens in ds:
        if isinstance(tokens, tf.RaggedTensor):
            out.extend(tokens.to_list())
        else:
            out.append(tokens.numpy().tolist())
    return out


def traces(tokenizer):
    return {
        key[:2]: function.experimental_get_tracing_count()
        for key, function in tokenizer.__dict__["_traced_tokenize"].items()
    }


def keras_hub_whisper_tokenizer():
    return keras_hub.models.WhisperTokenizer(
        vocabulary=dict(VOCABULARY),
        merges=list(MERGES),
        special_tokens=dict(SPECIAL_TOKENS),
        language_tokens=dict(LANGUAGE_TOKENS),
    )


@pytest.mark.one_backend
@pytest.mark.parametrize("batch", [True, False], ids=["batched", "one_text"])
def test_whisper_tokens_are_keras_hubs_and_traced_once(batch):
    tokenizer = tiny_tokenizer()
    expected = mapped(keras_hub_whisper_tokenizer(), TEXTS, batch)
    assert mapped(tokenizer, TEXTS, batch) == expected
    assert mapped(tokenizer, TEXTS, batch) == expected
    rank = 1 if batch else 0
    assert traces(tokenizer) == {(rank, None): 1}
    # Eagerly, keras-hub's Python workflow, the same tokens.
    if batch:
        assert [list(t) for t in tokenizer(TEXTS)] == expected


@pytest.mark.one_backend
def test_sequence_length_and_new_vocabulary_get_their_own_trace():
    tokenizer = tiny_tokenizer()
    mapped(tokenizer, TEXTS)
    tokenizer.sequence_length = 4
    padded = mapped(tokenizer, TEXTS)
    assert np.shape(padded) == (1, len(TEXTS), 4)
    assert traces(tokenizer) == {(1, None): 1, (1, 4): 1}
    # New tables: a new graph, not the one holding the old tables.
    tokenizer.sequence_length = None
    vocabulary = dict(VOCABULARY)
    vocabulary["Ġno"], vocabulary["Ġyes"] = vocabulary["Ġyes"], vocabulary["Ġno"]
    tokenizer.set_vocabulary_and_merges(vocabulary, list(MERGES))
    reference = keras_hub_whisper_tokenizer()
    reference.set_vocabulary_and_merges(vocabulary, list(MERGES))
    assert mapped(tokenizer, TEXTS) == mapped(reference, TEXTS)
    assert len(tokenizer.__dict__["_traced_tokenize"]) == 3


@pytest.mark.one_backend
def test_sentence_encoder_tokens_are_keras_hubs_and_traced_once():
    texts = ["The quick fox.", "", "Jumped over the lazy dog!"]
    tokenizer = SentenceEncoderTokenizer(vocabulary=VOCAB)
    # The same normalisation, then keras-hub's WordPiece without the cache.
    reference = keras_hub.models.BertTokenizer(vocabulary=VOCAB)
    normalised = [
        t.decode() for t in tokenizer.normalize(tf.constant(texts)).numpy()
    ]
    expected = mapped(reference, normalised)
    assert mapped(tokenizer, texts) == expected
    assert mapped(tokenizer, texts) == expected
    assert traces(tokenizer) == {(1, None): 1}

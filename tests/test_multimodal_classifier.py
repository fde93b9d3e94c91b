import os

import keras
import numpy as np
import pytest
from helpers import raw_batch
from helpers import tiny_classifier
from helpers import tiny_encoders

import mmzoo


@pytest.fixture(scope="module")
def trained():
    """A tiny tri-modal classifier fitted a few steps on raw inputs."""
    keras.utils.set_random_seed(1)
    classifier = tiny_classifier()
    x, y = raw_batch(32)
    before = classifier.evaluate(x, y, verbose=0)[0]
    history = classifier.fit(x, y, epochs=4, batch_size=8, verbose=0)
    return classifier, x, y, before, history.history["loss"]


def test_fit_reduces_loss_without_compile(trained):
    classifier, x, y, before, losses = trained
    assert losses[-1] < losses[0]
    assert classifier.evaluate(x, y, verbose=0)[0] < before


def test_predict_with_modalities_left_out(trained):
    classifier, x, _, _, _ = trained
    full = classifier.predict(x, verbose=0)
    assert full.shape == (32, 4) and np.isfinite(full).all()
    # Each set of keys compiles its own predict function: two sets here (an
    # image or an audio clip alone: test_main_job_classifies_raw_files).
    for keep in (["text"], ["image", "audio"]):
        subset = classifier.predict({k: x[k] for k in keep}, verbose=0)
        assert subset.shape == (32, 4) and np.isfinite(subset).all()
    # Leaving a key out equals masking it in every row.
    mask = np.array([[0, 1, 1]] * 32)
    np.testing.assert_allclose(
        classifier.predict(
            {"image": x["image"], "audio": x["audio"]}, verbose=0
        ),
        classifier.predict({**x, "modality_mask": mask}, verbose=0),
        atol=1e-5,
    )


def test_preset_round_trip(trained, tmp_path):
    classifier, x, _, _, _ = trained
    preset = os.path.join(tmp_path, "preset")
    classifier.save_to_preset(preset)
    restored = mmzoo.models.MultimodalClassifier.from_preset(preset)
    assert restored.num_classes == 4
    for inputs in (x, {"audio": x["audio"]}):
        np.testing.assert_allclose(
            restored.predict(inputs, verbose=0),
            classifier.predict(inputs, verbose=0),
            atol=1e-6,
        )


def test_keras_save_load(trained, tmp_path):
    classifier, x, _, _, _ = trained
    path = os.path.join(tmp_path, "classifier.keras")
    classifier.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        restored.predict(x, verbose=0),
        classifier.predict(x, verbose=0),
        atol=1e-6,
    )


def test_config_round_trip(trained):
    classifier = trained[0]
    config = classifier.get_config()
    assert config["num_classes"] == 4
    restored = mmzoo.models.MultimodalClassifier.from_config(config)
    assert restored.get_config()["num_classes"] == 4


def test_unknown_preset_raises():
    with pytest.raises(ValueError, match="Unknown preset 'no_such_preset'"):
        mmzoo.models.MultimodalClassifier.from_preset("no_such_preset")


def test_bad_raw_input_fails_before_fit(trained):
    classifier, x, y, _, _ = trained
    with pytest.raises(ValueError, match="empty strings"):
        bad = dict(x, text=np.array([""] * 32))
        classifier.fit(bad, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="unknown modality"):
        classifier.predict({"video": x["image"]}, verbose=0)


def test_mismatched_preprocessor_raises():
    from helpers import tiny_backbone
    from helpers import tiny_preprocessor

    with pytest.raises(ValueError, match="must match the backbone"):
        mmzoo.models.MultimodalClassifier(
            backbone=tiny_backbone(modalities=("image", "audio")),
            preprocessor=tiny_preprocessor(modalities=("audio", "image")),
            num_classes=3,
        )


def test_softmax_activation_and_dropout():
    classifier = tiny_classifier()
    classifier = mmzoo.models.MultimodalClassifier(
        backbone=classifier.backbone,
        preprocessor=classifier.preprocessor,
        num_classes=4,
        activation="softmax",
        dropout=0.5,
    )
    x, y = raw_batch(8)
    probabilities = classifier.predict(x, verbose=0)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    assert not classifier.loss.get_config()["from_logits"]


def test_mixed_bfloat16_jit_compile_fit():
    keras.config.set_dtype_policy("mixed_bfloat16")
    classifier = tiny_classifier(
        fusion=mmzoo.layers.ProjectionFusion(8, combine="mean")
    )
    assert classifier.backbone.compute_dtype == "bfloat16"
    # torch.compile of this tri-modal model takes about 3 minutes on 2 CPU
    # cores (a step, the step again once gradients exist, predict): its
    # compiled path is tested below on two modalities.
    classifier.compile(jit_compile=keras.backend.backend() != "torch")
    x, y = raw_batch(16)
    history = classifier.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert np.isfinite(
        classifier.predict({"image": x["image"]}, verbose=0)
    ).all()


def test_fit_shuffles_and_splits_validation(recwarn):
    classifier = tiny_classifier()
    x, y = raw_batch(16)
    history = classifier.fit(
        x, y, epochs=1, batch_size=4, validation_split=0.25, verbose=0
    )
    assert "val_loss" in history.history
    assert not [w for w in recwarn if "shuffle=True" in str(w.message)]
    from mmzoo.models.multimodal.multimodal_classifier import _to_dataset

    ordered = np.arange(64)
    batches = [
        b.numpy() for b, _ in _to_dataset(ordered, ordered, None, 64, True)
    ]
    assert sorted(batches[0]) == list(ordered)
    assert list(batches[0]) != list(ordered)


@pytest.mark.skipif(
    keras.backend.backend() != "torch", reason="torch.compile's graphs"
)
def test_torch_compile_traces_whole_steps_and_trains_as_eager():
    """`jit_compile=True` on PyTorch: one graph per step (broken only where
    Keras' trainer calls `backward`), no recompiling once the optimizer's
    gradients exist, and the same training as eager execution. Odd image
    and spectrogram sizes make the pools pad unevenly."""
    import torch
    from torch._dynamo.utils import counters

    # Compilations by earlier tests in this process would make Dynamo treat
    # sizes as dynamic here ("automatic dynamic shapes").
    torch._dynamo.reset()

    def build():
        keras.utils.set_random_seed(3)
        backbone = mmzoo.models.MultimodalBackbone(
            encoders={
                "image": mmzoo.models.ImageEncoder(
                    image_shape=(7, 7, 1), filters=(4, 8), hidden_dim=8
                ),
                "audio": tiny_encoders()["audio"],
            },
            fusion=mmzoo.layers.AttentionFusion(output_dim=8, num_heads=2),
        )
        return mmzoo.models.MultimodalClassifier(
            backbone=backbone, preprocessor=None, num_classes=3
        )

    rng = np.random.default_rng(0)
    x = {
        "image": rng.random((24, 7, 7, 1), dtype="float32"),
        # 17 frames: an odd number.
        "audio": rng.standard_normal((24, 1064), dtype="float32"),
    }
    y = rng.integers(0, 3, 24)
    eager, compiled = build(), build()
    eager.compile(optimizer="adam", jit_compile=False)
    compiled.compile(optimizer="adam", jit_compile=True)
    counters.clear()
    losses = {}
    for name, model in (("eager", eager), ("compiled", compiled)):
        history = model.fit(
            x, y, batch_size=8, epochs=2, shuffle=False, verbose=0
        )
        losses[name] = history.history["loss"]
    graphs = counters["stats"]["unique_graphs"]
    breaks = dict(counters["graph_break"])
    compiled.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    # The step before `backward` and the one after it, compiled again once
    # the gradients exist (Keras' `zero_grad` checks them): nothing else.
    assert graphs <= 4, (graphs, breaks)
    assert counters["stats"]["unique_graphs"] == graphs
    assert all("backward" in reason for reason in breaks), breaks
    np.testing.assert_allclose(losses["compiled"], losses["eager"], rtol=1e-4)

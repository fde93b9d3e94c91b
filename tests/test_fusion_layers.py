import os

import keras
import numpy as np
import pytest
from helpers import to_numpy

from mmzoo.layers import AttentionFusion
from mmzoo.layers import ConvFusion
from mmzoo.layers import ProjectionFusion

FUSIONS = {
    "projection_concat": lambda: ProjectionFusion(6, combine="concat"),
    "projection_sum": lambda: ProjectionFusion(6, combine="sum"),
    "projection_mean": lambda: ProjectionFusion(6, combine="mean"),
    "conv": lambda: ConvFusion(6, projection_dim=5, filters=3),
    "attention": lambda: AttentionFusion(6, num_heads=2),
}
OUTPUT_WIDTH = {"projection_concat": 18}


def vectors(rng, batch=4):
    return {
        "audio": rng.standard_normal((batch, 3)).astype("float32"),
        "image": rng.standard_normal((batch, 5)).astype("float32"),
        "text": rng.standard_normal((batch, 7)).astype("float32"),
    }


def sequences(rng, batch=4, steps=3):
    return {
        k: rng.standard_normal((batch, steps, d)).astype("float32")
        for k, d in (("audio", 3), ("image", 5), ("text", 7))
    }


def functional(layer, example):
    inputs = {k: keras.Input(v.shape[1:], name=k) for k, v in example.items()}
    mask = keras.Input((len(example),), name="mask")
    return keras.Model(
        {**inputs, "mask": mask}, layer(inputs, modality_mask=mask)
    )


@pytest.mark.parametrize("kind", sorted(FUSIONS))
def test_output_shapes(kind, rng):
    width = OUTPUT_WIDTH.get(kind, 6)
    layer = FUSIONS[kind]()
    assert tuple(layer(vectors(rng)).shape) == (4, width)
    assert layer.modalities == ["audio", "image", "text"]
    # Vectors of any width; trainable weights exist and are per modality.
    names = [w.path for w in layer.trainable_weights]
    assert any("text_projection" in n for n in names)
    seq_layer = FUSIONS[kind]()
    out = seq_layer(sequences(rng))
    expected = (4, 3, width) if kind.startswith("projection") else (4, width)
    assert tuple(out.shape) == expected


@pytest.mark.parametrize("kind", sorted(FUSIONS))
def test_config_round_trip(kind, rng):
    layer = FUSIONS[kind]()
    layer(vectors(rng))
    config = layer.get_config()
    restored = layer.__class__.from_config(config)
    assert restored.get_config() == config


@pytest.mark.parametrize("kind", sorted(FUSIONS))
def test_keras_save_load_identical(kind, rng, tmp_path):
    x = vectors(rng)
    mask = np.array([[1, 1, 1], [0, 1, 1], [1, 0, 0], [1, 1, 0]], "float32")
    model = functional(FUSIONS[kind](), x)
    expected = to_numpy(model({**x, "mask": mask}))
    path = os.path.join(tmp_path, "fusion.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        to_numpy(restored({**x, "mask": mask})), expected, atol=1e-6
    )


@pytest.mark.parametrize("kind", sorted(FUSIONS))
def test_fit_reduces_loss(kind, rng):
    x = vectors(rng, batch=32)
    target = (x["text"][:, :1] + x["image"][:, :1] > 0).astype("float32")
    model = functional(FUSIONS[kind](), x)
    head = keras.layers.Dense(1)(model.output)
    model = keras.Model(model.input, head)
    model.compile(keras.optimizers.Adam(0.05), "mse")
    data = {**x, "mask": np.ones((32, 3), "float32")}
    before = model.evaluate(data, target, verbose=0)
    model.fit(data, target, epochs=20, batch_size=8, verbose=0)
    assert model.evaluate(data, target, verbose=0) < 0.7 * before


@pytest.mark.parametrize("kind", sorted(FUSIONS))
def test_masked_modality_contributes_nothing(kind, rng):
    layer = FUSIONS[kind]()
    x = vectors(rng)
    mask = np.array([[1, 0, 1]] * 4, "float32")
    out = to_numpy(layer(x, modality_mask=mask))
    # Whatever the masked modality holds, even NaN, the output is unchanged.
    x_changed = dict(x, image=np.full_like(x["image"], np.nan))
    changed = to_numpy(layer(x_changed, modality_mask=mask))
    np.testing.assert_array_equal(out, changed)
    assert np.isfinite(out).all()
    # Leaving the key out is the same as masking the modality.
    left_out = {k: v for k, v in x.items() if k != "image"}
    np.testing.assert_allclose(to_numpy(layer(left_out)), out, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(FUSIONS))
def test_no_modality_rows_are_finite(kind, rng):
    layer = FUSIONS[kind]()
    out = to_numpy(layer(vectors(rng), modality_mask=np.zeros((4, 3))))
    assert np.isfinite(out).all()


def test_projection_mean_divides_by_present_count(rng):
    layer = ProjectionFusion(4, combine="mean", bias_initializer="ones")
    x = vectors(rng)
    full = to_numpy(layer(x))
    projected = {k: to_numpy(layer.projections[k](v)) for k, v in x.items()}
    np.testing.assert_allclose(
        full, sum(projected.values()) / 3, rtol=1e-5, atol=1e-6
    )
    mask = np.array([[1, 0, 1]] * 4)
    np.testing.assert_allclose(
        to_numpy(layer(x, modality_mask=mask)),
        (projected["audio"] + projected["text"]) / 2,
        rtol=1e-5,
        atol=1e-6,
    )
    concat = ProjectionFusion(4, combine="concat")
    out = to_numpy(concat(x, modality_mask=mask))
    np.testing.assert_array_equal(out[:, 4:8], 0.0)


def test_attention_weights_exact_zero_and_one(rng):
    layer = AttentionFusion(6, num_heads=3)
    x = vectors(rng)
    mask = np.array([[1, 1, 1], [0, 1, 0], [1, 0, 1], [0, 0, 0]])
    fused, scores = layer(x, modality_mask=mask, return_attention_scores=True)
    scores, fused = to_numpy(scores), to_numpy(fused)
    assert scores.shape == (4, 3, 3)
    np.testing.assert_allclose(scores[:3].sum(-1), 1.0, rtol=1e-6)
    # Masked modalities get exactly zero weight.
    assert (scores[1][:, [0, 2]] == 0).all()
    assert (scores[2][:, 1] == 0).all()
    # A single present modality gets weight exactly 1.
    assert (scores[1][:, 1] == 1).all()
    # Nothing present: zero weights, zero output, no NaN.
    assert (scores[3] == 0).all() and (fused[3] == 0).all()
    # The fused vector is the weighted sum of the projected tokens.
    image_token = to_numpy(layer.projections["image"](x["image"]))
    np.testing.assert_allclose(fused[1], image_token[1], rtol=1e-5, atol=1e-6)


def test_attention_over_sequences_of_different_lengths(rng):
    layer = AttentionFusion(4)
    x = {
        "audio": rng.standard_normal((2, 5, 3)).astype("float32"),
        "text": rng.standard_normal((2, 2, 7)).astype("float32"),
    }
    fused, scores = layer(
        x,
        modality_mask=np.array([[1, 0], [1, 1]]),
        return_attention_scores=True,
    )
    scores = to_numpy(scores)
    assert tuple(fused.shape) == (2, 4) and scores.shape == (2, 1, 7)
    assert (scores[0, 0, 5:] == 0).all()
    np.testing.assert_allclose(scores.sum(-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("kind", sorted(FUSIONS))
def test_bad_inputs(kind, rng):
    layer = FUSIONS[kind]()
    x = vectors(rng)
    layer(x)
    with pytest.raises(ValueError, match="unknown modality.*video"):
        layer({**x, "video": x["text"]})
    with pytest.raises(ValueError, match="no known modality"):
        layer({})
    with pytest.raises(ValueError, match="Modality 'text'.*dim=7"):
        layer({**x, "text": x["text"][:, :2]})
    with pytest.raises(ValueError, match="modality_mask.*\\(batch, 3\\)"):
        layer(x, modality_mask=np.ones((4, 2)))
    with pytest.raises(ValueError, match="dict"):
        FUSIONS[kind]()(x["text"])


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="combine"):
        ProjectionFusion(4, combine="max")
    with pytest.raises(ValueError, match="divisible"):
        AttentionFusion(5, num_heads=2)


@pytest.mark.parametrize("kind", ["projection_mean", "conv", "attention"])
def test_mixed_bfloat16_and_jit_compile(kind, rng):
    keras.config.set_dtype_policy("mixed_bfloat16")
    x = vectors(rng, batch=8)
    layer = FUSIONS[kind]()
    model = functional(layer, x)
    head = keras.layers.Dense(1, dtype="float32")(model.output)
    model = keras.Model(model.input, head)
    assert layer.compute_dtype == "bfloat16"
    assert layer.variable_dtype == "float32"
    # torch.compile takes about a minute per fusion on 2 CPU cores: torch
    # compiles one fusion, the other backends all of them.
    jit = keras.backend.backend() != "torch" or kind == "projection_mean"
    model.compile("adam", "mse", jit_compile=jit)
    data = {**x, "mask": np.array([[1, 0, 1]] * 8, "float32")}
    history = model.fit(data, np.ones((8, 1)), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert np.isfinite(model.predict(data, verbose=0)).all()

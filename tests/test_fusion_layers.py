import os

import keras
import numpy as np
import pytest
from helpers import to_numpy

from mmzoo.layers import AttentionFusion
from mmzoo.layers import ConvFusion
from mmzoo.layers import CrossModalAttentionFusion
from mmzoo.layers import GatedMultimodalUnit
from mmzoo.layers import LateFusion
from mmzoo.layers import LowRankFusion
from mmzoo.layers import ProjectionFusion
from mmzoo.layers import TensorFusion

FUSIONS = {
    "projection_concat": lambda: ProjectionFusion(6, combine="concat"),
    "projection_sum": lambda: ProjectionFusion(6, combine="sum"),
    "projection_mean": lambda: ProjectionFusion(6, combine="mean"),
    "conv": lambda: ConvFusion(6, projection_dim=5, filters=3),
    "attention": lambda: AttentionFusion(6, num_heads=2),
    "tensor": lambda: TensorFusion(6, projection_dim=2, activation="relu"),
    "low_rank": lambda: LowRankFusion(6, rank=3, projection_dim=2),
    "gated": lambda: GatedMultimodalUnit(6),
    "late": lambda: LateFusion(6, hidden_dim=4),
    # One layer: six cross-modal transformers for three modalities (two
    # layers each cost 40 s of TensorFlow compiling; tests/test_fusion_parity
    # checks two layers against MulT's).
    "cross_modal": lambda: CrossModalAttentionFusion(2),
}
# 3 targets × 2 sources × 2 features for the cross-modal fusion.
OUTPUT_WIDTH = {"projection_concat": 18, "cross_modal": 12}
# Fusions that fuse time-aligned sequences step by step.
PER_STEP = {
    "projection_concat",
    "projection_sum",
    "projection_mean",
    "tensor",
    "low_rank",
    "gated",
    "late",
}


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
    expected = (4, 3, width) if kind in PER_STEP else (4, width)
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


@pytest.mark.parametrize(
    "kind",
    [
        "projection_mean",
        "conv",
        "attention",
        "tensor",
        "low_rank",
        "gated",
        "late",
        "cross_modal",
    ],
)
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


def test_tensor_fusion_is_the_outer_product_with_ones(rng):
    x = {k: v for k, v in vectors(rng).items() if k != "text"}
    layer = TensorFusion()
    out = to_numpy(layer(x))
    ones = np.ones((4, 1), "float32")
    audio = np.concatenate([ones, x["audio"]], -1)
    image = np.concatenate([ones, x["image"]], -1)
    expected = np.einsum("bi,bj->bij", audio, image).reshape(4, -1)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    # Without the image only the appended 1 remains: the tensor's first
    # column is [1; audio], the rest 0.
    masked = to_numpy(layer(x, modality_mask=np.array([[1, 0]] * 4)))
    grid = masked.reshape(4, 4, 6)
    np.testing.assert_allclose(grid[:, :, 0], audio, rtol=1e-6)
    assert (grid[:, :, 1:] == 0).all()


def test_low_rank_fusion_is_tensor_fusion_with_a_low_rank_weight(rng):
    """Liu et al.'s identity: the factors' products, summed over the rank,
    are a weight for Tensor Fusion's tensor giving the same output."""
    x = {k: v for k, v in vectors(rng).items() if k != "text"}
    low_rank = LowRankFusion(5, rank=3)
    low_rank(x)
    a = to_numpy(low_rank.factors["audio"])  # (rank, 4, 5)
    b = to_numpy(low_rank.factors["image"])  # (rank, 6, 5)
    weights = to_numpy(low_rank.rank_weights)
    kernel = np.einsum("r,rio,rjo->ijo", weights, a, b).reshape(-1, 5)
    tensor = TensorFusion(output_dim=5)
    tensor(x)
    tensor.output_dense.set_weights([kernel, np.ones(5, "float32")])
    low_rank.bias.assign(np.ones(5, "float32"))
    for mask in ([[1, 1]] * 4, [[1, 0], [0, 1], [1, 1], [0, 0]]):
        mask = np.array(mask)
        np.testing.assert_allclose(
            to_numpy(low_rank(x, modality_mask=mask)),
            to_numpy(tensor(x, modality_mask=mask)),
            rtol=1e-4,
            atol=1e-5,
        )


def test_tensor_fusion_needs_aligned_sequences(rng):
    x = {
        "audio": rng.standard_normal((2, 5, 3)).astype("float32"),
        "text": rng.standard_normal((2, 2, 7)).astype("float32"),
    }
    for layer in (TensorFusion(), LowRankFusion(4), GatedMultimodalUnit(4)):
        with pytest.raises(ValueError, match="same number of steps"):
            layer(x)


def test_gated_unit_two_modalities_is_the_papers_sigmoid_gate(rng):
    x = {k: v for k, v in vectors(rng).items() if k != "text"}
    layer = GatedMultimodalUnit(4)
    fused, gates = layer(x, return_gates=True)
    fused, gates = to_numpy(fused), to_numpy(gates)
    # The projections hold the tanh.
    h = {m: to_numpy(layer.projections[m](v)) for m, v in x.items()}
    kernel, bias = [to_numpy(w) for w in layer.gate_dense.weights]
    logits = np.concatenate([x["audio"], x["image"]], -1) @ kernel + bias
    logits = logits.reshape(4, 2, 4)
    z = 1 / (1 + np.exp(-(logits[:, 0] - logits[:, 1])))
    np.testing.assert_allclose(gates[:, 0], z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        fused, z * h["audio"] + (1 - z) * h["image"], rtol=1e-5, atol=1e-6
    )
    # A lone modality gets gate 1: h = tanh(W x + b).
    mask = np.array([[1, 0]] * 4)
    fused, gates = layer(x, modality_mask=mask, return_gates=True)
    assert (to_numpy(gates)[:, 0] == 1).all()
    assert (to_numpy(gates)[:, 1] == 0).all()
    np.testing.assert_allclose(to_numpy(fused), h["audio"], rtol=1e-6)


def test_late_fusion_averages_the_heads_present(rng):
    x = vectors(rng)
    layer = LateFusion(3, hidden_dim=5)
    fused, outputs = layer(
        x,
        modality_mask=np.array([[1, 1, 1], [1, 0, 1], [0, 1, 0], [0, 0, 0]]),
        return_modality_outputs=True,
    )
    fused, outputs = to_numpy(fused), to_numpy(outputs)
    heads = {
        m: to_numpy(layer.heads[m](layer.projections[m](v)))
        for m, v in x.items()
    }
    np.testing.assert_allclose(
        fused[0], sum(h[0] for h in heads.values()) / 3, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        fused[1], (heads["audio"][1] + heads["text"][1]) / 2, rtol=1e-5
    )
    np.testing.assert_allclose(fused[2], heads["image"][2], rtol=1e-6)
    assert (outputs[1, 1] == 0).all() and (fused[3] == 0).all()


def test_cross_modal_fusion_slots(rng):
    """Slots follow the targets; a masked target's slot is 0, a masked
    source's attention term is 0 (the block run without a source)."""
    x = {
        "audio": rng.standard_normal((2, 5, 3)).astype("float32"),
        "text": rng.standard_normal((2, 2, 7)).astype("float32"),
    }
    layer = CrossModalAttentionFusion(4, num_heads=2)
    out = to_numpy(layer(x, modality_mask=np.array([[1, 0], [1, 1]])))
    assert out.shape == (2, 8)
    assert (out[0, 4:] == 0).all() and (out[1, 4:] != 0).all()
    projected = layer.projections["audio"](x["audio"])
    alone = layer.transformers["audio_from_text"](projected, None)
    np.testing.assert_allclose(
        out[0, :4], to_numpy(alone).mean(1)[0], rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="at least two modalities"):
        CrossModalAttentionFusion(4)({"text": x["text"]})

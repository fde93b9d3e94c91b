"""The fusion zoo against MMSA's PyTorch modules (PyPI `mmsa` 2.2.1).

The same weights copied into mmzoo's layers give the same outputs, within
1e-5, on every backend: Tensor Fusion and Low-rank Fusion against MMSA's
`TFN` and `LMF` (their modality subnetworks replaced by identities, so the
modules' fusion and heads are what is compared), and MulT's cross-modal
transformer against MMSA's `TransformerEncoder` called as MulT calls it.
"""

import types

import numpy as np
import pytest
from helpers import to_numpy

from mmzoo.layers import CrossModalAttentionFusion
from mmzoo.layers import CrossModalTransformer
from mmzoo.layers import LowRankFusion
from mmzoo.layers import TensorFusion

torch = pytest.importorskip("torch")
pytest.importorskip("MMSA")

# MMSA orders modalities audio, video, text in its products.
MMSA_ORDER = ["audio", "video", "text"]
TOLERANCE = 1e-5


def numpy(tensor):
    return tensor.detach().cpu().numpy()


def identity_subnets(module):
    for name in ("audio_subnet", "video_subnet", "text_subnet"):
        setattr(module, name, torch.nn.Identity())
    return module.eval()


def trimodal(rng, dims, batch=5):
    return {
        m: rng.standard_normal((batch, d)).astype("float32")
        for m, d in zip(MMSA_ORDER, dims)
    }


def run_mmsa(module, x):
    with torch.no_grad():
        return module(
            torch.from_numpy(x["text"]),
            torch.from_numpy(x["audio"]),
            torch.from_numpy(x["video"]),
        )


def assert_close(actual, expected):
    np.testing.assert_allclose(
        to_numpy(actual), expected, atol=TOLERANCE, rtol=TOLERANCE
    )


def test_tensor_fusion_matches_mmsa_tfn(rng):
    from MMSA.models.singleTask.TFN import TFN

    torch.manual_seed(0)
    dims = (3, 4, 5)  # audio, video, text
    args = types.SimpleNamespace(
        feature_dims=(dims[2], dims[0], dims[1]),  # text, audio, video
        hidden_dims=(dims[2], dims[0], dims[1]),
        text_out=dims[2],
        post_fusion_dim=16,
        dropouts=(0.0, 0.0, 0.0, 0.0),
        num_classes=3,
        train_mode="classification",
    )
    reference = identity_subnets(TFN(args))
    x = trimodal(rng, dims)
    expected = run_mmsa(reference, x)
    # The tensor itself: (1 + 3) × (1 + 4) × (1 + 5), in MMSA's order.
    tensor = TensorFusion(modalities=MMSA_ORDER)
    assert_close(tensor(x), numpy(expected["Feature_f"]))
    # With TFN's first post-fusion layer as the output layer.
    fusion = TensorFusion(
        output_dim=16, activation="relu", modalities=MMSA_ORDER
    )
    fusion(x)
    layer_1 = reference.post_fusion_layer_1
    fusion.output_dense.set_weights(
        [numpy(layer_1.weight).T, numpy(layer_1.bias)]
    )
    with torch.no_grad():
        hidden = torch.relu(layer_1(expected["Feature_f"]))
    assert_close(fusion(x), numpy(hidden))


def test_low_rank_fusion_matches_mmsa_lmf(rng):
    from MMSA.models.singleTask.LMF import LMF

    torch.manual_seed(0)
    dims = (3, 4, 5)  # audio, video, text (MMSA's text_out is half its
    # hidden width)
    args = types.SimpleNamespace(
        feature_dims=(dims[2], dims[0], dims[1]),
        hidden_dims=(2 * dims[2], dims[0], dims[1]),
        rank=4,
        dropouts=(0.0, 0.0, 0.0, 0.0),
        num_classes=6,
        train_mode="classification",
    )
    reference = identity_subnets(LMF(args))
    with torch.no_grad():
        reference.fusion_bias.normal_()  # MMSA starts it at 0
    x = trimodal(rng, dims)
    expected = numpy(run_mmsa(reference, x)["M"])
    fusion = LowRankFusion(output_dim=6, rank=4, modalities=MMSA_ORDER)
    fusion(x)
    for name in MMSA_ORDER:
        factor = getattr(reference, f"{name}_factor")
        fusion.factors[name].assign(numpy(factor))
    fusion.rank_weights.assign(numpy(reference.fusion_weights)[0])
    fusion.bias.assign(numpy(reference.fusion_bias)[0])
    assert_close(fusion(x), expected)
    # A missing modality leaves its factors' rows for the appended 1: the
    # same as MMSA given zeros there.
    x_zero = dict(x, video=np.zeros_like(x["video"]))
    expected = numpy(run_mmsa(reference, x_zero)["M"])
    assert_close(fusion({k: x[k] for k in ("audio", "text")}), expected)


def copy_cross_modal_transformer(reference, block):
    """MMSA's `TransformerEncoder` weights into a `CrossModalTransformer`."""
    d, heads = block.hidden_dim, block.num_heads
    for i, layer in enumerate(reference.layers):
        attention = block.attentions[i]
        weights = numpy(layer.self_attn.in_proj_weight)
        biases = numpy(layer.self_attn.in_proj_bias)
        for j, dense in enumerate(
            (
                attention._query_dense,
                attention._key_dense,
                attention._value_dense,
            )
        ):
            kernel = weights[j * d : (j + 1) * d].T.reshape(d, heads, -1)
            bias = biases[j * d : (j + 1) * d].reshape(heads, -1)
            dense.set_weights([kernel, bias])
        out = layer.self_attn.out_proj
        attention._output_dense.set_weights(
            [numpy(out.weight).T.reshape(heads, -1, d), numpy(out.bias)]
        )
        for norm, source in zip(
            (block.attention_norms[i], block.feedforward_norms[i]),
            layer.layer_norms,
        ):
            norm.set_weights([numpy(source.weight), numpy(source.bias)])
        for dense, source in zip(
            (block.intermediates[i], block.output_denses[i]),
            (layer.fc1, layer.fc2),
        ):
            dense.set_weights([numpy(source.weight).T, numpy(source.bias)])
    norm = reference.layer_norm
    block.output_norm.set_weights([numpy(norm.weight), numpy(norm.bias)])


def mmsa_cross_modal_transformer(hidden_dim, num_heads, num_layers):
    from MMSA.models.subNets.transformers_encoder.transformer import (
        TransformerEncoder,
    )

    torch.manual_seed(0)
    reference = TransformerEncoder(hidden_dim, num_heads, num_layers).eval()
    with torch.no_grad():  # MMSA starts biases and norms at 0 and 1
        for name, parameter in reference.named_parameters():
            if name.endswith("bias") or "layer_norm" in name:
                parameter.add_(0.1 * torch.randn_like(parameter))
    return reference


def test_cross_modal_transformer_matches_mult(rng):
    reference = mmsa_cross_modal_transformer(8, 2, 2)
    # Target 5 steps, source 7: MulT's sequences need not be aligned.
    target = rng.standard_normal((3, 5, 8)).astype("float32")
    source = rng.standard_normal((3, 7, 8)).astype("float32")
    with torch.no_grad():
        # MulT passes (steps, batch, features), the source as key and value.
        source_t = torch.from_numpy(source).transpose(0, 1)
        expected = reference(
            torch.from_numpy(target).transpose(0, 1), source_t, source_t
        )
    block = CrossModalTransformer(8, num_heads=2, num_layers=2)
    block.build(target.shape)
    copy_cross_modal_transformer(reference, block)
    assert_close(block(target, source), numpy(expected.transpose(0, 1)))


def test_cross_modal_fusion_is_mult_projection_and_block(rng):
    """The fusion's text←audio slot: MulT's `proj_l`/`proj_a` (1-wide
    convolutions without bias), `trans_l_with_a`, then the mean over the
    text steps."""
    reference = mmsa_cross_modal_transformer(4, 1, 1)
    x = {
        "audio": rng.standard_normal((2, 6, 3)).astype("float32"),
        "text": rng.standard_normal((2, 4, 5)).astype("float32"),
    }
    torch.manual_seed(1)
    project = {
        "audio": torch.nn.Conv1d(3, 4, kernel_size=1, bias=False),
        "text": torch.nn.Conv1d(5, 4, kernel_size=1, bias=False),
    }
    with torch.no_grad():
        projected = {
            m: project[m](torch.from_numpy(v).transpose(1, 2)).permute(2, 0, 1)
            for m, v in x.items()
        }
        text_from_audio = reference(
            projected["text"], projected["audio"], projected["audio"]
        ).mean(0)
    fusion = CrossModalAttentionFusion(4, modalities=["text", "audio"])
    fusion(x)
    for m, conv in project.items():
        fusion.projections[m].set_weights([numpy(conv.weight)[:, :, 0].T])
    copy_cross_modal_transformer(
        reference, fusion.transformers["text_from_audio"]
    )
    assert_close(fusion(x)[:, :4], numpy(text_from_audio))

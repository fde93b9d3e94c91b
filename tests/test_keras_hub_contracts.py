"""keras-hub's own contract checks for every public mmzoo class.

Each class runs through the helpers of keras-hub's test base
(`keras_hub.src.tests.test_case.TestCase`: `run_layer_test`,
`run_serialization_test`, `run_backbone_test`, `run_vision_backbone_test`,
`run_preprocessing_layer_test`, `run_preprocessor_test`, `run_task_test`,
`run_preset_test`, `run_model_saving_test`, `run_precision_test`), with tiny
configs. Where a helper cannot take a class as it is, the test says why and
runs the helper's checks in the closest way that can.

`run_precision_test` (mixed_float16, mixed_bfloat16, bfloat16) returns at
once on torch without CUDA, as keras-hub decides; the training steps of
`run_layer_test` compile with `jit_compile=True` on JAX and TensorFlow.
"""

import os
import sys
import types

import keras
import keras_hub
import numpy as np
import pytest
from helpers import IMAGE_SIZE
from helpers import NUM_SAMPLES
from helpers import SAMPLE_RATE
from helpers import TINY_WHISPER
from helpers import VOCAB
from helpers import raw_batch
from helpers import tiny_backbone
from helpers import tiny_classifier
from helpers import tiny_preprocessor
from helpers import to_numpy
from keras_hub.src.utils.tensor_utils import is_float_dtype

import mmzoo

try:
    import grain  # noqa: F401

    HAS_GRAIN = True
except ImportError:
    # keras-hub's test base imports Grain at module level, for its Grain
    # parity check only. Grain is not a dependency of mmzoo: installed,
    # keras-hub's `Task.predict` routes arrays through Grain, which
    # MultimodalPreprocessor does not support yet (its traced image path
    # fails). The test base gets a stand-in module, removed right after.
    HAS_GRAIN = False
    sys.modules["grain"] = types.ModuleType("grain")
    try:
        from keras_hub.src.tests import test_case as keras_hub_test_case
    finally:
        del sys.modules["grain"]
else:
    from keras_hub.src.tests import test_case as keras_hub_test_case


class TestCase(keras_hub_test_case.TestCase):
    def run_grain_preprocessing_test(self, *args, **kwargs):
        # The Grain parity check needs Grain (see above).
        if HAS_GRAIN:
            super().run_grain_preprocessing_test(*args, **kwargs)

    def run_preprocessor_test(self, cls, init_kwargs, input_data, **kwargs):
        if HAS_GRAIN:
            return super().run_preprocessor_test(
                cls, init_kwargs, input_data, **kwargs
            )
        # The helper's steps without its Grain pipeline (see above).
        output = self.run_preprocessing_layer_test(
            cls, init_kwargs, input_data, return_output=True
        )
        layer = cls(**init_kwargs)
        key = kwargs.get("token_id_key", "token_ids")
        self.assertEqual(
            keras.ops.shape(layer(input_data)[key])[-1], layer.sequence_length
        )
        layer.sequence_length = 17
        self.assertEqual(keras.ops.shape(layer(input_data)[key])[-1], 17)
        return output


BATCH = 2


def tensors(x):
    """Backend tensors: `run_precision_test` calls `compute_output_spec`,
    which reads shapes only from tensors (keras-hub's own tests pass
    tensors too)."""
    return keras.tree.map_structure(keras.ops.convert_to_tensor, x)


POLICIES = ("mixed_float16", "mixed_bfloat16", "bfloat16")


def mixed_precision_runs():
    """`run_precision_test`'s rule: no mixed precision on torch CPU."""
    if keras.config.backend() != "torch":
        return True
    import torch

    return torch.cuda.is_available()


def text_inputs(batch=BATCH, steps=6):
    token_ids = (np.arange(batch * steps).reshape(batch, steps) % 10) + 2
    padding_mask = np.ones((batch, steps), "int32")
    padding_mask[-1, 3:] = 0
    return {
        "token_ids": token_ids.astype("int32"),
        "segment_ids": np.zeros((batch, steps), "int32"),
        "padding_mask": padding_mask,
    }


def audio_inputs(batch=BATCH, samples=800):
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal((batch, samples))).astype("float32")


def image_inputs(batch=BATCH):
    rng = np.random.default_rng(0)
    return rng.random((batch, IMAGE_SIZE, IMAGE_SIZE, 1)).astype("float32")


def fusion_inputs():
    rng = np.random.default_rng(0)
    return {
        "inputs": {
            "text": rng.standard_normal((BATCH, 6)).astype("float32"),
            "image": rng.standard_normal((BATCH, 4)).astype("float32"),
        },
        "modality_mask": np.array([[1, 1], [1, 0]], "int32"),
    }


class PrecisionMixin:
    def check_precision(
        self, build, input_data, float32_layers=(), float32_outputs=()
    ):
        """`run_precision_test`'s checks where the helper cannot build.

        `build(policy)` makes the model under `policy`; layers named in
        `float32_layers` and outputs in `float32_outputs` are float32 by
        design (and the caller says why).
        """
        if not mixed_precision_runs():
            return
        for name in POLICIES:
            policy = keras.DTypePolicy(name)
            model = build(policy)
            outputs = model(input_data)
            for key in float32_outputs:
                self.assertDTypeEqual(outputs.pop(key), "float32")
            for tensor in keras.tree.flatten(outputs):
                if is_float_dtype(tensor.dtype):
                    self.assertDTypeEqual(tensor, policy.compute_dtype)
            for weight in model.weights:
                if is_float_dtype(weight.dtype):
                    self.assertDTypeEqual(weight, policy.variable_dtype)
            for layer in model._flatten_layers():
                if isinstance(
                    layer, (keras.layers.InputLayer, keras.layers.Softmax)
                ):
                    continue
                if layer.name in float32_layers:
                    self.assertEqual(layer.compute_dtype, "float32")
                    continue
                self.assertEqual(
                    policy.compute_dtype, layer.compute_dtype, layer.name
                )
                self.assertEqual(
                    policy.variable_dtype, layer.variable_dtype, layer.name
                )


# --- Layers -----------------------------------------------------------------


class MaskedAveragePoolingTest(TestCase):
    def test_layer(self):
        x = np.random.default_rng(0).random((BATCH, 5, 4)).astype("float32")
        self.run_layer_test(
            cls=mmzoo.layers.MaskedAveragePooling,
            init_kwargs={},
            input_data=tensors(x),
            expected_output_shape=(BATCH, 4),
            expected_output_data=x.mean(axis=1),
        )

    def test_padding_mask(self):
        # `run_layer_test` builds a dict input with `build(**shapes)`, which
        # a layer with the default `build(input_shape)` does not take: the
        # masked call is checked here, its precision with the helper.
        x = np.random.default_rng(0).random((BATCH, 5, 4)).astype("float32")
        mask = np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], "int32")
        layer = mmzoo.layers.MaskedAveragePooling()
        self.assertAllClose(
            layer(x, padding_mask=mask),
            np.stack([x[0, :2].mean(0), np.zeros(4, "float32")]),
        )
        self.run_precision_test(
            mmzoo.layers.MaskedAveragePooling,
            {},
            tensors({"inputs": x, "padding_mask": mask}),
        )


class ConvBlockLayersTest(TestCase):
    """The encoders' conv blocks: mmzoo's `Conv2D(pool_size=2)` (bias and
    ReLU after the pool) and `MaxPooling2D` (strided slices on PyTorch)."""

    def test_pooled_conv(self):
        from mmzoo.models.encoders.conv_blocks import Conv2D

        x = np.random.default_rng(0).random((BATCH, 7, 5, 3)).astype("float32")
        self.run_layer_test(
            cls=Conv2D,
            init_kwargs={
                "filters": 4,
                "kernel_size": 3,
                "pool_size": 2,
                "padding": "same",
                "activation": "relu",
            },
            input_data=tensors(x),
            expected_output_shape=(BATCH, 4, 3, 4),
            expected_num_trainable_weights=2,
        )

    def test_pool(self):
        from mmzoo.models.encoders.conv_blocks import MaxPooling2D

        x = np.random.default_rng(0).random((BATCH, 7, 5, 3)).astype("float32")
        expected = keras.layers.MaxPooling2D(2, padding="same")(x)
        self.run_layer_test(
            cls=MaxPooling2D,
            init_kwargs={"pool_size": 2, "padding": "same"},
            input_data=tensors(x),
            expected_output_shape=(BATCH, 4, 3, 3),
            expected_output_data=keras.ops.convert_to_numpy(expected),
        )


class ConvolutionMatmulLayersTest(TestCase):
    """Dense layers whose products are 1×1 convolutions on PyTorch."""

    def test_dense(self):
        from mmzoo.utils.convolution_matmul import Dense

        x = np.random.default_rng(0).random((2, 300, 4)).astype("float32")
        self.run_layer_test(
            cls=Dense,
            init_kwargs={"units": 3, "activation": "relu"},
            input_data=tensors(x),
            expected_output_shape=(2, 300, 3),
            expected_num_trainable_weights=2,
        )

    def test_einsum_dense(self):
        from mmzoo.utils.convolution_matmul import EinsumDense

        x = np.random.default_rng(0).random((2, 300, 4)).astype("float32")
        self.run_layer_test(
            cls=EinsumDense,
            init_kwargs={
                "equation": "abc,cde->abde",
                "output_shape": (300, 2, 3),
                "bias_axes": "de",
            },
            input_data=tensors(x),
            expected_output_shape=(2, 300, 2, 3),
            expected_num_trainable_weights=2,
        )


class SpecAugmentTest(TestCase):
    def test_layer(self):
        x = np.random.default_rng(0).random((BATCH, 20, 8)).astype("float32")
        self.run_layer_test(
            cls=mmzoo.layers.SpecAugment,
            init_kwargs={
                "time_masks": 2,
                "time_mask_width": 4,
                "freq_masks": 1,
                "freq_mask_width": 3,
                "seed": 1,
            },
            input_data=tensors(x),
            expected_output_shape=(BATCH, 20, 8),
            # Inference leaves the input unchanged. The seed generator's
            # state is a non-trainable variable.
            expected_output_data=x,
            expected_num_non_trainable_variables=1,
        )


@pytest.mark.parametrize(
    "cls,init_kwargs",
    [
        (mmzoo.layers.ProjectionFusion, {"output_dim": 4}),  # concat: 8
        (mmzoo.layers.ProjectionFusion, {"output_dim": 8, "combine": "mean"}),
        (mmzoo.layers.ConvFusion, {"output_dim": 8, "filters": 4}),
        (mmzoo.layers.AttentionFusion, {"output_dim": 8, "num_heads": 2}),
        (mmzoo.layers.TensorFusion, {"output_dim": 8, "projection_dim": 2}),
        (mmzoo.layers.LowRankFusion, {"output_dim": 8, "rank": 2}),
        (mmzoo.layers.GatedMultimodalUnit, {"output_dim": 8}),
        (mmzoo.layers.LateFusion, {"output_dim": 8, "hidden_dim": 4}),
        # 2 targets × 1 source × 4 features.
        (mmzoo.layers.CrossModalAttentionFusion, {"hidden_dim": 4}),
    ],
)
class TestFusionLayers:
    """`run_layer_test` cannot take a fusion layer: it calls a layer on a
    dict input as `layer(**input_data)` and builds it with
    `build(**{key + "_shape": ...})`, while a fusion layer takes the dict of
    modalities as its one positional input (`layer({"text": ..., ...})`,
    built from a dict of shapes). Its serialization and precision helpers
    take `{"inputs": modalities, "modality_mask": mask}` as keyword
    arguments, so they run as is; the build, symbolic, eager and compiled
    training steps run here the helper's way.
    """

    def test_contract(self, cls, init_kwargs):
        case = TestCase()
        data = fusion_inputs()
        layer = cls(**init_kwargs)
        case.run_serialization_test(layer)
        # Build, then the symbolic call.
        layer.build({k: v.shape for k, v in data["inputs"].items()})
        assert layer.built and len(layer.trainable_weights) > 0
        symbolic = cls(**init_kwargs)(
            {k: keras.KerasTensor(v.shape) for k, v in data["inputs"].items()},
            modality_mask=keras.KerasTensor((BATCH, 2), "int32"),
        )
        assert tuple(symbolic.shape) == (BATCH, 8)
        # Eager call; the masked modality gives exactly nothing. Mask
        # columns follow the sorted names: image, text; row 1 lacks text.
        layer = cls(**init_kwargs)
        out = to_numpy(layer(**data))
        assert out.shape == (BATCH, 8)
        alone = to_numpy(layer({"image": data["inputs"]["image"][1:]}))
        np.testing.assert_allclose(out[1:], alone, atol=1e-6)
        # The helper's training step: a model around the layer, compiled
        # (jit_compile except on torch), one `fit`.
        inputs = {
            k: keras.Input(v.shape[1:], name=k)
            for k, v in data["inputs"].items()
        }
        mask = keras.Input((2,), dtype="int32", name="modality_mask")
        model = keras.Model(
            {**inputs, "modality_mask": mask},
            layer(inputs, modality_mask=mask),
        )
        model.compile(
            optimizer="sgd",
            loss="mse",
            jit_compile=keras.config.backend() != "torch",
        )
        model.fit(
            {**data["inputs"], "modality_mask": data["modality_mask"]},
            np.zeros((BATCH, 8), "float32"),
            verbose=0,
        )
        case.run_precision_test(cls, init_kwargs, tensors(data))


class CrossModalTransformerTest(TestCase):
    def test_layer_behaviors(self):
        rng = np.random.default_rng(0)
        self.run_layer_test(
            cls=mmzoo.layers.CrossModalTransformer,
            init_kwargs={"hidden_dim": 8, "num_heads": 2, "num_layers": 2},
            input_data={
                "target": rng.standard_normal((BATCH, 3, 8)).astype("float32"),
                "source": rng.standard_normal((BATCH, 5, 8)).astype("float32"),
            },
            expected_output_shape=(BATCH, 3, 8),
            # Per layer: 4 attention kernels and biases, 2 norms (4),
            # 2 dense (4); the output norm (2).
            expected_num_trainable_weights=2 * 16 + 2,
        )


class WaveformConverterTest(TestCase):
    def test_preprocessing_layer(self):
        audio = audio_inputs(samples=700)
        # `expected_output` is left out: the helper tests it with `if
        # expected_output:`, which an array cannot answer; compared below.
        output = self.run_preprocessing_layer_test(
            cls=mmzoo.layers.WaveformConverter,
            init_kwargs={"sample_rate": SAMPLE_RATE, "num_samples": 500},
            input_data=audio,
            return_output=True,
        )
        self.assertAllClose(output, audio[:, :500])

    def test_serialization_and_batched_tf_data(self):
        import tensorflow as tf

        converter = mmzoo.layers.WaveformConverter(SAMPLE_RATE, 500)
        self.run_serialization_test(converter)
        audio = audio_inputs(samples=700)
        ds = tf.data.Dataset.from_tensor_slices(audio).batch(BATCH)
        self.assertAllClose(
            ds.map(converter).get_single_element(), audio[:, :500]
        )


class WhisperAudioConverterTest(TestCase):
    def test_preprocessing_layer(self):
        audio = 10 * audio_inputs(samples=4000)
        output = self.run_preprocessing_layer_test(
            cls=mmzoo.layers.WhisperAudioConverter,
            init_kwargs={"max_audio_length": 0.3},
            input_data=audio,
            return_output=True,
        )
        self.assertEqual(tuple(output.shape), (BATCH, 30, 80))


def tiny_mmzoo_whisper(seed=0):
    from helpers import randomise_weights

    keras.utils.set_random_seed(seed)
    return randomise_weights(mmzoo.models.WhisperBackbone(**TINY_WHISPER), seed)


class WhisperTranscriptScorerTest(TestCase):
    def test_layer(self):
        backbone = tiny_mmzoo_whisper()
        sequences = [[1, 2, 3], [1, 2, 4, 5], [1, 6]]
        scored = [[0, 1, 1], [0, 1, 1, 1], [0, 1]]
        encoder_sequence = (
            np.random.default_rng(0).standard_normal((BATCH, 5, 8))
        ).astype("float32")
        self.run_layer_test(
            cls=mmzoo.layers.WhisperTranscriptScorer,
            init_kwargs={
                "backbone": backbone,
                "sequences": sequences,
                "scored": scored,
            },
            input_data=tensors(encoder_sequence),
            expected_output_shape=(BATCH, 3),
            # The scorer freezes the backbone's decoder it reads.
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=len(backbone.weights),
            expected_num_non_trainable_variables=len(backbone.weights),
            # Nothing trains (the scorer is frozen), so no training step.
            run_training_check=False,
            # The log-likelihoods are float32 under every policy by design
            # (documented: summed log-probabilities would lose their ranking
            # in float16); the helper wants the compute dtype: checked below.
            run_precision_checks=False,
        )
        if not mixed_precision_runs():
            return
        for name in POLICIES:
            policy = keras.DTypePolicy(name)
            scorer = mmzoo.layers.WhisperTranscriptScorer(
                mmzoo.models.WhisperBackbone.from_config(
                    dict(backbone.get_config(), dtype=policy)
                ),
                sequences,
                scored,
            )
            self.assertEqual(scorer.dtype_policy.name, name)
            self.assertDTypeEqual(scorer(encoder_sequence), "float32")
            spec = scorer.compute_output_spec(
                keras.KerasTensor(encoder_sequence.shape)
            )
            self.assertDTypeEqual(spec, "float32")
            for weight in scorer.weights:
                if is_float_dtype(weight.dtype):
                    self.assertDTypeEqual(weight, policy.variable_dtype)
            for layer in scorer._flatten_layers():
                if isinstance(
                    layer, (keras.layers.InputLayer, keras.layers.Softmax)
                ):
                    continue
                self.assertEqual(
                    policy.compute_dtype, layer.compute_dtype, layer.name
                )
                self.assertEqual(
                    policy.variable_dtype, layer.variable_dtype, layer.name
                )


# --- Backbones --------------------------------------------------------------


def text_encoder_kwargs():
    return dict(
        vocabulary_size=len(VOCAB),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=6,
        dropout=0.0,
    )


def audio_encoder_kwargs():
    return dict(
        sample_rate=SAMPLE_RATE,
        num_mel_bins=16,
        fft_length=128,
        sequence_stride=64,
        filters=(4,),
        hidden_dim=8,
    )


class TextEncoderTest(TestCase):
    def test_backbone(self):
        self.run_backbone_test(
            cls=mmzoo.models.TextEncoder,
            init_kwargs=text_encoder_kwargs(),
            input_data=tensors(text_inputs()),
            expected_output_shape={
                "sequence_output": (BATCH, 6, 8),
                "pooled_output": (BATCH, 8),
            },
        )
        # `run_backbone_test` checks variable lengths only for backbones
        # with a `token_embedding`; the same check, here.
        encoder = mmzoo.models.TextEncoder(**text_encoder_kwargs())
        for steps in (2, 3, 4):
            data = keras.tree.map_structure(
                lambda x: x[:, :steps], text_inputs()
            )
            out = encoder(data)["sequence_output"]
            self.assertEqual(tuple(out.shape), (BATCH, steps, 8))

    def test_saving(self):
        self.run_model_saving_test(
            cls=mmzoo.models.TextEncoder,
            init_kwargs=text_encoder_kwargs(),
            input_data=text_inputs(),
        )


class ImageEncoderTest(TestCase):
    def test_vision_backbone(self):
        self.run_vision_backbone_test(
            cls=mmzoo.models.ImageEncoder,
            init_kwargs={
                "image_shape": (IMAGE_SIZE, IMAGE_SIZE, 1),
                "filters": (4, 8),
                "hidden_dim": 8,
            },
            input_data=tensors(image_inputs()),
            expected_output_shape={
                "sequence_output": (BATCH, 9, 8),
                "pooled_output": (BATCH, 8),
            },
            # Neither output is a feature map: positions stay the second
            # axis in both layouts. The helper transposes every output
            # shape unless it is told which keys are spatial.
            spatial_output_keys=["feature_map"],
        )

    def test_saving(self):
        for pooling in ("flatten", "average"):
            self.run_model_saving_test(
                cls=mmzoo.models.ImageEncoder,
                init_kwargs={
                    "image_shape": (IMAGE_SIZE, IMAGE_SIZE, 1),
                    "filters": (4,),
                    "hidden_dim": 8,
                    "pooling": pooling,
                },
                input_data=image_inputs(),
            )


class AudioEncoderTest(TestCase, PrecisionMixin):
    def test_backbone(self):
        self.run_backbone_test(
            cls=mmzoo.models.AudioEncoder,
            init_kwargs=audio_encoder_kwargs(),
            input_data=tensors(audio_inputs()),
            expected_output_shape={
                "sequence_output": (BATCH, 7, 8),
                "pooled_output": (BATCH, 8),
            },
            # The log-mel front end is float32 under every policy by design
            # (the STFT runs in float32 on JAX and TensorFlow; dB values of
            # quiet bins would lose their range in float16), which the
            # helper's every-sublayer rule rejects: checked below instead.
            run_mixed_precision_check=False,
        )
        self.check_precision(
            lambda policy: mmzoo.models.AudioEncoder(
                **audio_encoder_kwargs(), dtype=policy
            ),
            audio_inputs(),
            float32_layers=("melspectrogram", "decibels"),
        )

    def test_saving(self):
        self.run_model_saving_test(
            cls=mmzoo.models.AudioEncoder,
            init_kwargs=dict(
                audio_encoder_kwargs(), spec_augment={"time_masks": 1}
            ),
            input_data=audio_inputs(),
        )

    def test_a_row_is_the_same_alone_and_in_a_batch(self):
        rng = np.random.default_rng(1)
        quiet = 1e-3 * rng.standard_normal(1600)
        quiet[800:] = 0.0
        loud = 10.0 * rng.standard_normal(1600)
        clips = np.stack([quiet, loud]).astype("float32")
        encoder = mmzoo.models.AudioEncoder(**audio_encoder_kwargs())
        together = encoder.predict(clips, verbose=0)
        # `batch_size=1`: every row goes through the model alone.
        alone = encoder.predict(clips, batch_size=1, verbose=0)
        self.assertAllClose(alone, together, atol=1e-5, rtol=1e-5)


def tiny_encoders(dtype=None):
    return {
        "text": mmzoo.models.TextEncoder(**text_encoder_kwargs(), dtype=dtype),
        "image": mmzoo.models.ImageEncoder(
            (IMAGE_SIZE, IMAGE_SIZE, 1), (4,), 8, dtype=dtype
        ),
        "audio": mmzoo.models.AudioEncoder(
            **audio_encoder_kwargs(), dtype=dtype
        ),
    }


def backbone_inputs():
    return {
        "text": text_inputs(),
        "image": image_inputs(),
        "audio": audio_inputs(),
        "modality_mask": np.array([[1, 1, 1], [1, 0, 1]], "int32"),
    }


class MultimodalBackboneTest(TestCase, PrecisionMixin):
    def test_backbone(self):
        self.run_backbone_test(
            cls=mmzoo.models.MultimodalBackbone,
            init_kwargs={
                "encoders": tiny_encoders(),
                "fusion": mmzoo.layers.AttentionFusion(8, num_heads=2),
            },
            input_data=tensors(backbone_inputs()),
            expected_output_shape={"fused_output": (BATCH, 8)},
            # Quantization keys a DTypePolicyMap by `layer.path`, which is
            # relative to each nested encoder (the image and audio encoders
            # both have a "projection"): the helper's map cannot tell them
            # apart.
            run_quantization_check=False,
            # The helper re-dtypes only `init_kwargs` values that are layers;
            # `encoders` is a dict of them, so the encoders would keep
            # float32. Checked below with every part built under the policy
            # (the audio front end is float32 by design).
            run_mixed_precision_check=False,
        )
        self.check_precision(
            lambda policy: mmzoo.models.MultimodalBackbone(
                encoders=tiny_encoders(policy),
                fusion=mmzoo.layers.AttentionFusion(8, 2, dtype=policy),
                dtype=policy,
            ),
            backbone_inputs(),
            float32_layers=("melspectrogram", "decibels"),
        )

    def test_saving_and_preset(self):
        # `run_model_saving_test`'s steps, on one backbone: its encoders
        # are objects, and the helper would build two models around them.
        backbone = tiny_backbone()
        path = os.path.join(self.get_temp_dir(), "model.keras")
        expected = backbone(backbone_inputs())
        backbone.save(path)
        restored = keras.models.load_model(path)
        self.assertIsInstance(restored, mmzoo.models.MultimodalBackbone)
        self.assertAllClose(expected, restored(backbone_inputs()))
        preset = os.path.join(self.get_temp_dir(), "preset")
        backbone.save_to_preset(preset)
        self.run_preset_test(
            cls=mmzoo.models.MultimodalBackbone,
            preset=preset,
            input_data=backbone_inputs(),
            expected_output=expected,
        )


def tiny_bert():
    return keras_hub.models.BertBackbone(
        vocabulary_size=len(VOCAB),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=8,
    )


class SentenceEncoderTest(TestCase, PrecisionMixin):
    def test_backbone(self):
        self.run_backbone_test(
            cls=mmzoo.models.SentenceEncoder,
            init_kwargs={"backbone": tiny_bert()},
            input_data=tensors(text_inputs()),
            expected_output_shape={
                "sequence_output": (BATCH, 6, 8),
                "pooled_output": (BATCH, 8),
            },
            # Pooling and normalisation run in float32 under every policy
            # by design (documented); the helper wants every layer and
            # output in the compute dtype: checked below instead.
            run_mixed_precision_check=False,
        )
        self.check_precision(
            lambda policy: mmzoo.models.SentenceEncoder(
                keras_hub.models.BertBackbone.from_config(
                    dict(tiny_bert().get_config(), dtype=policy)
                ),
                dtype=policy,
            ),
            text_inputs(),
            float32_layers=("pooler", "normalization"),
            float32_outputs=("pooled_output",),
        )

    def test_saving(self):
        self.run_model_saving_test(
            cls=mmzoo.models.SentenceEncoder,
            init_kwargs={"backbone": tiny_bert()},
            input_data=text_inputs(),
        )


def whisper_inputs(frames=20, tokens=5):
    rng = np.random.default_rng(0)
    return {
        "encoder_features": rng.standard_normal((BATCH, frames, 80)).astype(
            "float32"
        ),
        "decoder_token_ids": rng.integers(0, 40, (BATCH, tokens)).astype(
            "int32"
        ),
        "decoder_padding_mask": np.ones((BATCH, tokens), "int32"),
    }


class WhisperBackboneTest(TestCase):
    def test_backbone(self):
        self.run_backbone_test(
            cls=mmzoo.models.WhisperBackbone,
            init_kwargs=dict(TINY_WHISPER),
            input_data=tensors(whisper_inputs()),
            expected_output_shape={
                "encoder_sequence_output": (BATCH, 10, 8),
                "decoder_sequence_output": (BATCH, 5, 8),
            },
            # The helper's variable-length check cuts every input to 2..4
            # steps, also the log-mel frames; a Whisper encoder needs an
            # even frame count (stride-2 conv); 2 and 4 frames, same length.
            variable_length_data=[
                tensors(whisper_inputs(frames, tokens))
                for frames, tokens in ((2, 2), (4, 3), (4, 4))
            ],
        )

    def test_saving(self):
        self.run_model_saving_test(
            cls=mmzoo.models.WhisperBackbone,
            init_kwargs=dict(TINY_WHISPER),
            input_data=whisper_inputs(),
        )


def whisper_encoder_kwargs():
    return dict(
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_encoder_sequence_length=60,
    )


class WhisperAudioEncoderTest(TestCase, PrecisionMixin):
    def test_backbone(self):
        features = tensors(whisper_inputs()["encoder_features"])
        self.run_backbone_test(
            cls=mmzoo.models.WhisperAudioEncoder,
            init_kwargs=whisper_encoder_kwargs(),
            input_data=features,
            expected_output_shape={
                "sequence_output": (BATCH, 10, 8),
                "pooled_output": (BATCH, 8),
            },
            # `pooled_output` is averaged in float32 under mixed precision
            # by design (test_whisper checks it), which the helper's
            # "every float output in the compute dtype" rule rejects: the
            # rest of its checks run below.
            run_mixed_precision_check=False,
        )
        if not mixed_precision_runs():
            return
        for name in POLICIES:
            policy = keras.DTypePolicy(name)
            encoder = mmzoo.models.WhisperAudioEncoder(
                **whisper_encoder_kwargs(), dtype=policy
            )
            out = encoder(features)
            self.assertDTypeEqual(out["sequence_output"], policy.compute_dtype)
            for weight in encoder.weights:
                self.assertDTypeEqual(weight, policy.variable_dtype)

    def test_saving(self):
        self.run_model_saving_test(
            cls=mmzoo.models.WhisperAudioEncoder,
            init_kwargs=whisper_encoder_kwargs(),
            input_data=whisper_inputs()["encoder_features"],
        )


# --- Preprocessors and tokenizers -------------------------------------------


class SentenceEncoderTokenizerTest(TestCase):
    def test_tokenizer(self):
        self.run_preprocessing_layer_test(
            cls=mmzoo.models.SentenceEncoderTokenizer,
            init_kwargs={"vocabulary": VOCAB},
            input_data=["a cat", "two dog"],
            expected_output=[[9, 10], [7, 11]],
        )


class SentenceEncoderPreprocessorTest(TestCase):
    def test_preprocessor(self):
        self.init_kwargs = {
            "tokenizer": mmzoo.models.SentenceEncoderTokenizer(
                vocabulary=VOCAB
            ),
            "sequence_length": 5,
        }
        output = self.run_preprocessor_test(
            cls=mmzoo.models.SentenceEncoderPreprocessor,
            init_kwargs=self.init_kwargs,
            input_data=["a cat", "two dog one"],
        )
        self.assertAllEqual(
            output["token_ids"], [[2, 9, 10, 3, 0], [2, 7, 11, 6, 3]]
        )


class WhisperTokenizerTest(TestCase):
    def test_tokenizer(self):
        import test_whisper_transcript_classifier as tiny

        self.run_preprocessing_layer_test(
            cls=mmzoo.models.WhisperTokenizer,
            init_kwargs={
                "vocabulary": dict(tiny.VOCABULARY),
                "merges": list(tiny.MERGES),
                "special_tokens": dict(tiny.SPECIAL_TOKENS),
                "language_tokens": dict(tiny.LANGUAGE_TOKENS),
            },
            input_data=[" no", " yes oui"],
        )


def multimodal_preprocessor_kwargs():
    return {
        "tokenizer": keras_hub.tokenizers.BertTokenizer(vocabulary=VOCAB),
        "image_converter": keras_hub.layers.ImageConverter(
            image_size=(IMAGE_SIZE, IMAGE_SIZE), scale=1 / 255.0
        ),
        "audio_converter": mmzoo.layers.WaveformConverter(
            sample_rate=SAMPLE_RATE, num_samples=NUM_SAMPLES
        ),
        "sequence_length": 6,
    }


class MultimodalPreprocessorTest(TestCase):
    def test_preprocessor(self):
        # Adapted: `run_preprocessor_test` reads `output["token_ids"]` at the
        # top level, but `MultimodalPreprocessor` returns one entry per
        # modality (the text's token ids are `output["text"]["token_ids"]`),
        # so its steps are run here with that key path.
        self.init_kwargs = multimodal_preprocessor_kwargs()
        x, _ = raw_batch(BATCH)
        cls = mmzoo.models.MultimodalPreprocessor
        self.run_preprocessing_layer_test(
            cls=cls, init_kwargs=self.init_kwargs, input_data=x
        )
        layer = cls(**self.init_kwargs)
        token_ids = layer(x)["text"]["token_ids"]
        self.assertEqual(keras.ops.shape(token_ids)[-1], layer.sequence_length)
        layer.sequence_length = 17
        token_ids = layer(x)["text"]["token_ids"]
        self.assertEqual(keras.ops.shape(token_ids)[-1], 17)

    def test_serialization_and_batched_tf_data(self):
        # The parts of `run_preprocessing_layer_test` that pass today.
        import tensorflow as tf

        preprocessor = tiny_preprocessor()
        self.run_serialization_test(preprocessor)
        x, _ = raw_batch(BATCH)
        output = preprocessor(x)
        ds = tf.data.Dataset.from_tensor_slices(x).batch(BATCH)
        self.assertAllClose(output, ds.map(preprocessor).get_single_element())

    def test_preset(self):
        x, _ = raw_batch(BATCH)
        classifier = tiny_classifier()
        preset = os.path.join(self.get_temp_dir(), "preset")
        classifier.save_to_preset(preset)
        self.run_preset_test(
            cls=mmzoo.models.MultimodalPreprocessor,
            preset=preset,
            input_data=x,
            expected_output=classifier.preprocessor(x),
        )


class WhisperAudioClassifierPreprocessorTest(TestCase):
    def test_preprocessing_layer(self):
        from test_whisper_transcript_classifier import tiny_preprocessor
        from test_whisper_transcript_classifier import waveforms

        preprocessor = tiny_preprocessor()
        audio = waveforms(BATCH)
        output = self.run_preprocessing_layer_test(
            cls=mmzoo.models.WhisperAudioClassifierPreprocessor,
            init_kwargs={
                "audio_converter": preprocessor.audio_converter,
                "tokenizer": preprocessor.tokenizer,
            },
            input_data=audio,
            return_output=True,
        )
        # The eager (NumPy) and tf.data (TensorFlow) features are computed
        # in float64 and rounded once: the preprocessor adds nothing.
        self.assertAllClose(output, preprocessor.audio_converter(audio))


# --- Tasks ------------------------------------------------------------------


def classifier_kwargs():
    return {
        "backbone": tiny_backbone(),
        "preprocessor": tiny_preprocessor(),
        "num_classes": 4,
    }


class MultimodalClassifierTest(TestCase):
    def test_task(self):
        x, y = raw_batch(4)
        self.run_task_test(
            cls=mmzoo.models.MultimodalClassifier,
            init_kwargs=classifier_kwargs(),
            train_data=(x, y),
            expected_output_shape=(4, 4),
        )

    def test_saving(self):
        classifier = tiny_classifier()
        x, _ = raw_batch(BATCH)
        inputs = classifier.preprocessor(x)
        expected = classifier(inputs)
        path = os.path.join(self.get_temp_dir(), "task.keras")
        classifier.save(path)
        restored = keras.models.load_model(path)
        self.assertIsInstance(restored, mmzoo.models.MultimodalClassifier)
        self.assertAllClose(expected, restored(inputs), atol=1e-6, rtol=1e-6)

    def test_preset(self):
        classifier = tiny_classifier()
        x, _ = raw_batch(BATCH)
        inputs = classifier.preprocessor(x)
        preset = os.path.join(self.get_temp_dir(), "preset")
        classifier.save_to_preset(preset)
        self.run_preset_test(
            cls=mmzoo.models.MultimodalClassifier,
            preset=preset,
            input_data=inputs,
            expected_output=classifier(inputs),
        )

    def test_a_row_is_the_same_alone_and_in_a_batch(self):
        classifier = tiny_classifier()
        x, _ = raw_batch(4)
        x["audio"][0] *= 1e-3  # a quiet clip beside loud ones
        together = classifier.predict(x, verbose=0)
        # `batch_size=1`: every row is preprocessed and classified alone.
        alone = classifier.predict(x, batch_size=1, verbose=0)
        self.assertAllClose(alone, together, atol=1e-5, rtol=1e-5)


class MultimodalMultiTaskTest(TestCase):
    def test_task(self):
        x, y = raw_batch(4)
        heads = {
            "word": {"type": "classification", "num_classes": 4},
            "value": {"type": "regression"},
        }
        self.run_task_test(
            cls=mmzoo.models.MultimodalMultiTask,
            init_kwargs={
                "backbone": tiny_backbone(),
                "preprocessor": tiny_preprocessor(),
                "heads": heads,
            },
            train_data=(x, {"word": y, "value": (y / 3.0)[:, None]}),
            expected_output_shape={"word": (4, 4), "value": (4, 1)},
        )


class WhisperTranscriptClassifierTest(TestCase):
    def test_task(self):
        from test_whisper_transcript_classifier import TRANSCRIPTS
        from test_whisper_transcript_classifier import tiny_backbone
        from test_whisper_transcript_classifier import tiny_preprocessor
        from test_whisper_transcript_classifier import waveforms

        audio = waveforms(4)
        self.run_task_test(
            cls=mmzoo.models.WhisperTranscriptClassifier,
            init_kwargs={
                "backbone": tiny_backbone(),
                "preprocessor": tiny_preprocessor(),
                "class_transcripts": TRANSCRIPTS,
                "hidden_dim": 4,
            },
            train_data=(audio, np.array([0, 1, 0, 1])),
            expected_output_shape=(4, 2),
        )


def test_every_public_class_has_a_contract_test():
    """A new public class needs a test here (or a reason below)."""
    tested = {
        name[: -len("Test")]
        for name, value in globals().items()
        if name.endswith("Test") and isinstance(value, type)
    }
    tested |= {
        "ProjectionFusion",
        "ConvFusion",
        "AttentionFusion",
        "TensorFusion",
        "LowRankFusion",
        "GatedMultimodalUnit",
        "LateFusion",
        "CrossModalAttentionFusion",
    }
    # Contract tests kept beside the class's other tests.
    import test_efficientnet_lite
    import test_whisper_audio_to_text

    tested |= {
        name[: -len("Test")]
        for module in (test_whisper_audio_to_text, test_efficientnet_lite)
        for name, value in vars(module).items()
        if name.endswith("Test")
        and isinstance(value, type)
        and issubclass(value, TestCase)
    }
    # The abstract bases: no instance of their own to check.
    abstract = {"ModalityFusion", "MultimodalTask"}
    public = {
        name
        for module in (mmzoo.layers, mmzoo.models)
        for name, value in vars(module).items()
        if isinstance(value, type) and not name.startswith("_")
    }
    assert public - abstract - tested == set()

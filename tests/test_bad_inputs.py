"""A catalogue of bad and unusual inputs against the shipped presets and the
building blocks: each case asserts the answer (valid inputs) or the message
(invalid ones). Tests marked `ALL` run on every backend; the others on
TensorFlow only, to keep the per-backend runs short."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from helpers import tiny_backbone
from helpers import tiny_preprocessor
from scipy.signal import resample

import mmzoo
from mmzoo.datasets import load_av_digits

N = 24
# Catalogue cases run on TensorFlow only; ALL cases run everywhere.
ONE_BACKEND = pytest.mark.one_backend("tensorflow")
WORDS = np.array(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
     "nine"]
)


def load(name):
    return mmzoo.models.MultimodalClassifier.from_preset(name)


@pytest.fixture(scope="module")
def data():
    x, y = load_av_digits("test", verbose=False)
    # Two of every digit, spread over the split.
    rows = np.concatenate([np.nonzero(y == d)[0][:2] for d in range(10)])
    rows = np.concatenate([rows, [1, 2, 3, 4]])[:N]
    return {k: v[rows] for k, v in x.items()}, y[rows]


@pytest.fixture(scope="module")
def attention():
    return load("av_digits_attention")


@pytest.fixture(scope="module")
def image_only():
    return load("av_digits_image")


@pytest.fixture(scope="module")
def audio_only():
    return load("av_digits_audio")


@pytest.fixture(scope="module")
def trimodal():
    return load("trimodal_digits_demo")


@pytest.fixture(scope="module")
def reference(data, attention, image_only, audio_only):
    """Predictions on the documented inputs (uint8 images, 8 kHz audio)."""
    x, _ = data
    return {
        "attention": attention.predict(x, verbose=0),
        "image": image_only.predict({"image": x["image"]}, verbose=0),
        "audio": audio_only.predict({"audio": x["audio"]}, verbose=0),
    }


# --- Images ---------------------------------------------------------------


def test_ALL_float_image_0_255_equals_uint8(data, image_only, reference):
    x, _ = data
    got = image_only.predict(
        {"image": x["image"].astype("float32")}, verbose=0
    )
    np.testing.assert_allclose(got, reference["image"], atol=1e-5)


def test_ALL_float_image_in_0_1_is_refused(data, image_only):
    x, _ = data
    with pytest.raises(
        ValueError,
        match=r"'image' got float pixels all within \[0, 1\].*"
        r"image_value_range = \(low, high\).*\(0, 1\)",
    ):
        image_only.predict({"image": x["image"] / 255.0}, verbose=0)


def test_ALL_channels_first_image_is_refused(data, image_only):
    x, _ = data
    with pytest.raises(
        ValueError, match=r"'image' looks channels-first.*\(0, 2, 3, 1\)"
    ):
        image_only.predict(
            {"image": np.transpose(x["image"], (0, 3, 1, 2))}, verbose=0
        )


@ONE_BACKEND
@pytest.mark.parametrize(
    "value_range, convert",
    [
        ((0, 1), lambda im: im / 255.0),
        ((-1, 1), lambda im: im / 127.5 - 1.0),
        ((0, 255), lambda im: im.astype("float64")),
    ],
)
def test_declared_float_range_equals_uint8(
    data, image_only, reference, value_range, convert
):
    x, _ = data
    preprocessor = image_only.preprocessor
    preprocessor.image_value_range = value_range
    try:
        got = image_only.predict({"image": convert(x["image"])}, verbose=0)
    finally:
        preprocessor.image_value_range = (0, 255)
    np.testing.assert_allclose(got, reference["image"], atol=1e-4)


@ONE_BACKEND
def test_image_value_range_is_serialised(image_only):
    preprocessor = image_only.preprocessor
    config = preprocessor.get_config()
    assert config["image_value_range"] == [0.0, 255.0]
    config["image_value_range"] = [0, 1]
    restored = mmzoo.models.MultimodalPreprocessor.from_config(config)
    assert restored.image_value_range == (0.0, 1.0)


@ONE_BACKEND
@pytest.mark.parametrize("bad", [(1, 0), (0,), "0-255", (0, np.inf)])
def test_bad_image_value_range(bad):
    with pytest.raises(ValueError, match="`image_value_range` must be"):
        tiny_preprocessor().image_value_range = bad


@ONE_BACKEND
def test_float_image_outside_declared_range(data, image_only):
    x, _ = data
    with pytest.raises(
        ValueError,
        match=r"'image' got float pixels in \[-1, 1\], outside "
        r"image_value_range=\[0, 255\]",
    ):
        image_only.predict({"image": x["image"] / 127.5 - 1.0}, verbose=0)


@ONE_BACKEND
def test_uint16_image_is_16_bit(data, image_only, reference):
    x, _ = data
    image = x["image"].astype("uint16") * 257  # 255 -> 65535
    got = image_only.predict({"image": image}, verbose=0)
    np.testing.assert_allclose(got, reference["image"], atol=1e-5)


@ONE_BACKEND
def test_int64_image_in_0_255_equals_uint8(data, image_only, reference):
    x, _ = data
    got = image_only.predict({"image": x["image"].astype("int64")}, verbose=0)
    np.testing.assert_allclose(got, reference["image"], atol=1e-5)


@ONE_BACKEND
def test_int64_image_outside_0_255(data, image_only):
    x, _ = data
    image = x["image"].astype("int64") * 4
    with pytest.raises(
        ValueError, match=r"'image' got int64 pixels in \[0, 1020\]"
    ):
        image_only.predict({"image": image}, verbose=0)


@ONE_BACKEND
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda im: im[..., 0], r"add a channel axis"),
        (lambda im: im > 128, r"'image' expects uint8 or float.*bool"),
        (
            lambda im: np.where(im > 250, np.nan, im / 1.0),
            r"'image' contains NaN",
        ),
        (
            lambda im: [im[0], im[1, :20, :20]],
            r"'image' got a list of images of different shapes",
        ),
        (lambda im: im[None], r"'image' expects images of shape"),
    ],
)
def test_bad_images(data, image_only, make, message):
    x, _ = data
    with pytest.raises(ValueError, match=message):
        image_only.predict({"image": make(x["image"])}, verbose=0)


@ONE_BACKEND
def test_list_of_images_equals_stacked(data, image_only, reference):
    x, _ = data
    got = image_only.predict({"image": list(x["image"])}, verbose=0)
    np.testing.assert_allclose(got, reference["image"], atol=1e-5)


@ONE_BACKEND
def test_larger_image_is_resized(data, image_only):
    x, _ = data
    big = np.repeat(np.repeat(x["image"], 2, axis=1), 2, axis=2)  # 56x56
    got = image_only.predict({"image": big}, verbose=0)
    assert got.shape == (N, 10) and np.isfinite(got).all()


# --- Audio ----------------------------------------------------------------


@pytest.mark.parametrize("rate", [16000, 44100])
def test_ALL_declared_sample_rate_is_resampled(
    data, audio_only, reference, rate
):
    x, _ = data
    # The same clips as a recording at `rate` would carry them.
    audio = resample(x["audio"], rate, axis=-1)
    got = audio_only.predict(
        {"audio": audio.astype("float32")}, sample_rate=rate, verbose=0
    )
    np.testing.assert_allclose(got, reference["audio"], atol=1e-3)


def test_ALL_stereo_is_mixed_down(data, audio_only, reference):
    x, _ = data
    left = x["audio"] * 1.5
    right = x["audio"] * 0.5
    stereo = np.stack([left, right], axis=-1)  # mean = the mono clip
    got = audio_only.predict({"audio": stereo}, verbose=0)
    np.testing.assert_allclose(got, reference["audio"], atol=1e-4)


def test_ALL_tf_data_with_declared_sample_rate(data, audio_only, reference):
    x, _ = data
    audio = resample(x["audio"], 16000, axis=-1).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices({"audio": audio}).batch(8)
    got = audio_only.predict(ds, sample_rate=16000, verbose=0)
    np.testing.assert_allclose(
        got,
        audio_only.predict(
            {"audio": audio}, sample_rate=16000, verbose=0
        ),
        atol=1e-5,
    )
    np.testing.assert_allclose(got, reference["audio"], atol=1e-3)


@ONE_BACKEND
def test_undeclared_rate_is_the_presets(data, audio_only):
    """Without `sample_rate`, audio is read at the preset's 8 kHz: 16 kHz
    audio is trimmed to its first 8000 samples, as before."""
    x, _ = data
    audio = resample(x["audio"], 16000, axis=-1).astype("float32")
    np.testing.assert_allclose(
        audio_only.predict({"audio": audio}, verbose=0),
        audio_only.predict({"audio": audio[:, :8000]}, verbose=0),
        atol=1e-5,
    )


@ONE_BACKEND
def test_list_of_variable_length_clips(data, audio_only):
    x, _ = data
    clips = [clip[: 4000 + 100 * i] for i, clip in enumerate(x["audio"])]
    padded = np.zeros((N, 8000), "float32")
    for i, clip in enumerate(clips):
        padded[i, : len(clip)] = clip
    np.testing.assert_allclose(
        audio_only.predict({"audio": clips}, verbose=0),
        audio_only.predict({"audio": padded}, verbose=0),
        atol=1e-5,
    )


@ONE_BACKEND
@pytest.mark.parametrize("rate", [0, -8000, 8000.5, "8k", True])
def test_bad_sample_rate(data, audio_only, rate):
    x, _ = data
    with pytest.raises(
        ValueError, match="'audio': `sample_rate` must be a positive"
    ):
        audio_only.predict({"audio": x["audio"]}, sample_rate=rate, verbose=0)


@ONE_BACKEND
@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda a: np.stack([a, a], axis=1),
            r"'audio' looks channels-first.*swapaxes",
        ),
        (lambda a: (a * 32767).astype("int16"), r"x / 32768.0"),
        (lambda a: [a[0], None], r"'audio' got None at row 1"),
        (lambda a: [a[0], a[1, :0]], r"'audio' got zero-length.*at row 1"),
        (lambda a: np.where(a > 0.5, np.nan, a), r"'audio' contains NaN"),
        (lambda a: a[0], r"one example without a batch axis"),
    ],
)
def test_bad_audio(data, audio_only, make, message):
    x, _ = data
    with pytest.raises(ValueError, match=message):
        audio_only.predict({"audio": make(x["audio"])}, verbose=0)


@ONE_BACKEND
def test_waveform_converter_resample_is_band_limited():
    converter = mmzoo.layers.WaveformConverter(8000, 8000)
    audio = np.random.default_rng(0).standard_normal((2, 44100))
    np.testing.assert_allclose(
        converter.resample(audio, 44100),
        resample(audio, 8000, axis=-1),
        atol=1e-4,
    )
    assert converter(audio.astype("float32"), sample_rate=44100).shape == (
        2,
        8000,
    )


# --- modality_mask ----------------------------------------------------------


@pytest.mark.parametrize("value", [0.5, 2, -1])
def test_ALL_mask_values_must_be_0_or_1(data, attention, value):
    x, _ = data
    mask = np.ones((N, 2))
    mask[3, 1] = value
    with pytest.raises(
        ValueError,
        match=r"'modality_mask' must hold only 0 \(missing\) or 1 "
        rf"\(present\).*values \[{float(value)}\] at rows \[3\]",
    ):
        attention.predict({**x, "modality_mask": mask}, verbose=0)


def test_ALL_mask_row_with_nothing_present(data, attention):
    x, _ = data
    mask = np.ones((N, 2), "int32")
    mask[[2, 5]] = 0
    with pytest.raises(
        ValueError, match=r"rows \[2, 5\] of 'modality_mask' leave no modality"
    ):
        attention.predict({**x, "modality_mask": mask}, verbose=0)


@ONE_BACKEND
def test_mask_naming_only_an_absent_modality(data, attention):
    x, _ = data
    mask = np.tile([[0, 1]], (N, 1))  # audio only, but no audio given
    with pytest.raises(ValueError, match=r"leave no modality present"):
        attention.predict(
            {"image": x["image"], "modality_mask": mask}, verbose=0
        )


@ONE_BACKEND
def test_bool_mask_equals_int_mask(data, attention):
    x, _ = data
    mask = np.tile([[True, False]], (N, 1))
    np.testing.assert_allclose(
        attention.predict({**x, "modality_mask": mask}, verbose=0),
        attention.predict({"image": x["image"]}, verbose=0),
        atol=1e-5,
    )


@ONE_BACKEND
def test_mask_of_strings(data, attention):
    x, _ = data
    with pytest.raises(ValueError, match=r"must hold 0/1.*dtype <U1"):
        attention.predict(
            {**x, "modality_mask": np.full((N, 2), "1")}, verbose=0
        )


def test_ALL_backbone_checks_concrete_masks(attention):
    backbone = attention.backbone
    inputs = {
        "image": np.zeros((2, 28, 28, 1), "float32"),
        "audio": np.zeros((2, 8000), "float32"),
    }
    with pytest.raises(ValueError, match=r"MultimodalBackbone.*0 \(missing\)"):
        backbone.standardize_inputs(
            {**inputs, "modality_mask": np.array([[1, 0.5], [1, 1]])}
        )
    with pytest.raises(ValueError, match=r"rows \[1\].*leave no modality"):
        backbone.standardize_inputs(
            {**inputs, "modality_mask": np.array([[1, 1], [0, 0]])}
        )


# --- Labels and sample weights -----------------------------------------------


@pytest.mark.parametrize(
    "labels, message",
    [
        (lambda y: np.where(y == 3, 10, y), r"class ids in \[0, 10\).*\[10"),
        (lambda y: y - 1, r"class ids in \[0, 10\).*\[-1"),
    ],
)
def test_ALL_labels_out_of_range(data, image_only, labels, message):
    x, y = data
    with pytest.raises(ValueError, match=message):
        image_only.fit({"image": x["image"]}, labels(y), epochs=1, verbose=0)


@ONE_BACKEND
@pytest.mark.parametrize(
    "labels, message",
    [
        (lambda y: WORDS[y], r"received strings.*np.unique"),
        (lambda y: y[:-2], rf"Labels have {N - 2} rows but the inputs have"),
        (lambda y: y + 0.5, r"non-integer floats"),
        (lambda y: np.eye(10)[y], r"shape \(batch,\).*argmax"),
    ],
)
def test_bad_labels(data, image_only, labels, message):
    x, y = data
    with pytest.raises(ValueError, match=message):
        image_only.fit({"image": x["image"]}, labels(y), epochs=1, verbose=0)


@ONE_BACKEND
def test_labels_checked_by_evaluate(data, image_only):
    x, y = data
    with pytest.raises(ValueError, match=r"class ids in \[0, 10\)"):
        image_only.evaluate({"image": x["image"]}, y + 10, verbose=0)


@ONE_BACKEND
def test_sample_weight_length(data, image_only):
    x, y = data
    with pytest.raises(
        ValueError, match=rf"sample_weight must have shape \({N},\)"
    ):
        image_only.fit(
            {"image": x["image"]}, y, sample_weight=np.ones(3), verbose=0
        )


@ONE_BACKEND
def test_validation_labels_checked(data, image_only):
    x, y = data
    with pytest.raises(ValueError, match=r"class ids in \[0, 10\)"):
        image_only.fit(
            {"image": x["image"]},
            y,
            validation_data=({"image": x["image"]}, y + 10),
            verbose=0,
        )


@pytest.fixture(scope="module")
def multi_task():
    return mmzoo.models.MultimodalMultiTask(
        backbone=tiny_backbone(modalities=("image", "audio")),
        preprocessor=tiny_preprocessor(("image", "audio")),
        heads={
            "digit": {"type": "classification", "num_classes": 4},
            "value": {"type": "regression"},
        },
    )


@ONE_BACKEND
@pytest.mark.parametrize(
    "targets, message",
    [
        (
            lambda y: {"digit": y + 4, "value": y / 3.0},
            r"Targets of head 'digit' must be class ids in \[0, 4\)",
        ),
        (
            lambda y: {"digit": y, "value": np.stack([y, y], -1)},
            r"head 'value' \(regression, 1 units\) must have shape",
        ),
        (
            lambda y: {"digit": y, "value": y[:3]},
            r"head 'value'.*Received shape \(3,\)",
        ),
        (
            lambda y: {"digit": WORDS[y], "value": y},
            r"head 'digit'.*strings",
        ),
    ],
)
def test_multi_task_targets_per_head(multi_task, targets, message):
    rng = np.random.default_rng(0)
    x = {
        "image": rng.integers(0, 255, (6, 12, 12, 1)).astype("uint8"),
        "audio": rng.standard_normal((6, 1000)).astype("float32"),
    }
    y = np.array([0, 1, 2, 3, 0, 1])
    with pytest.raises(ValueError, match=message):
        multi_task.fit(x, targets(y), epochs=1, verbose=0)


# --- Containers ---------------------------------------------------------------


def test_ALL_list_instead_of_dict(data, attention):
    x, _ = data
    with pytest.raises(
        ValueError,
        match=r"takes x as a dict keyed by modality, \{'image': \.\.\., "
        r"'audio': \.\.\.\}, not a list of 2 items",
    ):
        attention.predict([x["image"], x["audio"]], verbose=0)


def test_ALL_dataframe_of_per_row_objects(data, attention, reference):
    x, _ = data
    frame = pd.DataFrame({"image": list(x["image"]), "audio": list(x["audio"])})
    np.testing.assert_allclose(
        attention.predict(frame, verbose=0), reference["attention"], atol=1e-5
    )


def test_ALL_tf_data_of_dicts(data, attention, reference):
    x, _ = data
    ds = tf.data.Dataset.from_tensor_slices(x).batch(8)
    np.testing.assert_allclose(
        attention.predict(ds, verbose=0), reference["attention"], atol=1e-5
    )


@ONE_BACKEND
def test_series_by_name(data, image_only, reference):
    x, _ = data
    series = pd.Series(list(x["image"]), name="image")
    np.testing.assert_allclose(
        image_only.predict(series, verbose=0), reference["image"], atol=1e-5
    )
    with pytest.raises(ValueError, match=r"Series named 'pixels'"):
        image_only.predict(series.rename("pixels"), verbose=0)


@ONE_BACKEND
def test_dataframe_with_unknown_column(data, attention):
    x, _ = data
    frame = pd.DataFrame({"image": list(x["image"]), "label": np.arange(N)})
    with pytest.raises(ValueError, match=r"Unknown columns: \['label'\]"):
        attention.predict(frame, verbose=0)


@ONE_BACKEND
def test_unbatched_dataset_is_refused(data, attention):
    x, _ = data
    ds = tf.data.Dataset.from_tensor_slices(x)
    with pytest.raises(ValueError, match=r"batch the dataset"):
        attention.predict(ds, verbose=0)


@ONE_BACKEND
def test_unknown_key_and_no_modality(data, attention):
    x, _ = data
    with pytest.raises(ValueError, match=r"unknown modality \['video'\]"):
        attention.predict({**x, "video": x["image"]}, verbose=0)
    with pytest.raises(ValueError, match=r"no known modality"):
        attention.predict({}, verbose=0)


@ONE_BACKEND
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t: [t[0], None, t[2]], r"'text' got None at rows \[1\]"),
        (lambda t: np.arange(len(t)), r"'text' expects strings"),
        (lambda t: [t[0], 3] + list(t[2:]), r"non-strings.*\(1, 'int'\)"),
        (lambda t: t[0], r"disagree on whether they hold a batch"),
    ],
)
def test_bad_text(data, trimodal, make, message):
    x, y = data
    text = list(WORDS[y])
    with pytest.raises(ValueError, match=message):
        trimodal.predict({**x, "text": make(text)}, verbose=0)


@ONE_BACKEND
def test_trimodal_text_as_list_equals_array(data, trimodal):
    x, y = data
    np.testing.assert_allclose(
        trimodal.predict({**x, "text": list(WORDS[y])}, verbose=0),
        trimodal.predict({**x, "text": WORDS[y]}, verbose=0),
        atol=1e-5,
    )


# --- The preprocessor as a building block -------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "av_digits_attention",
        "av_digits_image",
        "av_digits_audio",
        "fashion_mnist_cnn",
        "trimodal_digits_demo",
    ],
)
def test_ALL_preprocessor_from_preset(data, name):
    x, y = data
    preprocessor = mmzoo.models.MultimodalPreprocessor.from_preset(name)
    inputs = {"text": WORDS[y], **x}
    inputs = {m: inputs[m] for m in preprocessor.modalities}
    out = preprocessor(inputs)
    assert out["modality_mask"].shape == (N, len(preprocessor.modalities))
    if "image" in out:
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(out["image"]),
            x["image"] / 255.0,
            atol=1e-6,
        )


def test_ALL_one_example_in_one_example_out(data):
    x, _ = data
    preprocessor = mmzoo.models.MultimodalPreprocessor.from_preset(
        "av_digits_attention"
    )
    batched = preprocessor(x)
    one = preprocessor({k: v[3] for k, v in x.items()})
    assert one["image"].shape == (28, 28, 1) and one["audio"].shape == (8000,)
    for key in ("image", "audio", "modality_mask"):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(one[key]),
            keras.ops.convert_to_numpy(batched[key])[3],
        )


@ONE_BACKEND
def test_map_then_batch(data):
    x, _ = data
    preprocessor = mmzoo.models.MultimodalPreprocessor.from_preset(
        "av_digits_attention"
    )
    ds = tf.data.Dataset.from_tensor_slices(x).map(preprocessor).batch(N)
    got = next(iter(ds))
    want = preprocessor(x)
    for key in ("image", "audio", "modality_mask"):
        np.testing.assert_allclose(
            got[key].numpy(), keras.ops.convert_to_numpy(want[key])
        )


@ONE_BACKEND
def test_sequence_length_setter(data):
    x, y = data
    preprocessor = mmzoo.models.MultimodalPreprocessor.from_preset(
        "trimodal_digits_demo"
    )
    text = {"text": WORDS[y]}
    length = preprocessor.sequence_length
    assert preprocessor(text)["text"]["token_ids"].shape == (N, length)
    preprocessor.sequence_length = 5
    assert preprocessor(text)["text"]["token_ids"].shape == (N, 5)
    assert preprocessor.get_config()["sequence_length"] == 5
    with pytest.raises(ValueError, match="`sequence_length` must be"):
        preprocessor.sequence_length = 0


@ONE_BACKEND
def test_dataset_labels_out_of_range_stop_training(data, image_only):
    x, y = data
    ds = tf.data.Dataset.from_tensor_slices(({"image": x["image"]}, y + 10))
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"Labels must be class ids in \[0, 10\)",
    ):
        image_only.fit(ds.batch(8), epochs=1, verbose=0)


@ONE_BACKEND
def test_dataset_of_string_labels(data, image_only):
    x, y = data
    ds = tf.data.Dataset.from_tensor_slices(
        ({"image": x["image"]}, WORDS[y])
    )
    with pytest.raises(ValueError, match=r"the dataset holds strings"):
        image_only.fit(ds.batch(8), epochs=1, verbose=0)


@ONE_BACKEND
def test_tf_data_with_modality_mask(data, attention):
    x, _ = data
    mask = np.tile([[1, 0]], (N, 1))
    ds = tf.data.Dataset.from_tensor_slices({**x, "modality_mask": mask})
    np.testing.assert_allclose(
        attention.predict(ds.batch(8), verbose=0),
        attention.predict({"image": x["image"]}, verbose=0),
        atol=1e-5,
    )


@ONE_BACKEND
def test_dataset_batches_differing_in_modalities(data, attention):
    x, _ = data

    def batches():
        yield {"image": x["image"][:4], "audio": x["audio"][:4]}
        yield {"image": x["image"][4:8]}

    ds = tf.data.Dataset.from_generator(
        batches,
        output_signature={
            "image": tf.TensorSpec((None, 28, 28, 1), tf.uint8),
            "audio": tf.TensorSpec((None, 8000), tf.float32),
        },
    )
    with pytest.raises(
        ValueError, match=r"batches differ in which modalities.*modality_mask"
    ):
        attention.predict(ds, verbose=0)


@ONE_BACKEND
@pytest.mark.parametrize(
    "row, message",
    [
        ([0.5, 1], r"must hold only 0 \(missing\) or 1"),
        ([0, 0], r"no modality"),
    ],
)
def test_dataset_mask_values_checked_in_pipeline(
    data, attention, row, message
):
    x, _ = data
    mask = np.ones((N, 2), "float32")
    mask[5] = row
    ds = tf.data.Dataset.from_tensor_slices({**x, "modality_mask": mask})
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        attention.predict(ds.batch(8), verbose=0)

import numpy as np
import pytest
from helpers import NUM_SAMPLES
from helpers import SEQUENCE_LENGTH
from helpers import raw_batch
from helpers import tiny_preprocessor
from helpers import to_numpy

import mmzoo


def test_outputs():
    preprocessor = tiny_preprocessor()
    x, _ = raw_batch(4)
    out = to_numpy(preprocessor(x))
    assert out["text"]["token_ids"].shape == (4, SEQUENCE_LENGTH)
    assert out["text"]["token_ids"][0, 0] == 2  # [CLS]
    assert (out["text"]["padding_mask"].sum(1) == 3).all()  # CLS word SEP
    assert out["image"].shape == (4, 12, 12, 1)
    assert out["image"].dtype == np.float32 and out["image"].max() <= 1.0
    assert out["audio"].shape == (4, NUM_SAMPLES)
    assert (out["audio"][:, 900:] == 0).all()  # padded
    np.testing.assert_array_equal(out["modality_mask"], np.ones((4, 3)))


def test_missing_modality_and_explicit_mask():
    preprocessor = tiny_preprocessor()
    x, _ = raw_batch(4)
    out = to_numpy(preprocessor({"audio": x["audio"]}))
    assert set(out) == {"audio", "modality_mask"}
    np.testing.assert_array_equal(out["modality_mask"], [[0, 0, 1]] * 4)
    mask = np.array([[1, 1, 1], [1, 0, 1], [0, 1, 1], [1, 1, 0]])
    out = to_numpy(preprocessor({**x, "modality_mask": mask}))
    np.testing.assert_array_equal(out["modality_mask"], mask)
    # Long audio is trimmed.
    long = np.zeros((2, 5000), "float32")
    assert to_numpy(preprocessor({"audio": long}))["audio"].shape == (2, 1000)


def test_a_dataset_keeps_its_batch_size_through_the_preprocessor():
    import tensorflow as tf

    # keras.distribution splits a dataset across processes by the batch
    # size it reads off the mapped dataset: every output must keep it.
    x, y = raw_batch(16)
    preprocessor = tiny_preprocessor()
    for inputs in (x, {"text": x["text"], "audio": x["audio"]}):
        dataset = tf.data.Dataset.from_tensor_slices((inputs, y))
        dataset = dataset.batch(8, drop_remainder=True).map(preprocessor)
        shapes = [s.shape for s in tf.nest.flatten(dataset.element_spec)]
        assert all(shape[0] == 8 for shape in shapes), shapes


def test_labels_pass_through():
    preprocessor = tiny_preprocessor()
    x, y = raw_batch(4)
    _, labels, weights = preprocessor(x, y, np.ones(4))
    np.testing.assert_array_equal(to_numpy(labels), y)


def test_config_round_trip():
    preprocessor = tiny_preprocessor()
    config = preprocessor.get_config()
    restored = mmzoo.models.MultimodalPreprocessor.from_config(config)
    assert restored.modalities == ["text", "image", "audio"]
    assert restored.sequence_length == SEQUENCE_LENGTH


@pytest.mark.parametrize(
    "make_input, message",
    [
        (lambda x: {**x, "video": x["image"]}, "unknown modality.*video"),
        (lambda x: {}, "no known modality"),
        (lambda x: {"modality_mask": np.ones((4, 3))}, "no known modality"),
        (lambda x: x["image"], "expects a dict"),
        (
            lambda x: {"image": x["image"][0, :, :, 0]},
            "'image' expects images of shape",
        ),
        (
            lambda x: {"audio": x["audio"][:, None]},
            "'audio'.*\\(batch, samples\\)",
        ),
        (lambda x: {"text": x["text"][:, None]}, "'text' expects a 1-D batch"),
        (lambda x: {"text": np.arange(4)}, "'text' expects strings"),
        (
            lambda x: {"audio": (x["audio"] * 1000).astype("int16")},
            "'audio'.*float",
        ),
        (
            lambda x: {"image": np.array([[[["a"]]]])},
            "'image' expects uint8 or float",
        ),
        (lambda x: {**x, "audio": x["audio"][:3]}, "same batch size"),
        (
            lambda x: {"text": np.array(["one", "  ", "two", ""])},
            "empty strings at rows \\[1, 3\\]",
        ),
        (
            lambda x: {"audio": np.zeros((4, 0), "float32")},
            "'audio' got zero-length",
        ),
        (
            lambda x: {"audio": np.full((4, 10), np.nan, "float32")},
            "'audio' contains NaN",
        ),
        (
            lambda x: {**x, "modality_mask": np.ones((4, 2))},
            "modality_mask.*\\(batch, 3\\)",
        ),
    ],
)
def test_bad_input(make_input, message):
    preprocessor = tiny_preprocessor()
    x, _ = raw_batch(4)
    with pytest.raises(ValueError, match=message):
        preprocessor(make_input(x))


def test_bad_construction():
    with pytest.raises(ValueError, match="at least one"):
        mmzoo.models.MultimodalPreprocessor()
    with pytest.raises(ValueError, match="not in modalities"):
        mmzoo.models.MultimodalPreprocessor(
            audio_converter=mmzoo.layers.WaveformConverter(8000, 100),
            modalities=["image"],
        )

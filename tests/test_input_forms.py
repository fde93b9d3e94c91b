"""Keras 3's input forms in `fit`, `evaluate` and `predict` of the mmzoo
tasks on a `MultimodalBackbone`: `keras.utils.PyDataset`, Python
generators and torch `DataLoader`s (dicts, DataFrames and `tf.data` have
their own tests), raw through the preprocessor or preprocessed with
`preprocessor=None`, with modalities missing in some batches."""

import keras
import numpy as np
import pytest
from helpers import raw_batch
from helpers import tiny_classifier
from test_multimodal_multi_task import targets
from test_multimodal_multi_task import tiny_multi_task

N = 32
BATCH = 8


@pytest.fixture(scope="module")
def data():
    return raw_batch(N)


@pytest.fixture(scope="module")
def model():
    """One classifier for the module: every form feeds it batches of the
    same preprocessed structure, so its compiled steps are reused."""
    model = tiny_classifier()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model


def batches(x, y=None, leave_out=None):
    """`(x, y)` batches of 8; batch 1 without `leave_out`."""
    for i in range(N // BATCH):
        rows = slice(i * BATCH, (i + 1) * BATCH)
        bx = {k: v[rows] for k, v in x.items() if (i, k) != (1, leave_out)}
        if y is None:
            yield (bx,)
        else:
            yield bx, keras.tree.map_structure(lambda v: v[rows], y)


class Batches(keras.utils.PyDataset):
    """A `PyDataset` over `batches(...)`, counting its epoch hooks."""

    def __init__(self, x, y=None, leave_out=None):
        super().__init__()
        self.items = list(batches(x, y, leave_out))
        self.epochs_ended = 0

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]

    def on_epoch_end(self):
        self.epochs_ended += 1


def masked(x, leave_out):
    """The arrays form of `batches(x, leave_out=...)`: the left-out
    modality's rows zeroed and masked."""
    rows = slice(BATCH, 2 * BATCH)
    names = ["text", "image", "audio"]
    mask = np.ones((N, 3), "int32")
    mask[rows, names.index(leave_out)] = 0
    return {**x, "modality_mask": mask}


def test_py_dataset_fit_evaluate_predict_with_a_modality_missing(
    data, model
):
    x, y = data
    train = Batches(x, y, leave_out="audio")
    history = model.fit(train, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert train.epochs_ended >= 3  # the source's epoch hooks run
    results = model.evaluate(train, verbose=0, return_dict=True)
    assert results["accuracy"] > 0.5, results  # chance: 0.25
    got = model.predict(Batches(x, leave_out="audio"), verbose=0)
    expected = model.predict(
        masked(x, "audio"), batch_size=BATCH, verbose=0
    )
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # Batch 1 really lacked the audio: its outputs differ from full input.
    full = model.predict(x, batch_size=BATCH, verbose=0)
    assert not np.allclose(got[BATCH : 2 * BATCH], full[BATCH : 2 * BATCH])
    np.testing.assert_allclose(got[:BATCH], full[:BATCH], atol=1e-5)


def test_generator_fit_with_validation_arrays_and_predict(data, model):
    x, y = data
    history = model.fit(
        batches(x, y, leave_out="text"),
        validation_data=(x, y),
        epochs=1,
        verbose=0,
    )
    assert {"loss", "val_loss", "val_accuracy"} <= set(history.history)
    got = model.predict(batches(x), verbose=0)
    np.testing.assert_allclose(
        got, model.predict(x, batch_size=BATCH, verbose=0), atol=1e-5
    )


def test_torch_data_loader_fit_and_predict(data, model):
    torch = pytest.importorskip("torch")
    x, y = data

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return N

        def __getitem__(self, i):
            # Strings collate to a list, arrays to tensors.
            return {k: v[i] for k, v in x.items()}, int(y[i])

    loader = torch.utils.data.DataLoader(
        Rows(), batch_size=BATCH, shuffle=True
    )
    history = model.fit(loader, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    ordered = torch.utils.data.DataLoader(Rows(), batch_size=BATCH)
    np.testing.assert_allclose(
        model.predict(ordered, verbose=0),
        model.predict(x, batch_size=BATCH, verbose=0),
        atol=1e-5,
    )


# The Python-batch path with preprocessor=None: the same wrapper, one
# backend (the forms above run it on every backend).
@pytest.mark.one_backend("torch")
def test_preprocessed_batches_with_preprocessor_none(data):
    x, y = data
    model = tiny_classifier()
    preprocessor = model.preprocessor
    model.preprocessor = None
    model.compile(optimizer=keras.optimizers.Adam(1e-2))

    def preprocessed(leave_out):
        for bx, by in batches(x, y, leave_out):
            yield keras.tree.map_structure(np.asarray, preprocessor(bx)), by

    history = model.fit(preprocessed("image"), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    got = model.predict(preprocessed("image"), verbose=0)
    features = keras.tree.map_structure(np.asarray, preprocessor(x))
    features["modality_mask"] = masked(x, "image")["modality_mask"]
    np.testing.assert_allclose(
        got,
        model.predict(features, batch_size=BATCH, verbose=0),
        atol=1e-5,
    )


# The Python-batch path is the classifier's (tested on every backend above);
# what is new below is the task's own checks: one backend, torch (fastest
# with these tiny models).
@pytest.mark.one_backend("torch")
def test_multi_task_py_dataset_with_dict_targets(data):
    x, y = data
    model = tiny_multi_task()
    two = {k: x[k] for k in ("text", "image")}
    train = Batches(two, targets(y))
    history = model.fit(train, epochs=2, verbose=0)
    assert {"word_loss", "parity_loss", "value_loss"} <= set(history.history)
    outputs = model.predict(Batches(two), verbose=0)
    assert outputs["word"].shape == (N, 4)
    assert outputs["value"].shape == (N, 1)


@pytest.mark.one_backend
def test_python_batches_bad_input(data):
    x, y = data
    model = tiny_classifier()
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="do not pass `y`"):
        model.fit(Batches(x, y), y, verbose=0)
    with pytest.raises(ValueError, match="do not pass `batch_size`"):
        model.predict(batches(x), batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="takes x as a dict keyed by"):
        model.predict(((list(x.values()),) for _ in range(1)), verbose=0)
    with pytest.raises(ValueError, match=r"class ids in \[0, 4\)"):
        model.fit(Batches(x, y + 4), verbose=0)


# --- WhisperTranscriptClassifier: batches of waveforms -----------------------


@pytest.fixture(scope="module")
def whisper_classifier():
    from test_whisper_transcript_classifier import TRANSCRIPTS
    from test_whisper_transcript_classifier import tiny_backbone
    from test_whisper_transcript_classifier import tiny_preprocessor

    from mmzoo.models import WhisperTranscriptClassifier

    model = WhisperTranscriptClassifier(
        tiny_backbone(), tiny_preprocessor(), TRANSCRIPTS, hidden_dim=4
    )
    model.compile()
    return model


@pytest.mark.one_backend("torch")
def test_whisper_classifier_py_dataset_and_generator_at_8khz(
    whisper_classifier,
):
    from scipy.signal import resample_poly
    from test_whisper_transcript_classifier import waveforms

    model = whisper_classifier
    audio_8k = resample_poly(waveforms(batch=4), 1, 2, axis=-1)
    audio_8k = audio_8k.astype("float32")
    labels = np.array([0, 1, 1, 0])

    class Clips(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            rows = slice(2 * i, 2 * i + 2)
            # Lists of clips of different lengths, as arrays take them.
            clips = [
                clip[: 3000 + 500 * j]
                for j, clip in enumerate(audio_8k[rows])
            ]
            return clips, labels[rows]

    history = model.fit(Clips(), sample_rate=8000, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    clips = [c for i in range(2) for c in Clips()[i][0]]
    expected = model.predict(clips, sample_rate=8000, batch_size=2, verbose=0)
    got = model.predict(
        ((Clips()[i][0],) for i in range(2)), sample_rate=8000, verbose=0
    )
    np.testing.assert_allclose(got, expected, atol=1e-5)
    loss, _ = model.evaluate(Clips(), sample_rate=8000, verbose=0)
    on_arrays, _ = model.evaluate(
        clips, labels, sample_rate=8000, batch_size=2, verbose=0
    )
    assert loss == pytest.approx(on_arrays, abs=1e-5)


# --- WhisperAudioToText: batches of (audio, transcripts) ---------------------


@pytest.mark.one_backend("torch")
def test_whisper_audio_to_text_fits_on_a_generator():
    from test_whisper_audio_to_text import tiny_task
    from test_whisper_audio_to_text import waveforms

    task = tiny_task()
    task.compile(optimizer=keras.optimizers.Adam(3e-2))
    audio = waveforms(4)
    texts = np.array([" yes", " no", " oui", " non"])

    def pairs(epochs):
        for _ in range(epochs):
            for i in range(2):
                yield audio[2 * i : 2 * i + 2], texts[2 * i : 2 * i + 2]

    history = task.fit(pairs(3), epochs=3, steps_per_epoch=2, verbose=0)
    loss = history.history["loss"]
    assert loss[-1] < loss[0], loss
    on_batches = task.evaluate(pairs(1), verbose=0)
    on_arrays = task.evaluate(audio, texts, batch_size=2, verbose=0)
    np.testing.assert_allclose(on_batches, on_arrays, rtol=1e-5)

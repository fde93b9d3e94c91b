"""The catalogue of presets shipped with mmzoo.

Every folder of the top-level `presets/` directory that holds a keras-hub
preset (a `config.json`) is registered by its folder name when `mmzoo` is
imported, so `MultimodalClassifier.from_preset("<folder name>")` works offline.
In a built wheel the folder ships as `mmzoo/_presets/`.
"""

import json
import os
import pathlib

from keras_hub.src.utils import preset_utils

_REGISTERED = {}


def presets_root():
    """The directory holding mmzoo's shipped presets."""
    package_dir = pathlib.Path(__file__).resolve().parent
    wheel_dir = package_dir / "_presets"
    if wheel_dir.is_dir():
        return wheel_dir
    return package_dir.parent / "presets"


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


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


def list_presets():
    """List mmzoo's registered presets.

    Returns:
        A dict `{preset_name: metadata}`, where `metadata` is the preset's
        `metadata.json` (its recipe, data, licence, inputs and measured
        metrics).

    Example:
    ```python
    for name, metadata in mmzoo.list_presets().items():
        print(name, metadata.get("description"))
    ```
    """
    return {
        name: dict(entry["metadata"]) for name, entry in _REGISTERED.items()
    }


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
    versions, parameter count, date); mmzoo adds where the weights came from
    and what they measure. The file is replaced atomically.
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

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

from keras_hub.src.utils import preset_utils

from mmzoo.utils import preset_files
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

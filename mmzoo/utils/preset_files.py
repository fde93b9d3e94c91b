"""Preset folders written atomically and checked before they are loaded.

Writing: `writing(preset_dir)` gives `save_to_preset` a temporary sibling
folder (same parent, so the final rename stays on one file system), and
swaps it in for `preset_dir` once everything is written: a process killed
mid-save leaves the previous preset whole, and the folder ends up holding
exactly the new preset's files. Saves nested inside it (a task saving its
backbone and its preprocessor) write into the same temporary folder and do
not swap on their own.

Checking: every save records the SHA-256 of each weight file (and asset
file) in `metadata.json` under `"file_sha256"`; `check_preset_files` checks
them, and that each JSON file parses and each weights file opens, before a
local preset is loaded, and names the file when one is wrong.

`python -m mmzoo.presets --stamp-digests DIR` records the digests of a
preset folder's current files (for a preset whose files were replaced by
hand, e.g. retrained weights copied in).
"""

import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import os
import secrets
import shutil
import threading
import warnings
import zipfile

METADATA_FILE = "metadata.json"
DIGESTS_FIELD = "file_sha256"
SHARDED_WEIGHTS_CONFIG_FILE = "model.weights.json"
ASSET_DIR = "assets"
# Files a backbone or task save writes; a preprocessor saved on its own
# keeps them and replaces the rest.
_MODEL_FILES = (
    "config.json",
    METADATA_FILE,
    "task.json",
    "task.weights.h5",
    "model.weights.h5",
    SHARDED_WEIGHTS_CONFIG_FILE,
    "model.delta.npz",
)
_SAVING = ".saving-"
_REPLACED = ".replaced-"
_REMEDY = (
    "Re-save the preset with `save_to_preset` (or re-run its recipe); for a "
    "preset shipped with mmzoo, reinstall mmzoo. If you replaced the file on "
    "purpose, record its new digest with `python -m mmzoo.presets "
    "--stamp-digests {directory}`."
)

_active = set()  # temporary folders being written, as real paths
_lock = threading.Lock()
_warned_undigested = set()


# === Writing ===


def _sibling(target, kind):
    """A new, empty, uniquely named folder beside `target`."""
    parent, name = os.path.split(target)
    while True:
        path = os.path.join(
            parent, f".{name}{kind}{os.getpid()}-{secrets.token_hex(4)}"
        )
        try:
            os.mkdir(path)  # mode 0o777 minus the umask, like the target's
            return path
        except FileExistsError:
            continue


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_leftovers(target):
    """Remove temporary siblings of `target` left by killed saves.

    Only folders named after a process that no longer runs are removed, so
    a save in progress in another process is left alone.
    """
    parent, name = os.path.split(target)
    for entry in os.listdir(parent):
        for kind in (_SAVING, _REPLACED):
            prefix = f".{name}{kind}"
            if not entry.startswith(prefix):
                continue
            pid = entry[len(prefix) :].split("-")[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _libc_renameat2():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    return function


_renameat2 = _libc_renameat2()
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a, b):
    """Swap two directories in one atomic step; False where unsupported."""
    if _renameat2 is None:
        return False
    result = _renameat2(
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE
    )
    return result == 0


def _fsync_tree(directory):
    """Flush the files of `directory` to disk before they replace a preset."""
    for root, _, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _swap_in(new, target):
    """Put folder `new` at `target`, replacing any folder there."""
    if not os.path.exists(target):
        os.rename(new, target)
        return
    if _exchange(new, target):
        # `new` now holds the previous preset.
        shutil.rmtree(new, ignore_errors=True)
        return
    # Without an atomic exchange (not Linux, or a file system without it)
    # the old folder is renamed away first: a kill between the two renames
    # leaves it beside the target as `.<name>.replaced-<pid>-<hex>`.
    old = _sibling(target, _REPLACED)
    os.rmdir(old)
    os.rename(target, old)
    os.rename(new, target)
    shutil.rmtree(old, ignore_errors=True)


def _copy_kept_files(source, destination):
    """Copy the files a preprocessor save keeps (see `_MODEL_FILES`)."""
    for name in os.listdir(source):
        path = os.path.join(source, name)
        if os.path.isfile(path) and (
            name in _MODEL_FILES
            or (name.startswith("model_") and name.endswith(".weights.h5"))
        ):
            shutil.copy2(path, os.path.join(destination, name))


@contextlib.contextmanager
def writing(preset_dir, replace=True):
    """Write a preset folder atomically.

    Yields the folder to write into: a new temporary sibling of
    `preset_dir`, or, for a save nested in another one, the folder that
    save is writing. On leaving the outermost `with`, the digests of the
    weight and asset files are recorded in `metadata.json` and the folder
    is swapped in for `preset_dir`. On an error, `preset_dir` is left as it
    was.

    Args:
        preset_dir: the preset folder to (re)write.
        replace: `True` (backbones and tasks): the folder ends up holding
            only the files written. `False` (a preprocessor saved on its
            own): the model files already there (`config.json`,
            `metadata.json`, `task.json` and the weights) are kept, the
            preprocessor's files replaced.
    """
    preset_dir = os.fspath(preset_dir)
    target = os.path.realpath(preset_dir)
    with _lock:
        nested = target in _active
    if nested:
        yield preset_dir
        return
    if os.path.exists(target) and not os.path.isdir(target):
        raise ValueError(
            f"Cannot save a preset to {preset_dir}: it is a file, expected "
            "a directory (or a path that does not exist yet)."
        )
    os.makedirs(os.path.dirname(target), exist_ok=True)
    _remove_leftovers(target)
    temporary = _sibling(target, _SAVING)
    with _lock:
        _active.add(temporary)
    try:
        kept = {}
        if not replace and os.path.isdir(target):
            _copy_kept_files(target, temporary)
            kept = _recorded_digests(target)
        yield temporary
        _record_digests(temporary, kept)
        _fsync_tree(temporary)
        _swap_in(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    finally:
        with _lock:
            _active.discard(temporary)


# === Digests ===


def _is_digested(relative_path):
    """Whether a preset file (path relative to the folder, '/'-separated)
    has its digest recorded: weight files and asset files."""
    return (
        relative_path.endswith((".h5", ".npz"))
        or relative_path == SHARDED_WEIGHTS_CONFIG_FILE
        or relative_path.startswith(ASSET_DIR + "/")
    )


def _files(directory):
    """The files of a preset folder, relative '/'-separated paths, sorted."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in files:
            path = os.path.relpath(os.path.join(root, name), directory)
            found.append(path.replace(os.sep, "/"))
    return sorted(found)


def sha256(path):
    """The SHA-256 of a file, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(directory):
    """`{relative path: sha256 hex}` for the weight and asset files of a
    preset folder."""
    return {
        name: sha256(os.path.join(directory, name))
        for name in _files(directory)
        if _is_digested(name)
    }


def read_json(directory, name):
    """Read a preset's JSON file; a missing or malformed one is a clear
    error naming the file and the preset."""
    path = os.path.join(directory, name)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{name} is missing from the preset {directory}. "
            + _REMEDY.format(directory=directory)
        ) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(
            f"{name} of the preset {directory} is not valid JSON ({e}). "
            + _REMEDY.format(directory=directory)
        ) from e


def _read_metadata(directory):
    path = os.path.join(directory, METADATA_FILE)
    if not os.path.exists(path):
        return None
    metadata = read_json(directory, METADATA_FILE)
    if not isinstance(metadata, dict):
        raise ValueError(
            f"{METADATA_FILE} of the preset {directory} holds a "
            f"{type(metadata).__name__}; expected a JSON object. "
            + _REMEDY.format(directory=directory)
        )
    return metadata


def _recorded_digests(directory):
    metadata = _read_metadata(directory) or {}
    digests = metadata.get(DIGESTS_FIELD)
    if digests is None:
        return {}
    if not isinstance(digests, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in digests.items()
    ):
        raise ValueError(
            f'"{DIGESTS_FIELD}" in {METADATA_FILE} of the preset {directory} '
            "must map file names to SHA-256 hex strings; it holds "
            f"{digests!r:.200}. " + _REMEDY.format(directory=directory)
        )
    return digests


def _write_metadata(directory, metadata):
    path = os.path.join(directory, METADATA_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=4, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def _record_digests(directory, kept):
    """Record the digests of a just-written folder in its metadata.

    Files copied from the previous preset (`kept`: their recorded digests)
    keep the digest recorded when they were written, so a copy does not
    bless a damaged file; files written by this save get fresh digests.
    """
    digests = file_digests(directory)
    for name in digests:
        if name in kept:
            digests[name] = kept[name]
    metadata = _read_metadata(directory)
    if metadata is None:
        if not digests:
            return
        metadata = {}
    metadata[DIGESTS_FIELD] = digests
    _write_metadata(directory, metadata)


def stamp_digests(preset_dir):
    """Record the SHA-256 of a preset folder's weight and asset files.

    Run it after replacing a preset's files by hand (e.g. retrained weights
    copied in); `save_to_preset` records them itself. Only `metadata.json`
    changes (its `"file_sha256"` field, replaced whole).

    Returns:
        The digests recorded, `{relative path: sha256 hex}`.
    """
    preset_dir = os.fspath(preset_dir)
    if not os.path.isfile(os.path.join(preset_dir, "config.json")):
        raise FileNotFoundError(
            f"{preset_dir} is not a preset folder: it has no config.json."
        )
    metadata = _read_metadata(preset_dir) or {}
    metadata[DIGESTS_FIELD] = file_digests(preset_dir)
    _write_metadata(preset_dir, metadata)
    return metadata[DIGESTS_FIELD]


# === Checking ===


def _check_h5(directory, name):
    import h5py

    try:
        with h5py.File(os.path.join(directory, name), "r"):
            pass
    except OSError as e:
        raise ValueError(
            f"{name} of the preset {directory} is not a readable HDF5 weights "
            f"file (truncated or damaged: {e}). "
            + _REMEDY.format(directory=directory)
        ) from e


def _check_npz(directory, name):
    try:
        with zipfile.ZipFile(os.path.join(directory, name)) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(
            f"{name} of the preset {directory} is not a readable .npz weights "
            f"file (truncated or damaged: {e}). "
            + _REMEDY.format(directory=directory)
        ) from e
    if bad is not None:
        raise ValueError(
            f"{name} of the preset {directory} is damaged: its member {bad} "
            "fails its CRC check. " + _REMEDY.format(directory=directory)
        )


def check_preset_files(directory, check_weights=True):
    """Check a local preset folder before it is loaded.

    Every top-level JSON file must parse; each file whose SHA-256 is
    recorded in `metadata.json` must exist and match it; weight files
    without a recorded digest (presets saved before mmzoo recorded them)
    must at least open. Each failure raises an error naming the file, the
    preset and the remedy.

    Args:
        directory: the preset folder.
        check_weights: `False` when the weights will not be loaded (e.g.
            a preprocessor alone): only the JSON and asset files are
            checked.
    """
    directory = os.fspath(directory)
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json") and os.path.isfile(
            os.path.join(directory, name)
        ):
            read_json(directory, name)
    digests = _recorded_digests(directory)
    if not check_weights:
        digests = {
            name: digest
            for name, digest in digests.items()
            if name.startswith(ASSET_DIR + "/")
        }
    for name, expected in sorted(digests.items()):
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{name} is missing from the preset {directory}, whose "
                f"{METADATA_FILE} records it. "
                + _REMEDY.format(directory=directory)
            )
        actual = sha256(path)
        if actual != expected.lower():
            raise ValueError(
                f"{name} of the preset {directory} is not the file saved with "
                f"it: its SHA-256 is {actual}, {METADATA_FILE} records "
                f"{expected}. It was changed, damaged or replaced (e.g. by "
                "another preset's file) since the preset was saved. "
                + _REMEDY.format(directory=directory)
            )
    if not check_weights:
        return
    unrecorded = [
        name
        for name in _files(directory)
        if _is_digested(name) and name not in digests
    ]
    for name in unrecorded:
        if name.endswith(".h5"):
            _check_h5(directory, name)
        elif name.endswith(".npz"):
            _check_npz(directory, name)
    weights = [n for n in unrecorded if n.endswith((".h5", ".npz"))]
    if weights and not digests and directory not in _warned_undigested:
        _warned_undigested.add(directory)
        warnings.warn(
            f"The preset {directory} records no file digests (saved before "
            "mmzoo recorded them), so its weights cannot be checked; "
            "re-save it, or run `python -m mmzoo.presets --stamp-digests "
            f"{directory}`, to record them.",
            stacklevel=3,
        )

"""Where mmzoo caches files, and writing them atomically."""

import hashlib
import json
import os
import tempfile
import warnings

import numpy as np

CACHE_ENV = "MMZOO_CACHE_DIR"
# The key of the JSON config in a `cached_conversion` file.
_CONFIG_KEY = "__config__"


def cache_dir(kind, cache_dir=None):
    """The directory of mmzoo's cached `kind` files (`"datasets"`, ...).

    `cache_dir` if given, else the environment variable `MMZOO_CACHE_DIR`,
    else `~/.keras/<kind>/mmzoo` (next to Keras' own caches).
    """
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or os.path.join(
            os.path.expanduser("~"), ".keras", kind, "mmzoo"
        )
    return os.path.expanduser(os.fspath(cache_dir))


def write_npz_atomic(path, **arrays):
    """Writes an `.npz` atomically: a temporary file, then `os.replace`.

    A crash or an interrupt never leaves a half-written file at `path`.
    """
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(
        dir=directory,
        prefix=".tmp-" + os.path.basename(path) + "-",
        suffix=".npz",
    )
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o644)  # mkstemp makes it 0600
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.remove(tmp_path)
        except OSError:
            pass
        raise


def write_npz_or_warn(path, what, **arrays):
    """`write_npz_atomic`, turning a failed write into a warning.

    A loader that cannot write its cache (a full disk, a read-only
    directory) still returns the data it built; `what` names the set in the
    warning (e.g. `"spoken-digits"`).
    """
    try:
        write_npz_atomic(path, **arrays)
    except OSError as e:
        warnings.warn(
            f"Could not write the {what} cache file {path!r} ({e}); the set "
            "will be built again next time.",
            stacklevel=3,
        )


def file_key(paths):
    """Names, sizes and modification times of `paths`: a cache key part
    that changes when a package reinstalls other files."""
    return [
        (os.path.basename(p), os.stat(p).st_size, os.stat(p).st_mtime_ns)
        for p in paths
    ]


def cached_conversion(name, key, convert):
    """Weights converted once by `convert()`, then read from a cache.

    The result is cached as one `.npz` under `cache_dir("models")` named
    after `name` and a digest of `key` (a JSON-able description of the
    source: package versions, `file_key` of its files, a conversion
    version), written atomically. An unreadable cache file is converted
    again, with a warning.

    Args:
        name: the weights' name, e.g. `"whisper_base_multi"`.
        key: JSON-able; a new value means a new conversion.
        convert: callable returning `(config, {key: array})`, `config`
            JSON-able.

    Returns:
        `(config, {key: array})`.
    """
    digest = hashlib.sha256(
        json.dumps({"name": name, **key}, sort_keys=True).encode()
    ).hexdigest()[:16]
    path = os.path.join(cache_dir("models"), f"{name}-keras-{digest}.npz")
    if os.path.exists(path):
        try:
            with np.load(path, allow_pickle=False) as data:
                config = json.loads(str(data[_CONFIG_KEY]))
                arrays = {k: data[k] for k in data.files if k != _CONFIG_KEY}
            return config, arrays
        except Exception as e:  # noqa: BLE001 - any unreadable cache is rebuilt
            warnings.warn(
                f"The converted-weights cache {path!r} is corrupt ({e}); "
                "converting the package again.",
                stacklevel=3,
            )
    print(f"Converting the '{name}' weights once; caching them at {path}")
    config, arrays = convert()
    write_npz_atomic(
        path, **{_CONFIG_KEY: np.array(json.dumps(config))}, **arrays
    )
    return config, arrays


"""Where mmzoo caches files, and writing them atomically."""

import os
import tempfile
import warnings

import numpy as np

CACHE_ENV = "MMZOO_CACHE_DIR"


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

"""Amazon fine-food reviews: `small_fine_foods` of the R package modeldata."""

import functools
import gzip
import lzma
import os
import struct
import warnings
import zlib

import numpy as np

FINE_FOODS_CLASSES = ("other", "great")
SPLITS = {"training_data": 4000, "testing_data": 1000}
_DEFAULT_DIRS = (
    "/usr/lib/R/site-library/modeldata/data",
    "/usr/lib/R/library/modeldata/data",
    "/usr/local/lib/R/site-library/modeldata/data",
)
_DIR_ENV = "MMZOO_MODELDATA_DIR"
_INSTALL_HINT = (
    "Install the Debian package r-cran-modeldata (`apt-get install "
    "r-cran-modeldata`), or pass `path=` the `data` directory of an "
    f"installed modeldata R package (or set {_DIR_ENV})."
)


def load_fine_foods(path=None):
    """Loads the Amazon fine-food reviews of R's `modeldata` package.

    `small_fine_foods` is a sample of the Amazon fine-food reviews (McAuley
    and Leskovec, 2013) labelled by score: "great" (5 stars) or "other". It
    ships split: 4,000 training and 1,000 test reviews. The R data files are
    read with the PyPI package `rdata`; R itself is not needed. Reading takes
    about half a second (plus importing `rdata`), so nothing is cached on
    disk; the parsed arrays are kept in memory for later calls.

    Args:
        path: optional directory holding modeldata's `Rdata.rdb` and
            `Rdata.rdx` (the package's `data` folder, or the package folder).
            Defaults to the environment variable `MMZOO_MODELDATA_DIR`, else
            where Debian's `r-cran-modeldata` installs them.

    Returns:
        `((train_texts, train_labels), (test_texts, test_labels))`. Texts are
        object arrays of Python strings `(n,)` (a fixed-width unicode array
        would pad every review to the longest, 8,055 characters: ~80 MB);
        labels `int32` `(n,)`, 1 for "great" and 0 for "other"
        (`FINE_FOODS_CLASSES[label]`). Rows keep the data set's order. The
        arrays are fresh copies.

    Raises:
        FileNotFoundError: when the data files are not found.
        ImportError: when `rdata` is not installed.
        ValueError: when the files are corrupt or not the expected data.

    Example:
    ```python
    (x_train, y_train), (x_test, y_test) = mmzoo.datasets.load_fine_foods()
    x_train.shape, y_train.mean()  # ((4000,), 0.65)
    ```
    """
    directory = _find_directory(path)
    splits = _load(directory)
    return tuple((t.copy(), y.copy()) for t, y in splits)


def _find_directory(path):
    candidates = [path] if path is not None else []
    if path is None:
        if os.environ.get(_DIR_ENV):
            candidates.append(os.environ[_DIR_ENV])
        candidates.extend(_DEFAULT_DIRS)
    for candidate in candidates:
        candidate = os.fspath(candidate)
        for directory in (candidate, os.path.join(candidate, "data")):
            if os.path.isfile(os.path.join(directory, "Rdata.rdx")):
                return os.path.realpath(directory)
    raise FileNotFoundError(
        "The fine-food reviews (R package modeldata, Rdata.rdb/Rdata.rdx) "
        f"were not found in {candidates}. {_INSTALL_HINT}"
    )


def _rdata():
    try:
        import rdata
    except ImportError as e:
        raise ImportError(
            "Reading the fine-food reviews needs the `rdata` package: "
            "`pip install rdata` (or `pip install mmzoo[data]`)."
        ) from e
    return rdata


def _parse(rdata, raw):
    with warnings.catch_warnings():
        # rdata warns that a lazy-load chunk has no RDS header; it is one.
        warnings.simplefilter("ignore")
        return rdata.conversion.convert(rdata.parser.parse_data(raw))


def _decompress_chunk(chunk):
    """One object of an R lazy-load database: length, type, payload."""
    (length,) = struct.unpack(">I", chunk[:4])
    kind, payload = chunk[4:5], chunk[5:]
    if kind == b"Z":  # xz: a raw LZMA2 stream, R's preset 6 | extreme
        filters = [{"id": lzma.FILTER_LZMA2, "preset": 6 | lzma.PRESET_EXTREME}]
        raw = lzma.LZMADecompressor(
            format=lzma.FORMAT_RAW, filters=filters
        ).decompress(payload)
    elif kind == b"2":
        import bz2

        raw = bz2.decompress(payload)
    elif kind == b"0":
        raw = payload
    else:  # R's default: zlib, with no type byte
        raw = zlib.decompress(chunk[4:])
    if len(raw) != length:
        raise ValueError(
            f"Expected {length} bytes after decompression, got {len(raw)}."
        )
    return raw


@functools.lru_cache(maxsize=2)
def _load(directory):
    rdata = _rdata()
    try:
        with open(os.path.join(directory, "Rdata.rdx"), "rb") as f:
            index = _parse(rdata, gzip.decompress(f.read()))
        variables = index["variables"]
        with open(os.path.join(directory, "Rdata.rdb"), "rb") as f:
            database = f.read()
        splits = []
        for name, expected in SPLITS.items():
            offset, size = (int(v) for v in variables[name])
            frame = _parse(
                rdata, _decompress_chunk(database[offset : offset + size])
            )
            splits.append(_to_arrays(frame, name, expected))
    except ImportError:
        raise  # e.g. pandas, which rdata's conversion needs
    except Exception as e:  # noqa: BLE001
        # Corrupt bytes make rdata's parser fail in many ways (IndexError,
        # NotImplementedError, AssertionError, TypeError, ...): all of them
        # mean the files are not the expected data.
        raise ValueError(
            f"The modeldata files in {directory} are corrupt or could not be "
            f"read as the fine-food reviews ({type(e).__name__}: {e}). "
            "Reinstall r-cran-modeldata."
        ) from e
    return tuple(splits)


def _to_arrays(frame, name, expected):
    if not {"review", "score"} <= set(getattr(frame, "columns", ())):
        raise ValueError(f"'{name}' has no 'review' and 'score' columns.")
    texts = np.array([str(t) for t in frame["review"]], dtype=object)
    scores = [str(s) for s in frame["score"]]
    unknown = sorted(set(scores) - set(FINE_FOODS_CLASSES))
    if unknown:
        raise ValueError(f"'{name}' has unexpected scores {unknown}.")
    labels = np.array(
        [FINE_FOODS_CLASSES.index(s) for s in scores], dtype="int32"
    )
    if len(texts) != expected:
        raise ValueError(
            f"'{name}' has {len(texts)} reviews; expected {expected}."
        )
    return texts, labels

"""Reads CTranslate2 `model.bin` files with numpy.

The format (CTranslate2's `ModelSpec._serialize`, binary version 6): a
little-endian header — `uint32` binary version, the spec name as a string,
`uint32` revision, `uint32` variable count — then per variable its name, a
`uint8` rank, `rank × uint32` dims, a `uint8` dtype id (float32, int8, int16,
int32, float16, bfloat16), a `uint32` byte count and the raw bytes; then a
`uint32` alias count and `(alias, target)` name pairs. A string is a `uint16`
length (terminating NUL included) and that many bytes.
"""

import os
import struct

import numpy as np

_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


class _Stream:
    """Reads consecutive bytes across files (a model split in parts)."""

    def __init__(self, paths):
        self.files = [open(p, "rb") for p in paths]
        self.index = 0
        self.paths = paths

    def read(self, size):
        chunks = []
        while size > 0 and self.index < len(self.files):
            chunk = self.files[self.index].read(size)
            if len(chunk) < size:
                self.index += 1
            chunks.append(chunk)
            size -= len(chunk)
        if size > 0:
            raise ValueError(
                f"{self.paths} end before the model does: the file is "
                "truncated or a part is missing."
            )
        return b"".join(chunks)

    def at_end(self):
        while self.index < len(self.files):
            if self.files[self.index].read(1):
                return False
            self.index += 1
        return True

    def close(self):
        for f in self.files:
            f.close()


def _unpack(stream, fmt):
    return struct.unpack("<" + fmt, stream.read(struct.calcsize(fmt)))[0]


def _string(stream):
    length = _unpack(stream, "H")
    raw = stream.read(length)
    if not raw.endswith(b"\x00"):
        raise ValueError("Malformed string in a CTranslate2 model file.")
    return raw[:-1].decode("utf-8")


def _to_numpy(raw, dtype_name, shape):
    if dtype_name == "bfloat16":
        # bfloat16 is the top half of a float32.
        bits = np.frombuffer(raw, "<u2").astype("<u4") << 16
        return bits.view("<f4").reshape(shape)
    return np.frombuffer(raw, "<" + np.dtype(dtype_name).str[1:]).reshape(shape)


def read_ctranslate2_model(paths):
    """Reads a CTranslate2 `model.bin`, possibly split in parts.

    Args:
        paths: a path, or a list of paths whose concatenation is the file.

    Returns:
        A dict with `"spec"` (the spec name, e.g. `"WhisperSpec"`),
        `"revision"`, `"binary_version"` and `"variables"`, `{name:
        numpy array}`, aliases resolved to their targets' arrays.

    Raises:
        ValueError: for a truncated or malformed file, or an unsupported
            binary version or dtype.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    stream = _Stream([os.fspath(p) for p in paths])
    try:
        version = _unpack(stream, "I")
        if not 3 <= version <= 6:
            raise ValueError(
                f"Unsupported CTranslate2 binary version {version} (this "
                "reader knows versions 3 to 6)."
            )
        spec = _string(stream)
        revision = _unpack(stream, "I")
        count = _unpack(stream, "I")
        variables = {}
        for _ in range(count):
            name = _string(stream)
            rank = _unpack(stream, "B")
            shape = tuple(_unpack(stream, "I") for _ in range(rank))
            type_id = _unpack(stream, "B")
            if type_id >= len(_DTYPES):
                raise ValueError(f"Unknown dtype id {type_id} for {name}.")
            num_bytes = _unpack(stream, "I")
            dtype_name = _DTYPES[type_id]
            itemsize = (
                2 if dtype_name == "bfloat16" else np.dtype(dtype_name).itemsize
            )
            if num_bytes != int(np.prod(shape, dtype=np.int64)) * itemsize:
                raise ValueError(
                    f"Variable {name}: {num_bytes} bytes for shape {shape} "
                    f"of {dtype_name}."
                )
            variables[name] = _to_numpy(
                stream.read(num_bytes), dtype_name, shape
            )
        num_aliases = _unpack(stream, "I")
        for _ in range(num_aliases):
            alias, target = _string(stream), _string(stream)
            variables[alias] = variables[target]
        if not stream.at_end():
            raise ValueError("Unexpected bytes after the model's last alias.")
    except struct.error as e:
        raise ValueError(f"Truncated CTranslate2 model file: {e}") from e
    finally:
        stream.close()
    return {
        "spec": spec,
        "revision": revision,
        "binary_version": version,
        "variables": variables,
    }

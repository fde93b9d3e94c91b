import struct

import keras
import numpy as np
import pytest

from helpers import ct2_string as _string
from helpers import write_ctranslate2_model as write_model

from mmzoo.models.whisper.ctranslate2_reader import read_ctranslate2_model

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="numpy only, backend-independent; run once",
)


def test_reads_variables_and_aliases(tmp_path):
    variables = {
        "encoder/conv1/weight": np.arange(24, dtype="float16").reshape(4, 3, 2),
        "encoder/scale": np.array(3, dtype="int8"),
        "decoder/ids": np.array([1, 2, 3], dtype="int32"),
        "ffn/w": np.linspace(-1, 1, 6, dtype="float32").reshape(2, 3),
    }
    write_model(tmp_path / "model.bin", variables, [("decoder/w", "ffn/w")])
    model = read_ctranslate2_model(tmp_path / "model.bin")
    assert model["spec"] == "TestSpec" and model["revision"] == 2
    for name, value in variables.items():
        np.testing.assert_array_equal(model["variables"][name], value)
        assert model["variables"][name].dtype == value.dtype
    np.testing.assert_array_equal(
        model["variables"]["decoder/w"], variables["ffn/w"]
    )


def test_reads_a_model_split_in_parts(tmp_path):
    variables = {"w": np.arange(100, dtype="float32")}
    data = write_model(tmp_path / "whole.bin", variables)
    (tmp_path / "part1").write_bytes(data[:137])
    (tmp_path / "part2").write_bytes(data[137:])
    model = read_ctranslate2_model([tmp_path / "part1", tmp_path / "part2"])
    np.testing.assert_array_equal(model["variables"]["w"], variables["w"])


def test_bfloat16_is_read_as_float32(tmp_path):
    values = np.array([1.5, -2.0, 0.15625], dtype="float32")
    bits = (values.view("<u4") >> 16).astype("<u2")
    out = struct.pack("<I", 6) + _string("S") + struct.pack("<II", 1, 1)
    out += _string("b") + struct.pack("<B", 1) + struct.pack("<I", 3)
    out += struct.pack("<B", 5) + struct.pack("<I", 6) + bits.tobytes()
    out += struct.pack("<I", 0)
    (tmp_path / "model.bin").write_bytes(out)
    model = read_ctranslate2_model(tmp_path / "model.bin")
    np.testing.assert_array_equal(model["variables"]["b"], values)


def test_bad_files_raise_value_error(tmp_path):
    variables = {"w": np.arange(10, dtype="float32")}
    data = write_model(tmp_path / "model.bin", variables)
    (tmp_path / "short.bin").write_bytes(data[:-20])
    with pytest.raises(ValueError, match="truncated|Truncated"):
        read_ctranslate2_model(tmp_path / "short.bin")
    write_model(tmp_path / "extra.bin", variables, extra=b"junk")
    with pytest.raises(ValueError, match="Unexpected bytes"):
        read_ctranslate2_model(tmp_path / "extra.bin")
    write_model(tmp_path / "old.bin", variables, version=1)
    with pytest.raises(ValueError, match="binary version 1"):
        read_ctranslate2_model(tmp_path / "old.bin")

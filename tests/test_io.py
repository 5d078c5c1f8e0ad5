"""Tests for minigrad.io: safetensors written and read with numpy alone.

The format: u64 little-endian header length N, N bytes of JSON header, then data.
Every corrupt file must give a SafetensorsError naming the file, never a random crash.
"""
import json
import os
import pickle
import shutil
import tempfile
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from minigrad import io as mgio
from minigrad.io import SafetensorsError

FAST = settings(max_examples=50, deadline=None)

WRITABLE_DTYPES = ["float64", "float32", "float16", "int64", "int32", "int16", "int8",
                   "uint64", "uint32", "uint16", "uint8", "bool"]
FORMAT_NAMES = {"float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64",
                "int32": "I32", "int16": "I16", "int8": "I8", "uint64": "U64", "uint32": "U32",
                "uint16": "U16", "uint8": "U8", "bool": "BOOL"}


# ----------------------------------------------------------------------------- helpers

def write_raw(path, header, data=b"", header_length=None):
    """Write a hand-made file: header (a dict, or raw bytes) padded to 8, then data."""
    header_bytes = header if isinstance(header, bytes) else json.dumps(header).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    length = len(header_bytes) if header_length is None else header_length
    with open(path, "wb") as file:
        file.write(length.to_bytes(8, "little") + header_bytes + data)
    return path


def parse_by_hand(path):
    """Split a file into (header length, header dict, data bytes) following the documented layout."""
    blob = open(path, "rb").read()
    header_length = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + header_length].decode("utf-8"))
    return header_length, header, blob[8 + header_length:]


def load_or_error(blob):
    """Write bytes to a fresh file and load it: return the arrays, or the SafetensorsError.
    Any other exception escapes and fails the test."""
    directory = tempfile.mkdtemp()
    try:
        path = os.path.join(directory, "fuzzed_model.safetensors")
        with open(path, "wb") as file:
            file.write(blob)
        try:
            arrays = mgio.load_arrays(path)
        except SafetensorsError as error:
            assert "fuzzed_model.safetensors" in str(error)
            return error
        for array in arrays.values():
            assert isinstance(array, np.ndarray)
        return arrays
    finally:
        shutil.rmtree(directory)


def valid_file_bytes():
    directory = tempfile.mkdtemp()
    try:
        path = os.path.join(directory, "good.safetensors")
        mgio.save({"weight": np.arange(6, dtype=np.float32).reshape(2, 3),
                   "bias": np.array([1, 2], dtype=np.int64),
                   "mask": np.array([True, False, True])}, path, metadata={"format": "pt"})
        return open(path, "rb").read()
    finally:
        shutil.rmtree(directory)


GOOD_BYTES = valid_file_bytes()


def arrays_of_any_writable_dtype():
    dtypes = st.sampled_from(WRITABLE_DTYPES + [">f8", ">f4", ">i4", ">u2"]).map(np.dtype)
    shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)
    return st.tuples(dtypes, shapes).flatmap(lambda ds: hnp.arrays(ds[0], ds[1]))


# ----------------------------------------------------------------------------- round trips

@FAST
@given(st.dictionaries(st.text(min_size=0, max_size=8).filter(lambda name: name != "__metadata__"),
                       arrays_of_any_writable_dtype(), max_size=4))
def test_save_then_load_arrays_gives_back_the_same_bits_dtype_and_shape(state_dict):
    directory = tempfile.mkdtemp()
    try:
        path = os.path.join(directory, "roundtrip.safetensors")
        mgio.save(state_dict, path)
        loaded = mgio.load_arrays(path)
    finally:
        shutil.rmtree(directory)
    assert set(loaded) == set(state_dict)
    for name, original in state_dict.items():
        native = original.astype(original.dtype.newbyteorder("="))
        result = loaded[name]
        assert isinstance(result, np.ndarray)
        assert result.shape == original.shape
        assert result.dtype == native.dtype and result.dtype.isnative
        assert result.tobytes() == native.tobytes()          # bit-exact: NaN payloads, -0.0
        assert result.flags.writeable


@pytest.mark.parametrize("dtype", WRITABLE_DTYPES)
def test_zero_d_and_zero_size_arrays_keep_their_shape(tmp_path, dtype):
    path = tmp_path / "edge.safetensors"
    state = {"scalar": np.array(1, dtype=dtype), "empty": np.zeros((0, 3), dtype=dtype),
             "empty_middle": np.zeros((2, 0, 4), dtype=dtype)}
    mgio.save(state, path)
    loaded = mgio.load_arrays(path)
    assert loaded["scalar"].shape == () and loaded["scalar"] == np.array(1, dtype=dtype)
    assert loaded["empty"].shape == (0, 3)
    assert loaded["empty_middle"].shape == (2, 0, 4)
    assert all(array.dtype == np.dtype(dtype) for array in loaded.values())


def test_file_follows_the_documented_layout(tmp_path):
    path = tmp_path / "layout.safetensors"
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    bias = np.array([-1, 2, 3], dtype=">i2")          # big-endian input is stored little-endian
    flag = np.array(True)
    mgio.save({"weight": weight, "bias": bias, "flag": flag}, path, metadata={"epoch": "3"})

    header_length, header, data = parse_by_hand(path)
    assert header_length % 8 == 0                      # the data starts on an 8-byte boundary
    assert header.pop("__metadata__") == {"epoch": "3"}
    assert header == {
        "bias": {"dtype": "I16", "shape": [3], "data_offsets": [0, 6]},
        "flag": {"dtype": "BOOL", "shape": [], "data_offsets": [6, 7]},
        "weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [7, 31]},
    }
    assert list(header) == sorted(header)              # tensors are sorted by name
    assert len(data) == 31
    assert data[0:6] == np.array([-1, 2, 3], dtype="<i2").tobytes()
    assert data[6:7] == b"\x01"
    assert data[7:31] == weight.astype("<f4").tobytes()


@pytest.mark.parametrize("dtype", WRITABLE_DTYPES)
def test_each_dtype_is_written_under_its_format_name(tmp_path, dtype):
    path = tmp_path / "names.safetensors"
    mgio.save({"x": np.ones(2, dtype=dtype)}, path)
    _, header, _ = parse_by_hand(path)
    assert header["x"]["dtype"] == FORMAT_NAMES[dtype]


def test_same_state_dict_in_any_order_gives_identical_bytes(tmp_path):
    a, b = np.ones(3, np.float32), np.zeros((2, 2), np.int32)
    mgio.save({"a": a, "b": b}, tmp_path / "first.safetensors")
    mgio.save({"b": b, "a": a}, tmp_path / "second.safetensors")
    assert (tmp_path / "first.safetensors").read_bytes() == (tmp_path / "second.safetensors").read_bytes()


def test_values_with_a_numpy_method_are_saved_through_it(tmp_path):
    class FakeTensor:                                  # what a minigrad Tensor looks like to save()
        def numpy(self):
            return np.array([[1.5, 2.5]], dtype=np.float32)

    path = tmp_path / "duck.safetensors"
    mgio.save({"t": FakeTensor(), "list": [1, 2, 3]}, path)
    loaded = mgio.load_arrays(path)
    np.testing.assert_array_equal(loaded["t"], [[1.5, 2.5]])
    assert loaded["list"].dtype == np.asarray([1, 2, 3]).dtype


def test_minigrad_save_and_load_round_trip_tensors(tmp_path):
    import minigrad as mg
    path = tmp_path / "model.safetensors"
    weight = mg.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    mg.save({"weight": weight, "steps": np.array(7, dtype=np.int64)}, path)
    loaded = mg.load(path)
    assert isinstance(loaded["weight"], mg.Tensor)
    np.testing.assert_array_equal(loaded["weight"].numpy(), weight.numpy())
    assert loaded["weight"].dtype == np.float32
    assert loaded["steps"].item() == 7


# ----------------------------------------------------------------------------- BF16

def test_bf16_is_read_as_float32_from_the_high_half_of_the_bits(tmp_path):
    # bfloat16 bit patterns: 1.0 = 0x3F80, -2.0 = 0xC000, 0.5 = 0x3F00, 3.140625 = 0x4049, inf = 0x7F80
    bits = np.array([0x3F80, 0xC000, 0x3F00, 0x4049, 0x7F80, 0x0000], dtype="<u2")
    path = write_raw(tmp_path / "bf16.safetensors",
                     {"w": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]}}, bits.tobytes())
    loaded = mgio.load_arrays(path)["w"]
    assert loaded.dtype == np.float32 and loaded.shape == (2, 3)
    np.testing.assert_array_equal(loaded, [[1.0, -2.0, 0.5], [3.140625, np.inf, 0.0]])
    assert loaded.flags.writeable


def test_bf16_scalar_stays_a_zero_d_array(tmp_path):
    path = write_raw(tmp_path / "bf16_scalar.safetensors",
                     {"s": {"dtype": "BF16", "shape": [], "data_offsets": [0, 2]}}, b"\x80\x3f")
    loaded = mgio.load_arrays(path)["s"]
    assert isinstance(loaded, np.ndarray) and loaded.shape == () and loaded == 1.0


def test_bool_bytes_other_than_one_still_read_as_true(tmp_path):
    path = write_raw(tmp_path / "bool.safetensors",
                     {"m": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]}}, b"\x00\x01\x07")
    np.testing.assert_array_equal(mgio.load_arrays(path)["m"], [False, True, True])


# ----------------------------------------------------------------------------- atomic writes

def _only_file_left(tmp_path, name):
    assert sorted(os.listdir(tmp_path)) == [name], "a temporary file was left behind"


def test_failing_value_leaves_the_existing_file_untouched(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    mgio.save({"w": np.ones(4, np.float32)}, path)
    good = path.read_bytes()

    class Exploding:
        def numpy(self):
            raise RuntimeError("device lost")

    with pytest.raises(RuntimeError, match="device lost"):
        mgio.save({"a": np.zeros(2), "b": Exploding()}, path)
    assert path.read_bytes() == good
    _only_file_left(tmp_path, "ckpt.safetensors")


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_crash_during_the_write_removes_the_temp_file_and_keeps_the_old_one(tmp_path, monkeypatch, failing):
    path = tmp_path / "ckpt.safetensors"
    mgio.save({"w": np.ones(4, np.float32)}, path)
    good = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(mgio.os, failing, crash)
    with pytest.raises(OSError, match="disk full"):
        mgio.save({"w": np.zeros(1000, np.float64)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    _only_file_left(tmp_path, "ckpt.safetensors")


def test_object_dtype_is_rejected_naming_the_key_and_nothing_is_written(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    mgio.save({"w": np.ones(2)}, path)
    good = path.read_bytes()
    with pytest.raises(ValueError, match="'bad_one'.*object"):
        mgio.save({"ok": np.ones(2), "bad_one": np.array([{}, None], dtype=object)}, path)
    assert path.read_bytes() == good
    _only_file_left(tmp_path, "ckpt.safetensors")


@pytest.mark.parametrize("value", [np.array(["a", "b"]), np.array([1 + 2j]), np.array([1], dtype="datetime64[s]")])
def test_dtypes_the_format_cannot_hold_are_rejected(tmp_path, value):
    with pytest.raises(ValueError, match="'x'"):
        mgio.save({"x": value}, tmp_path / "x.safetensors")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("bad_key", [3, ("a", "b"), None, b"bytes"])
def test_non_str_keys_are_rejected_naming_the_key(tmp_path, bad_key):
    with pytest.raises(ValueError, match=repr(bad_key).replace("(", r"\(").replace(")", r"\)")):
        mgio.save({bad_key: np.ones(1)}, tmp_path / "x.safetensors")
    assert os.listdir(tmp_path) == []


def test_metadata_key_is_reserved(tmp_path):
    with pytest.raises(ValueError, match="__metadata__"):
        mgio.save({"__metadata__": np.ones(1)}, tmp_path / "x.safetensors")


# ----------------------------------------------------------------------------- clear errors

def _error_for(path):
    with pytest.raises(SafetensorsError) as info:
        mgio.load_arrays(path)
    message = str(info.value)
    assert os.path.basename(str(path)) in message
    return message


def test_empty_file_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    assert "fewer than the 8" in _error_for(path)


def test_text_file_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("These are my notes about the model, not a safetensors file.\n" * 3)
    assert "header length" in _error_for(path)


def test_zip_file_is_a_clear_error(tmp_path):
    path = tmp_path / "model.pt"                       # PyTorch's .pt files are zip archives
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    assert "not a safetensors file" in _error_for(path)


UNPICKLED = []


def record_unpickling(tag):
    UNPICKLED.append(tag)


class RecordsUnpickling:
    """Unpickling this calls record_unpickling: a loader that unpickles would show it."""
    def __reduce__(self):
        return record_unpickling, ("unpickled",)


def test_pickle_file_is_a_clear_error_and_is_never_unpickled(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weight": RecordsUnpickling()}, protocol=2))
    UNPICKLED.clear()
    assert "not a safetensors file" in _error_for(path)
    assert UNPICKLED == []


def test_npy_file_is_a_clear_error(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.arange(10.0))
    assert "not a safetensors file" in _error_for(path)


def test_safetensors_error_is_a_value_error():
    assert issubclass(SafetensorsError, ValueError)


def _entry(**overrides):
    entry = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    entry.update(overrides)
    return {key: value for key, value in entry.items() if value is not ...}


@pytest.mark.parametrize("header, fragment", [
    ({"w": _entry(dtype="Q99")}, "unknown dtype 'Q99'"),
    ({"w": _entry(dtype=...)}, "no 'dtype'"),
    ({"w": _entry(shape=...)}, "no 'shape'"),
    ({"w": _entry(data_offsets=...)}, "no 'data_offsets'"),
    ({"w": _entry(dtype=32)}, "dtype must be a string"),
    ({"w": _entry(shape=[-2])}, "non-negative"),
    ({"w": _entry(shape=[2.0])}, "non-negative integers"),
    ({"w": _entry(shape=[True, True])}, "non-negative integers"),
    ({"w": _entry(shape="2")}, "shape must be a list"),
    ({"w": _entry(data_offsets=[0])}, "[begin, end]"),
    ({"w": _entry(data_offsets=[0, 8, 16])}, "[begin, end]"),
    ({"w": _entry(data_offsets=["0", "8"])}, "[begin, end]"),
    ({"w": _entry(data_offsets=[-8, 0])}, "0 <= begin <= end"),
    ({"w": _entry(data_offsets=[8, 0])}, "0 <= begin <= end"),
    ({"w": _entry(data_offsets=[0, 12])}, "reach past the end"),
    ({"w": _entry(shape=[3])}, "needs 12"),
    ({"w": _entry(shape=[0, 2**62], data_offsets=[0, 0])}, "cannot build"),
    ({"w": _entry(shape=[1] * 40, data_offsets=[0, 4])}, "dimensions"),
    ({"w": [1, 2]}, "must be a JSON object"),
    ({"__metadata__": {"a": 1}, "w": _entry()}, "__metadata__"),
    ([1, 2, 3], "must be a JSON object"),
])
def test_bad_header_entries_name_the_problem(tmp_path, header, fragment):
    path = write_raw(tmp_path / "broken.safetensors", header, b"\x00" * 8)
    assert fragment in _error_for(path)


def test_header_that_is_not_json_is_a_clear_error(tmp_path):
    path = write_raw(tmp_path / "garbled.safetensors", b'{"w": {"dtype": "F32", ', b"\x00" * 8)
    assert "not valid JSON" in _error_for(path)


def test_header_that_is_not_utf8_is_a_clear_error(tmp_path):
    path = write_raw(tmp_path / "latin1.safetensors", '{"caf\xe9": 1}'.encode("latin-1"))
    assert "UTF-8" in _error_for(path)


def test_duplicate_tensor_names_are_a_clear_error(tmp_path):
    header = b'{"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}'
    path = write_raw(tmp_path / "dup.safetensors", header, b"\x00")
    assert "duplicate" in _error_for(path)


def test_header_length_larger_than_the_file_is_a_clear_error(tmp_path):
    path = write_raw(tmp_path / "liar.safetensors", {}, header_length=10**12)
    assert "header length 1000000000000" in _error_for(path)


def test_truncated_data_section_is_a_clear_error(tmp_path):
    path = tmp_path / "cut.safetensors"
    mgio.save({"w": np.ones(100, np.float32)}, path)
    path.write_bytes(path.read_bytes()[:-10])
    assert "truncated" in _error_for(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        mgio.load_arrays(tmp_path / "nowhere.safetensors")


# ----------------------------------------------------------------------------- fuzzing

@FAST
@given(st.data())
def test_fuzz_corrupted_header_bytes_give_safetensors_error_or_arrays(data):
    header_end = 8 + int.from_bytes(GOOD_BYTES[:8], "little")
    blob = bytearray(GOOD_BYTES)
    positions = data.draw(st.lists(st.integers(0, header_end - 1), min_size=1, max_size=6))
    for position in positions:
        blob[position] = data.draw(st.integers(0, 255))
    load_or_error(bytes(blob))


@FAST
@given(st.integers(0, len(GOOD_BYTES) - 1))
def test_fuzz_truncation_at_any_length_is_a_safetensors_error(length):
    result = load_or_error(GOOD_BYTES[:length])
    assert isinstance(result, SafetensorsError)       # a file cut short is never silently accepted


@FAST
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_give_safetensors_error_or_arrays(blob):
    load_or_error(blob)


@FAST
@given(st.binary(max_size=64), st.binary(max_size=64))
def test_fuzz_random_header_after_a_plausible_length_gives_safetensors_error(header, data):
    load_or_error(len(header).to_bytes(8, "little") + header + data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8)
dtype_names = st.sampled_from(list(FORMAT_NAMES.values()) + ["BF16", "F8_E4M3", "Q99", "", "f32"])
small_ints = st.integers(-3, 40) | st.integers(-2**64, 2**64)


@FAST
@given(st.dictionaries(
    st.text(max_size=5),
    st.fixed_dictionaries({"dtype": dtype_names | json_values,
                           "shape": st.lists(small_ints, max_size=3) | json_values,
                           "data_offsets": st.lists(small_ints, min_size=0, max_size=3) | json_values}),
    max_size=3), st.integers(0, 48))
def test_fuzz_headers_that_lie_about_dtype_shape_and_offsets(header, data_size):
    header_bytes = json.dumps(header).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    result = load_or_error(len(header_bytes).to_bytes(8, "little") + header_bytes + bytes(range(data_size)))
    if isinstance(result, dict):                      # accepted: then it must really fit the header
        for name, array in result.items():
            begin, end = header[name]["data_offsets"]
            assert array.shape == tuple(header[name]["shape"])
            assert end <= data_size


@FAST
@given(st.integers(0, 2**64 - 1))
def test_fuzz_any_header_length_gives_safetensors_error_or_arrays(header_length):
    blob = header_length.to_bytes(8, "little") + GOOD_BYTES[8:]
    load_or_error(blob)

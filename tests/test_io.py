"""Tests for minigrad.io: safetensors written and read with numpy alone.

The format: u64 little-endian header length N, N bytes of JSON header, then data.
Every corrupt file must give a SafetensorsError naming the file, never a random crash.
"""
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
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


def test_overlapping_tensors_are_rejected_naming_both(tmp_path):
    header = {"a": _entry(shape=[2], data_offsets=[0, 8]), "b": _entry(shape=[1], data_offsets=[4, 8])}
    path = write_raw(tmp_path / "overlap.safetensors", header, b"\x00" * 8)
    assert ("tensors 'a' and 'b' overlap in the data section ('b' begins at byte 4, before 'a' ends at 8)"
            in _error_for(path))


def test_adjacent_and_empty_tensors_are_not_overlaps(tmp_path):
    header = {"a": _entry(shape=[1], data_offsets=[0, 4]), "b": _entry(shape=[1], data_offsets=[4, 8]),
              "empty": _entry(shape=[0], data_offsets=[4, 4])}
    arrays = mgio.load_arrays(write_raw(tmp_path / "fine.safetensors", header, b"\x00" * 8))
    assert sorted(arrays) == ["a", "b", "empty"] and arrays["empty"].shape == (0,)


def test_many_tensors_over_the_same_bytes_cost_no_memory_but_an_error(tmp_path):
    # 400 names for the same 256 KiB used to make 400 copies (100 MiB from a 256 KiB file)
    data = bytes(256 * 1024)
    header = {f"t{i}": {"dtype": "U8", "shape": [len(data)], "data_offsets": [0, len(data)]} for i in range(400)}
    path = write_raw(tmp_path / "bomb.safetensors", header, data)
    tracemalloc.start()
    try:
        with pytest.raises(SafetensorsError, match="overlap"):
            mgio.load_arrays(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * os.path.getsize(path)


def test_header_longer_than_100_MB_is_rejected_before_it_is_read(tmp_path):
    path = tmp_path / "huge_header.safetensors"
    claimed = mgio.MAX_HEADER_BYTES + 8
    with open(path, "wb") as file:
        file.write(claimed.to_bytes(8, "little"))
        file.truncate(claimed + 64)                 # a sparse file: big, but no disk used
    tracemalloc.start()
    try:
        message = _error_for(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "huge_header.safetensors: header length 100000008 is more than the 100000000 bytes" in message
    assert peak < 1_000_000                         # the header was never read


# ----------------------------------------------------------------------------- kills, links, permissions

SAVE_THEN_STALL = """
import os, sys, time
import numpy as np
import minigrad as mg
from minigrad import io as mgio

def stall(descriptor):                   # the temporary file is written, not yet renamed
    print("writing", flush=True)
    time.sleep(60)

os.fsync = stall
mgio.save({"w": np.zeros(10000)}, sys.argv[1])
print("saved", flush=True)
"""


def _child_environment():
    """This process's environment, with the minigrad under test first on the path."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(mgio.__file__)), os.environ.get("PYTHONPATH", "")]))


def _interrupt_a_save(path, signal_number):
    """Run a save in a child process, send it signal_number while it writes; its return code."""
    child = subprocess.Popen([sys.executable, "-c", SAVE_THEN_STALL, str(path)], env=_child_environment(),
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "writing\n"
        child.send_signal(signal_number)
        return child.wait(timeout=30), child.pid
    finally:
        child.kill()
        child.wait()


def _temporaries(directory):
    return [name for name in os.listdir(directory) if name.endswith(".tmp")]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_a_save_killed_by_sigterm_removes_its_temp_file_and_keeps_the_old_checkpoint(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    mgio.save({"w": np.ones(4, np.float32)}, path)
    good = path.read_bytes()
    code, _ = _interrupt_a_save(path, signal.SIGTERM)
    assert code == -signal.SIGTERM                  # it still dies by the signal, as it would have
    assert _temporaries(tmp_path) == []
    assert path.read_bytes() == good


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_the_temp_file_of_a_save_killed_by_sigkill_is_removed_by_the_next_save(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    code, pid = _interrupt_a_save(path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    left = _temporaries(tmp_path)
    assert len(left) == 1 and left[0].startswith(f".ckpt.safetensors.{pid}.")   # SIGKILL cannot be caught
    untouched = tmp_path / f".other.safetensors.{pid}.abc.tmp"     # another target's: not ours to remove
    untouched.write_bytes(b"x")
    mgio.save({"w": np.ones(2)}, path)
    assert sorted(os.listdir(tmp_path)) == [untouched.name, "ckpt.safetensors"]


def test_a_temp_file_of_a_running_process_is_left_alone(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    in_progress = [tmp_path / f".ckpt.safetensors.{os.getpid()}.abc.tmp",       # this process
                   tmp_path / f".ckpt.safetensors.{os.getppid()}.abc.tmp"]      # a live parent
    for other in in_progress:
        other.write_bytes(b"partial")
    mgio.save({"w": np.ones(2)}, path)
    assert all(other.read_bytes() == b"partial" for other in in_progress)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="symlinks")
def test_save_through_a_symlink_writes_the_file_it_points_to_and_keeps_the_link(tmp_path):
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "step_100.safetensors"
    mgio.save({"w": np.zeros(2)}, target)
    link = tmp_path / "latest.safetensors"
    link.symlink_to(target)
    mgio.save({"w": np.ones(3)}, link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(mgio.load_arrays(target)["w"], np.ones(3))
    assert _temporaries(tmp_path) == [] and _temporaries(tmp_path / "runs") == []


READ_ONLY_SAVE = """
import os, sys
import numpy as np
import minigrad as mg
from minigrad import io as mgio
if os.geteuid() == 0:
    os.setuid(65534)                  # root may write anything: save as user nobody
try:
    mgio.save({"w": np.ones(3)}, sys.argv[1])
except PermissionError as error:
    print(error)
"""


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_save_over_a_read_only_file_is_a_permission_error_and_changes_nothing():
    directory = tempfile.mkdtemp()
    try:
        os.chmod(directory, 0o777)                  # the directory is writable: a rename would succeed
        path = os.path.join(directory, "frozen.safetensors")
        mgio.save({"w": np.zeros(2)}, path)
        os.chmod(path, 0o444)
        good = open(path, "rb").read()
        result = subprocess.run([sys.executable, "-c", READ_ONLY_SAVE, path], env=_child_environment(), cwd=directory,
                                capture_output=True, text=True, timeout=60)
        assert result.stdout.strip() == (f"save: {path} is read-only; make it writable (or remove it) "
                                         f"to replace it"), result.stderr
        assert open(path, "rb").read() == good and _temporaries(directory) == []
    finally:
        shutil.rmtree(directory)


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


# ----------------------------------------------------------------------------- the fuzz test of mg.load
# Every truncation, and thousands of seeded byte mutations, of one valid file with
# several dtypes, a 0-d, an empty tensor and metadata: mg.load must either load it
# or raise SafetensorsError naming the file; any other exception fails the test.
# Memory is traced too: no mutant may make the loader allocate more than a small
# multiple of the file's size (the data is read once and decoded once).

def fuzz_seed_file(directory):
    rng = np.random.default_rng(0)
    path = os.path.join(directory, "seed.safetensors")
    mgio.save({"embedding.weight": rng.standard_normal((64, 32)).astype(np.float32),   # 8 KiB
               "head.bias": rng.standard_normal(10),
               "steps": np.array(7, dtype=np.int64),
               "half": rng.standard_normal((3, 2)).astype(np.float16),
               "mask": np.array([True, False, True, True]),
               "ids": np.arange(5, dtype=np.uint16),
               "nothing": np.zeros((0, 4), dtype=np.int32)}, path, metadata={"format": "pt", "step": "7"})
    return path


def load_or_clear_error(path):
    """mg.load(path): True when it loads, False on a SafetensorsError naming the file."""
    try:
        loaded = mg.load(path)
    except SafetensorsError as error:
        assert os.path.basename(path) in str(error)
        return False
    assert all(isinstance(value, mg.Tensor) for value in loaded.values())
    return True


# measured: at most 25 KB for the 8.8 KB seed file's mutants
MEMORY_MULTIPLE = 4          # the raw bytes read, the decoded arrays, and room to spare
MEMORY_SLACK = 32 * 1024     # Python's own objects: the parsed header, exceptions, messages


def test_fuzz_every_truncation_of_a_valid_file_is_a_safetensors_error(tmp_path):
    path = fuzz_seed_file(tmp_path)
    size = os.path.getsize(path)
    assert load_or_clear_error(path)
    for length in range(size - 1, -1, -1):         # cut the same file shorter and shorter
        os.truncate(path, length)
        assert not load_or_clear_error(path), f"a file cut to {length} of {size} bytes loaded"


def mutate(blob, rng, header_end):
    """One random corruption: overwrite, insert or delete a few bytes, mostly in the header
    (the data section is raw numbers: any bytes there are a valid file)."""
    blob = bytearray(blob)
    interesting = b'0123456789"{}[],:-. eE\x00\xff'
    for _ in range(rng.randint(1, 4)):
        where = rng.randrange(header_end) if rng.random() < 0.85 else rng.randrange(len(blob))
        kind = rng.random()
        new_byte = rng.choice(interesting) if rng.random() < 0.5 else rng.randrange(256)
        if kind < 0.6:
            blob[where] = new_byte
        elif kind < 0.8:
            blob.insert(where, new_byte)
        else:
            del blob[where]
    return bytes(blob)


def test_fuzz_random_mutations_of_a_valid_file_load_or_fail_clearly_within_bounded_memory(tmp_path):
    seed_path = fuzz_seed_file(tmp_path)
    good = open(seed_path, "rb").read()
    header_end = 8 + int.from_bytes(good[:8], "little")
    rng = random.Random(20260101)
    path = os.path.join(tmp_path, "mutant.safetensors")
    outcomes = {True: 0, False: 0}
    tracemalloc.start()
    try:
        for trial in range(1500):
            blob = mutate(good, rng, header_end)
            with open(path, "wb") as file:
                file.write(blob)
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            outcomes[load_or_clear_error(path)] += 1
            peak = tracemalloc.get_traced_memory()[1] - before
            assert peak <= MEMORY_MULTIPLE * len(blob) + MEMORY_SLACK, (
                f"mutant {trial} ({len(blob)} bytes) made the loader allocate {peak} bytes")
    finally:
        tracemalloc.stop()
    assert outcomes[True] > 50 and outcomes[False] > 500       # both paths were exercised

"""Saving and loading tensors in the safetensors format, with numpy alone.

A safetensors file has three parts:

    [ 8 bytes ][ N bytes of header            ][ data section ...................... ]
      N, as a    UTF-8 JSON object, padded with   the raw bytes of every tensor, one
      little-     spaces to a multiple of 8        after another, little-endian, C order
      endian u64

The header says, for every tensor, its dtype, its shape and where its bytes lie:

    {"bias":   {"dtype": "F32", "shape": [3],    "data_offsets": [0, 12]},
     "weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [12, 36]},
     "__metadata__": {"format": "pt"}}                    (optional, str -> str)

Why offsets? They are byte positions counted from the start of the data
section, so a reader can jump straight to one tensor without reading the
others, and the data itself is nothing but bytes: no code runs when a file is
loaded. That is the point of the format. PyTorch's older `.pt` files are
pickles, and unpickling a file can run any Python code its author chose;
loading here only ever reads numbers, and it checks every header field before
trusting it, so a corrupt or hostile file gives a `SafetensorsError` that names
the file and the problem instead of a crash deep inside numpy.

Why the temporary file? `save` writes the whole file under a temporary name
in the same directory, forces it to disk (`os.fsync`), and only then renames
it onto the real name with `os.replace`, which is atomic: anyone who opens the
path sees either the old file or the complete new one, never half of one. If
anything fails on the way (a value that cannot be converted, a full disk, a
Ctrl-C, a SIGTERM) the temporary file is removed and an existing checkpoint is
untouched. Only SIGKILL (or a power cut) can stop the process before it cleans
up; the temporary file it leaves, `.<name>.<pid>.<random>.tmp`, is removed by
the next save to the same path once process <pid> is gone.

A symlink at `path` is followed: the file it points to is replaced, and the
link stays. A read-only file at `path` is not replaced: save raises
PermissionError, as `open(path, "w")` (and torch.save) would; like open, it
does not stop root.

    save(state_dict, path, metadata=None)   arrays or Tensors -> file
    load_arrays(path) -> {name: numpy.ndarray}
    load(path)        -> {name: Tensor}

Loading trusts nothing the header says before checking it against the file:
every tensor's bytes must lie inside the data section, no two tensors may
share bytes (else a small file could name the same megabytes a thousand times
over and each copy would be made), and the header itself may claim at most
100 MB, the reference library's limit. So loading never allocates much more
than the file's own size.

Differences from the reference `safetensors` library: BF16 can be read (it is
widened to float32, since numpy has no bfloat16) but not written; the reader
accepts unused bytes between tensors, which the reference rejects.
"""
import json
import math
import os
import re
import signal
import tempfile
import threading

import numpy as np

__all__ = ["save", "load", "load_arrays", "SafetensorsError"]


class SafetensorsError(ValueError):
    """A file that is not a valid safetensors file; the message names the file and the problem."""


# Format name -> little-endian numpy dtype. BOOL is stored as one byte per value.
_FORMAT_TO_NUMPY = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("u1"),
    "BF16": np.dtype("<u2"),      # read as raw 16-bit patterns, then widened to float32
}
# (numpy kind, itemsize) -> format name, for writing.
_NUMPY_TO_FORMAT = {
    ("f", 8): "F64", ("f", 4): "F32", ("f", 2): "F16",
    ("i", 8): "I64", ("i", 4): "I32", ("i", 2): "I16", ("i", 1): "I8",
    ("u", 8): "U64", ("u", 4): "U32", ("u", 2): "U16", ("u", 1): "U8",
    ("b", 1): "BOOL",
}
_METADATA_KEY = "__metadata__"
_MAX_DIMS = 32                      # numpy's smallest limit on ndim across versions
MAX_HEADER_BYTES = 100_000_000      # the reference library's cap on the JSON header


# ----------------------------------------------------------------------------- saving

def _to_array(name, value):
    """The value as a little-endian, C-contiguous numpy array, and its format name."""
    array = value.numpy() if hasattr(value, "numpy") else value   # duck-typed minigrad Tensor
    array = np.asarray(array)
    format_name = _NUMPY_TO_FORMAT.get((array.dtype.kind, array.dtype.itemsize))
    if format_name is None:
        supported = ", ".join(sorted({str(np.dtype(f)) for f in "f8 f4 f2 i8 i4 i2 i1 u8 u4 u2 u1 ?".split()}))
        raise ValueError(f"save: tensor {name!r} has dtype {array.dtype}, which safetensors "
                         f"cannot store; supported dtypes: {supported}")
    little_endian = array.dtype.newbyteorder("<")
    # (not np.ascontiguousarray: it turns a 0-d array into shape (1,))
    return np.asarray(array, dtype=little_endian, order="C"), format_name


def _check_name(name):
    if not isinstance(name, str):
        raise ValueError(f"save: key {name!r} is a {type(name).__name__}; tensor names must be str")
    if name == _METADATA_KEY:
        raise ValueError(f"save: {_METADATA_KEY!r} is reserved by the format and cannot name a tensor")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"save: key {name!r} cannot be encoded as UTF-8: {error}") from None


def _build_header(arrays, metadata):
    """The header bytes, padded with spaces so that the data starts on an 8-byte boundary."""
    header, offset = {}, 0
    for name, (array, format_name) in arrays.items():
        header[name] = {"dtype": format_name, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    if metadata:
        header[_METADATA_KEY] = dict(metadata)
    header_bytes = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return header_bytes + b" " * (-len(header_bytes) % 8)


def save(state_dict, path, metadata=None):
    """Write {name: array or Tensor} to `path` as safetensors; the file is written whole or not at all.

    Tensors are stored sorted by name, so the same state_dict always gives the
    same bytes. metadata: optional {str: str}, stored under "__metadata__".
    Raises ValueError naming the key for a non-str key or an unsupported dtype
    (object, str, complex, ...); an existing file at `path` is then left as it was.
    A symlink is followed; a read-only file raises PermissionError (see the module
    docstring for both, and for what a SIGTERM or SIGKILL during the write leaves).
    """
    if not hasattr(state_dict, "items"):
        raise ValueError(f"save: expected a dict of name -> array, got {type(state_dict).__name__}")
    for name in state_dict:
        _check_name(name)
    if metadata is not None:
        for key, value in dict(metadata).items():
            if not (isinstance(key, str) and isinstance(value, str)):
                raise ValueError(f"save: metadata must map str -> str, got {key!r}: {value!r}")
    # Convert everything before touching the disk: most failures happen here.
    arrays = {name: _to_array(name, state_dict[name]) for name in sorted(state_dict)}
    header = _build_header(arrays, metadata)

    path = os.path.realpath(os.fspath(path))      # through a symlink to the file it names
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise PermissionError(f"save: {path} is read-only; make it writable (or remove it) to replace it")
    directory, filename = os.path.split(path)
    _remove_stale_temporaries(directory, filename)
    with _sigterm_cleans_up():
        temporary = None
        try:
            temporary = tempfile.NamedTemporaryFile(dir=directory, prefix=f".{filename}.{os.getpid()}.",
                                                    suffix=".tmp", delete=False)
            with temporary as file:
                file.write(len(header).to_bytes(8, "little"))
                file.write(header)
                for array, _ in arrays.values():
                    file.write(array.tobytes(order="C"))
                file.flush()
                os.fsync(file.fileno())
            # NamedTemporaryFile is private (mode 0600); give the result an ordinary file's mode.
            mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
            os.chmod(temporary.name, mode)
            os.replace(temporary.name, path)
        except BaseException:                  # includes KeyboardInterrupt: never leave debris
            if temporary is not None:
                try:
                    os.unlink(temporary.name)
                except FileNotFoundError:
                    pass
            raise
    _fsync_directory(directory)


def _remove_stale_temporaries(directory, name):
    """Delete `.<name>.<pid>.<random>.tmp` files that an earlier save to this path left
    when it was killed (SIGKILL cannot be caught). A file whose process still runs is
    another save in progress and is left alone. (A process id is only known on this
    machine: on a shared file system, saves to one path from two machines at once
    can remove each other's file; the one whose file went then fails, loudly.)"""
    pattern = re.compile(re.escape(f".{name}.") + r"(\d+)\.[^.]+\.tmp")
    try:
        candidates = os.listdir(directory)
    except OSError:
        return
    for candidate in candidates:
        match = pattern.fullmatch(candidate)
        if match and not _process_is_running(int(match.group(1))):
            try:
                os.unlink(os.path.join(directory, candidate))
            except OSError:
                pass


def _process_is_running(pid):
    if pid == os.getpid():
        return True                      # another thread of ours may be saving right now
    try:
        os.kill(pid, 0)                  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (OverflowError, OSError):
        pass                             # it exists but is not ours, or we cannot tell: keep it
    return True


class _Terminated(BaseException):
    """Raised inside save by a SIGTERM, so that the temporary file is cleaned up."""


class _sigterm_cleans_up:
    """During a save, a SIGTERM aborts the save like Ctrl-C does (the temporary file is
    removed, an existing file stays as it was), and then the process ends by SIGTERM
    as it would have. Only while SIGTERM has its default action (which kills without
    any cleanup): a handler the program installed itself is left to run as usual, and
    signals can only be caught in the main thread."""

    def __enter__(self):
        self.previous = None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL):
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise _Terminated()

    def __exit__(self, kind, error, traceback):
        if self.previous is None:
            return False
        signal.signal(signal.SIGTERM, self.previous)
        if kind is _Terminated:          # the temporary file is gone: now end as SIGTERM would have
            os.kill(os.getpid(), signal.SIGTERM)
            raise SystemExit(128 + signal.SIGTERM)
        return False


def _fsync_directory(directory):
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# ----------------------------------------------------------------------------- loading

def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)     # JSON true is not a size


def _reject_duplicate_keys(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _read_header(file, path, file_size):
    """The parsed header dict and the size of the data section."""
    def fail(problem):
        return SafetensorsError(f"{path}: {problem}")

    if file_size < 8:
        raise fail(f"not a safetensors file: it has {file_size} bytes, fewer than the 8-byte header length")
    header_length = int.from_bytes(file.read(8), "little")
    if header_length > MAX_HEADER_BYTES:
        raise fail(f"header length {header_length} is more than the {MAX_HEADER_BYTES} bytes (100 MB) "
                   f"a safetensors header may have: not a safetensors file, or a corrupt one")
    if header_length > file_size - 8:
        raise fail(f"not a safetensors file (or truncated): header length {header_length} is larger "
                   f"than the {file_size - 8} bytes that follow it")
    header_bytes = file.read(header_length)
    try:
        header = json.loads(header_bytes.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys)
    except UnicodeDecodeError as error:
        raise fail(f"header is not valid UTF-8 ({error}); not a safetensors file?") from None
    except (ValueError, RecursionError) as error:      # json.JSONDecodeError is a ValueError
        raise fail(f"header is not valid JSON ({error}); not a safetensors file?") from None
    if not isinstance(header, dict):
        raise fail(f"header must be a JSON object, got a JSON {type(header).__name__}")
    return header, file_size - 8 - header_length


def _check_entry(name, entry, data_size, fail):
    """Validate one header entry; return (numpy dtype, shape tuple, begin, end)."""
    if not isinstance(entry, dict):
        raise fail(f"tensor {name!r}: entry must be a JSON object, got {entry!r}")
    for field in ("dtype", "shape", "data_offsets"):
        if field not in entry:
            raise fail(f"tensor {name!r}: entry has no {field!r} field")
    format_name, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(format_name, str):
        raise fail(f"tensor {name!r}: dtype must be a string, got {format_name!r}")
    if format_name not in _FORMAT_TO_NUMPY:
        raise fail(f"tensor {name!r}: unknown dtype {format_name!r}; "
                   f"known: {', '.join(_FORMAT_TO_NUMPY)}")
    if not isinstance(shape, list) or not all(_is_int(size) and size >= 0 for size in shape):
        raise fail(f"tensor {name!r}: shape must be a list of non-negative integers, got {shape!r}")
    if len(shape) > _MAX_DIMS:
        raise fail(f"tensor {name!r}: shape has {len(shape)} dimensions, more than {_MAX_DIMS}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
        raise fail(f"tensor {name!r}: data_offsets must be [begin, end] integers, got {offsets!r}")
    begin, end = offsets
    if not 0 <= begin <= end:
        raise fail(f"tensor {name!r}: data_offsets {offsets} need 0 <= begin <= end")
    if end > data_size:
        raise fail(f"tensor {name!r}: data_offsets {offsets} reach past the end of the data section "
                   f"({data_size} bytes): the file is truncated or the offsets are wrong")
    itemsize = _FORMAT_TO_NUMPY[format_name].itemsize
    expected = math.prod(shape) * itemsize
    if end - begin != expected:
        raise fail(f"tensor {name!r}: data_offsets {offsets} span {end - begin} bytes, but shape "
                   f"{shape} of {format_name} needs {expected}")
    return format_name, tuple(shape), begin, end


def _reject_overlaps(entries, fail):
    """Raise if two tensors claim some of the same bytes. Each would be copied on its
    own, so overlaps let a small file ask for any amount of memory; the format's
    reference reader rejects them too. (Empty tensors own no bytes.)"""
    spans = sorted((begin, end, name) for name, (_, _, begin, end) in entries.items() if end > begin)
    for (_, end, name), (begin, _, next_name) in zip(spans, spans[1:]):
        if begin < end:
            raise fail(f"tensors {name!r} and {next_name!r} overlap in the data section "
                       f"({next_name!r} begins at byte {begin}, before {name!r} ends at {end}); "
                       f"each tensor must have bytes of its own")


def _decode(raw, format_name, shape):
    """Bytes -> a writable numpy array in native byte order."""
    stored = np.frombuffer(raw, dtype=_FORMAT_TO_NUMPY[format_name])        # flat, read-only
    if format_name == "BF16":
        # bfloat16 is the top half of a float32: put the 16 bits back in the high half.
        values = (stored.astype(np.uint32) << 16).view(np.float32)
    elif format_name == "BOOL":
        values = stored != 0
    else:
        values = stored.astype(stored.dtype.newbyteorder("="))          # always a fresh copy
    return values.reshape(shape)     # reshaping last keeps 0-d results arrays, not numpy scalars


def load_arrays(path):
    """Read a safetensors file into {name: numpy.ndarray}; never unpickles.

    Arrays are writable copies in native byte order. BF16 is widened to float32.
    Any problem with the file's contents raises SafetensorsError (a ValueError)
    naming the file and the problem; a missing file raises the usual OSError.
    """
    path = os.fspath(path)

    def fail(problem):
        return SafetensorsError(f"{path}: {problem}")

    with open(path, "rb") as file:
        file_size = os.fstat(file.fileno()).st_size
        header, data_size = _read_header(file, path, file_size)
        data_start = file_size - data_size
        metadata = header.pop(_METADATA_KEY, None)
        if metadata is not None and not (isinstance(metadata, dict) and
                                         all(isinstance(v, str) for v in metadata.values())):
            raise fail(f"{_METADATA_KEY} must be a JSON object of strings, got {metadata!r}")
        entries = {name: _check_entry(name, entry, data_size, fail) for name, entry in header.items()}
        _reject_overlaps(entries, fail)

        arrays = {}
        for name, (format_name, shape, begin, end) in entries.items():
            file.seek(data_start + begin)
            raw = file.read(end - begin)
            if len(raw) != end - begin:          # the file shrank while we were reading it
                raise fail(f"tensor {name!r}: data section is truncated")
            try:
                arrays[name] = _decode(raw, format_name, shape)
            except (ValueError, OverflowError, MemoryError) as error:
                raise fail(f"tensor {name!r}: cannot build an array of shape {list(shape)}: {error}") from None
    return arrays


def load(path):
    """Read a safetensors file into {name: minigrad Tensor} (on the default device); never unpickles."""
    from .backend import get_default_device
    from .tensor import Tensor
    device = get_default_device()
    # the arrays are fresh copies already, so Tensor (no copy) rather than mg.tensor
    return {name: Tensor(array, device=device) for name, array in load_arrays(path).items()}

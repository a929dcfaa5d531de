# `rustgrad.save` / `rustgrad.load` in PyTorch's own checkpoint format: a zip archive holding
# `data.pkl` (a pickle whose tensors point at storages by persistent id) and one raw record per
# storage. Files interoperate with torch.save/torch.load both ways; torch is never imported.
from __future__ import annotations

import collections
import ctypes
import io
import os
import pickle
import struct
import sys
import zipfile
import zlib

import numpy as np

from . import _C
from ._size import Size

__all__ = ["save", "load"]

Tensor = _C.Tensor

# rustgrad dtype name -> the storage class torch pickles for it.
_STORAGE_OF = {
    "float32": "FloatStorage", "float64": "DoubleStorage", "int64": "LongStorage",
    "int32": "IntStorage", "uint8": "ByteStorage", "bool": "BoolStorage",
}
# torch's other storage classes: recognised so a file using them fails with the dtype's name.
_UNSUPPORTED_STORAGES = {
    "HalfStorage": "float16", "BFloat16Storage": "bfloat16", "CharStorage": "int8",
    "ShortStorage": "int16", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128", "QInt8Storage": "qint8", "QUInt8Storage": "quint8",
    "QInt32Storage": "qint32", "QUInt4x2Storage": "quint4x2", "QUInt2x4Storage": "quint2x4",
}
_UNSUPPORTED_DTYPES = (
    "float16", "bfloat16", "int8", "int16", "uint16", "uint32", "uint64", "complex32",
    "complex64", "complex128", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
    "float8_e5m2fnuz", "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
)
_ALIGNMENT = 64  # torch's default storage alignment inside the archive


def _dtype_name(dtype) -> str:
    return str(dtype).rsplit(".", 1)[1]


# ----------------------------------------------------------------------------------------------
# Writing the zip container exactly as PyTorch's PyTorchStreamWriter (miniz) does
# ----------------------------------------------------------------------------------------------

_U32 = 0xFFFFFFFF
_U64 = (1 << 64) - 1


def _hash_combine(seed: int, value: int) -> int:
    # c10::hash_combine, which torch folds record CRCs with for the serialization id.
    return (seed ^ ((value + 0x9E3779B9 + (seed << 6) + (seed >> 2)) & _U64)) & _U64


def _archive_name(path: str) -> str:
    # The C++ writer's basename: strip folders, then the last extension ("a/b.pt" -> "b").
    start = max(path.rfind("/"), path.rfind("\\")) + 1
    dot = path.rfind(".")
    return path[start:dot if dot >= start else len(path)]


class _ZipWriter:
    """Stored (uncompressed) records under one folder, each record's data 64-byte aligned by an
    'FB' padding extra field, a data descriptor after each record and zip64 end records."""

    def __init__(self, f, archive: str):
        self.f, self.prefix = f, archive + "/"
        self.pos = 0
        self.central = []
        self.name_hash = self.crc_hash = 0

    def _emit(self, data) -> None:
        self.f.write(data)
        self.pos += len(data)

    def write_record(self, name: str, data) -> None:
        data = memoryview(data).cast("B")
        full, size, offset = (self.prefix + name).encode("utf-8"), len(data), self.pos
        crc = zlib.crc32(data)
        zip64 = b""
        if size >= _U32 or offset >= _U32:
            fields = (size, size) if size >= _U32 else ()
            fields += (offset,) if offset >= _U32 else ()
            zip64 = struct.pack(f"<HH{len(fields)}Q", 1, 8 * len(fields), *fields)
        start = offset + 30 + len(full) + 4 + len(zip64)
        pad = -start % _ALIGNMENT
        extra = zip64 + b"FB" + struct.pack("<H", pad) + b"Z" * pad
        self._emit(struct.pack("<IHHHHHIIIHH", 0x04034B50, 0, 0x0808, 0, 0, 0, 0, 0, 0,
                               len(full), len(extra)) + full + extra)
        self._emit(data)
        sizes = struct.pack("<QQ" if zip64 else "<II", size, size)
        self._emit(struct.pack("<II", 0x08074B50, crc) + sizes)
        small = min(size, _U32)
        self.central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, 0, 0x0808, 0, 0, 0,
                                        crc, small, small, len(full), len(zip64), 0, 0, 0, 0,
                                        min(offset, _U32)) + full + zip64)
        if name != ".data/serialization_id":
            self.name_hash = _hash_combine(self.name_hash, zlib.crc32(full))
            self.crc_hash = _hash_combine(self.crc_hash, crc)

    def finish(self) -> None:
        self.write_record("version", b"3\n")
        # torch's id is (hash of record names, CRC hash); its first half uses C++'s std::hash,
        # which Python cannot reproduce, so ours hashes the names' CRCs. torch only logs it.
        self.write_record(".data/serialization_id",
                          f"{self.name_hash:020d}{self.crc_hash:020d}".encode())
        cd_offset = self.pos
        for entry in self.central:
            self._emit(entry)
        n, cd_size, eocd64 = len(self.central), self.pos - cd_offset, self.pos
        self._emit(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 45, 0, 0, n, n, cd_size,
                               cd_offset))
        self._emit(struct.pack("<IIQI", 0x07064B50, 0, eocd64, 1))
        self._emit(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
                               min(cd_size, _U32), min(cd_offset, _U32), 0))


# ----------------------------------------------------------------------------------------------
# Pickling: tensors reduce to torch._utils._rebuild_tensor_v2 over storages saved once each
# ----------------------------------------------------------------------------------------------

class _Global:
    """A global of the torch namespace, pickled by name (a GLOBAL opcode) without importing it."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce insists on a callable; never called
        raise TypeError(f"{self.module}.{self.name} is a name in a pickle, not a function")


_REBUILD_TENSOR_V2 = _Global("torch._utils", "_rebuild_tensor_v2")
_REBUILD_PARAMETER = _Global("torch._utils", "_rebuild_parameter")
_REBUILD_PARAMETER_WITH_STATE = _Global("torch._utils", "_rebuild_parameter_with_state")
_REBUILD_FROM_TYPE_V2 = _Global("torch._tensor", "_rebuild_from_type_v2")
_TORCH_TENSOR = _Global("torch", "Tensor")
_TORCH_SIZE = _Global("torch", "Size")
_TORCH_DEVICE = _Global("torch", "device")
_STORAGE_GLOBALS = {name: _Global("torch", cls) for name, cls in _STORAGE_OF.items()}


class _StorageGroup:
    """One saved storage: a block of memory that one or more of the saved tensors view."""

    def __init__(self, start: int, end: int, dtype, owner):
        self.start, self.end, self.dtype, self.owner = start, end, dtype, owner
        self.key = None

    def pid(self):
        numel = (self.end - self.start) // self.owner.element_size()
        return ("storage", _STORAGE_GLOBALS[_dtype_name(self.dtype)], self.key, "cpu", numel)

    def data(self):
        # No engine op exposes a whole storage (a view may cover only part of it), so its bytes
        # are read in place; `owner` keeps the memory alive while the record is written.
        if self.end == self.start:
            return b""
        return (ctypes.c_ubyte * (self.end - self.start)).from_address(self.start)


class _Storages:
    """Maps the tensors being saved to storages. Tensors on one engine storage share it; tensors
    made by `from_numpy` of views of one NumPy buffer have overlapping storages, which are
    merged so that the loaded tensors share memory as the saved ones did."""

    def __init__(self):
        self.tensors = []  # kept alive: ids and addresses stay valid until the file is written
        self.group_of = {}  # (storage address, nbytes) -> _StorageGroup
        self.ordered = []

    def add(self, t) -> None:
        self.tensors.append(t)

    def plan(self) -> None:
        spans = sorted(((t._storage_meta(), t) for t in self.tensors),
                       key=lambda s: (s[0][0], -s[0][1]))
        group = None
        for (addr, nbytes), t in spans:
            end = addr + nbytes
            if (addr, nbytes) in self.group_of:
                group = self.group_of[(addr, nbytes)]
            elif group is not None and addr < group.end:
                group.end = max(group.end, end)
            else:
                group = _StorageGroup(addr, end, t.dtype, t)
            if group.dtype != t.dtype or (t.data_ptr() - group.start) % t.element_size():
                raise RuntimeError("Cannot save multiple tensors or storages that view the "
                                   "same data as different types")
            self.group_of[(addr, nbytes)] = group

    def locate(self, t):
        """(storage group, element offset of t inside it); numbers groups in first-use order."""
        group = self.group_of[t._storage_meta()]
        if group.key is None:
            group.key = str(len(self.ordered))
            self.ordered.append(group)
        offset = (t.data_ptr() - group.start) // t.element_size() if t.numel() else 0
        return group, offset


def _base_pickler(pickle_module):
    # The pure-Python pickler lets a dispatch entry write GLOBAL opcodes for torch names.
    base = pickle._Pickler if pickle_module is pickle else pickle_module.Pickler
    if not hasattr(base, "dispatch"):
        raise TypeError(f"rustgrad.save needs a pickle module whose Pickler is written in Python "
                        f"(like pickle._Pickler), got {pickle_module!r}")
    return base


def _make_pickler(pickle_module):
    base = _base_pickler(pickle_module)

    class _TorchPickler(base):
        dispatch = dict(base.dispatch)

        def __init__(self, file, protocol, storages, collect):
            super().__init__(file, protocol)
            self.storages, self.collect = storages, collect

        def persistent_id(self, obj):
            return obj.pid() if type(obj) is _StorageGroup else None

        def reducer_override(self, obj):
            if isinstance(obj, Tensor):
                return self._reduce_tensor(obj)
            if type(obj) is Size:
                return _TORCH_SIZE, (tuple(obj),)
            if type(obj) is _C.device:
                args = (obj.type,) if obj.index is None else (obj.type, obj.index)
                return _TORCH_DEVICE, args
            return NotImplemented

        def _reduce_tensor(self, t):
            from .nn.parameter import Parameter
            state = dict(t.__dict__)
            if isinstance(t, Parameter):
                args = (t.detach(), t.requires_grad, collections.OrderedDict())
                if state:
                    return _REBUILD_PARAMETER_WITH_STATE, args + (state,)
                return _REBUILD_PARAMETER, args
            if self.collect:
                self.storages.add(t)
                group, offset = None, 0
            else:
                group, offset = self.storages.locate(t)
            args = (group, offset, tuple(t.shape), tuple(t.stride()), t.requires_grad,
                    collections.OrderedDict())
            if type(t) is Tensor and not state:
                return _REBUILD_TENSOR_V2, args
            new_type = _TORCH_TENSOR if type(t) is Tensor else type(t)
            return _REBUILD_FROM_TYPE_V2, (_REBUILD_TENSOR_V2, new_type, args, state)

        def save_torch_global(self, obj):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("utf-8"))
            self.memoize(obj)

        def save_dtype(self, obj):  # as torch pickles dtypes: the global torch.<name>
            self.write(pickle.GLOBAL + f"torch\n{_dtype_name(obj)}\n".encode("utf-8"))
            self.memoize(obj)

        dispatch[_Global] = save_torch_global
        dispatch[_C.dtype] = save_dtype

    return _TorchPickler


class _Discard:
    def write(self, data):
        return len(data)


def save(obj, f, pickle_module=pickle, pickle_protocol=2, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False) -> None:
    """Saves `obj` to `f` (a path or a binary file object) in PyTorch's zip checkpoint format.

    Each tensor becomes a `torch._utils._rebuild_tensor_v2` call over a storage written once
    to `data/<key>`, however many tensors view it; `torch.load` reads the file."""
    if not _use_new_zipfile_serialization:
        raise RuntimeError("rustgrad.save writes only PyTorch's zip format; the legacy format "
                           "(_use_new_zipfile_serialization=False) is not supported")
    pickler = _make_pickler(pickle_module)
    # Two passes: the first finds every tensor so that storages shared through overlapping
    # memory are known before the second pass writes persistent ids and offsets.
    storages = _Storages()
    pickler(_Discard(), pickle_protocol, storages, True).dump(obj)
    storages.plan()
    buf = io.BytesIO()
    pickler(buf, pickle_protocol, storages, False).dump(obj)

    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise RuntimeError(f"Parent directory {os.path.dirname(path)} does not exist.")
        with open(path, "wb") as out:
            _write_archive(out, _archive_name(path), buf.getbuffer(), storages,
                           not _disable_byteorder_record)
    else:
        if not hasattr(f, "write"):
            raise AttributeError(f"expected 'f' to be string, path, or a file-like object with "
                                 f"a 'write' attribute, got {type(f).__name__}")
        _write_archive(f, "archive", buf.getbuffer(), storages, not _disable_byteorder_record)
        if hasattr(f, "flush"):
            f.flush()


def _write_archive(out, archive, pickled, storages, byteorder) -> None:
    zf = _ZipWriter(out, archive)
    zf.write_record("data.pkl", pickled)
    zf.write_record(".format_version", b"1")
    zf.write_record(".storage_alignment", str(_ALIGNMENT).encode())
    if byteorder:
        zf.write_record("byteorder", sys.byteorder.encode())
    for group in storages.ordered:
        zf.write_record(f"data/{group.key}", group.data())
    zf.finish()


# ----------------------------------------------------------------------------------------------
# Unpickling: the rebuild functions, the allow-list, and storages read from the archive
# ----------------------------------------------------------------------------------------------

class _StorageType:
    """What a torch storage class (`torch.FloatStorage`...) names: the element dtype."""

    def __init__(self, torch_name: str, dtype_name: str):
        self.torch_name, self.dtype_name = torch_name, dtype_name

    def __repr__(self):
        return f"torch.{self.torch_name}"


class _Storage:
    """A storage read from the archive: a flat NumPy buffer that the tensors on it view."""

    def __init__(self, array):
        self.array = array
        self._base = None

    def view(self, offset, size, stride):
        _check_extent(self.array, offset, size, stride)
        if hasattr(Tensor, "as_strided"):
            # One engine storage for all views, so storage_offset() matches the file.
            if self._base is None:
                self._base = _C.from_numpy(self.array)
            return self._base.as_strided(tuple(size), tuple(stride), offset)
        # Without as_strided each view borrows its own window of the shared buffer: the
        # views share memory, but each reports storage_offset() == 0.
        item = self.array.itemsize
        window = np.lib.stride_tricks.as_strided(self.array[offset:], shape=tuple(size),
                                                 strides=tuple(s * item for s in stride))
        return _C.from_numpy(window)


def _check_extent(array, offset, size, stride) -> None:
    # A corrupt or hostile file must not make a view reach outside its storage.
    ints = all(type(v) is int for v in (offset, *size, *stride))
    if not ints or offset < 0 or min((*size, *stride), default=0) < 0 or len(size) != len(stride):
        raise RuntimeError(f"rustgrad.load: invalid tensor geometry: offset {offset}, size "
                           f"{tuple(size)}, stride {tuple(stride)}")
    if 0 not in size:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= array.size:
            raise RuntimeError(f"rustgrad.load: a tensor of size {tuple(size)} and stride "
                               f"{tuple(stride)} at offset {offset} does not fit in its storage "
                               f"of {array.size} elements")


def _rebuild_tensor(storage, storage_offset, size, stride):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"expected a storage, got {type(storage).__name__}")
    return storage.view(storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       metadata=None):
    t = _rebuild_tensor(storage, storage_offset, size, stride)
    return t.requires_grad_(True) if requires_grad else t


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       dtype, metadata=None):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"expected a storage, got {type(storage).__name__}")
    raw = storage.array.view(np.uint8).view(_numpy_dtype(_dtype_name(dtype)))
    t = _Storage(raw).view(storage_offset, size, stride)
    return t.requires_grad_(True) if requires_grad else t


def _set_obj_state(obj, state):
    # torch._utils._set_obj_state: a dict, or (dict, slots) as pickle's BUILD takes it.
    if isinstance(state, tuple):
        state, slots = state
        for k, v in (slots or {}).items():
            setattr(obj, k, v)
    for k, v in (state or {}).items():
        setattr(obj, k, v)
    return obj


def _rebuild_parameter(data, requires_grad, backward_hooks):
    from .nn.parameter import Parameter
    return Parameter(data, requires_grad)


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return _set_obj_state(_rebuild_parameter(data, requires_grad, backward_hooks), state)


def _rebuild_from_type_v2(func, new_type, args, state):
    ret = func(*args)
    if type(ret) is not new_type:
        if not (isinstance(new_type, type) and issubclass(new_type, Tensor)):
            raise pickle.UnpicklingError(f"cannot rebuild a tensor as {new_type!r}")
        ret = Tensor.__new__(new_type, _shares=ret.detach()).requires_grad_(ret.requires_grad)
    return _set_obj_state(ret, state)


def _numpy_dtype(name: str):
    if name not in _STORAGE_OF:
        raise RuntimeError(f"rustgrad.load: the file holds data of dtype torch.{name}, which "
                           f"rustgrad does not support (supported: "
                           f"{', '.join(_STORAGE_OF)})")
    return np.dtype(name)


def _safe_globals() -> dict:
    """What a weights_only load may name: PyTorch's default allow-list, mapped to rustgrad."""
    from .nn.parameter import Parameter
    table = {
        "collections.OrderedDict": collections.OrderedDict,
        "collections.Counter": collections.Counter,
        "torch._utils._rebuild_tensor": _rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
        "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter_with_state,
        "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
        "torch.nn.parameter.Parameter": Parameter,
        "torch.Tensor": Tensor,
        "torch.Size": Size,
        "torch.device": _C.device,
        "_codecs.encode": __import__("_codecs").encode,  # how protocol 2 pickles bytes
        "builtins.bytearray": bytearray,
        "builtins.set": set,
        "builtins.complex": complex,
    }
    for name, cls in _STORAGE_OF.items():
        table[f"torch.{name}"] = getattr(_C, name)
        table[f"torch.{cls}"] = _StorageType(cls, name)
    for cls, name in _UNSUPPORTED_STORAGES.items():
        table[f"torch.{cls}"] = _StorageType(cls, name)
    for qualified in ("torch.UntypedStorage", "torch.storage.UntypedStorage"):
        table[qualified] = _StorageType("UntypedStorage", "uint8")
    return table


_WEIGHTS_ONLY_HELP = (
    "Weights only load failed. rustgrad.load runs with weights_only=True by default, which only "
    "lets a file rebuild tensors, storages, containers, numbers, strings, dtypes, devices and "
    "sizes. {what} Re-running rustgrad.load with weights_only=False will likely succeed, but it "
    "can result in arbitrary code execution: do it only if you trust the source of the file.")


class _Archive:
    """The records of an open checkpoint: `data.pkl` and the storages, read on first use."""

    def __init__(self, f, mmap_path):
        self.zf = zipfile.ZipFile(f)
        names = self.zf.namelist()
        if not names:
            raise RuntimeError("PytorchStreamReader failed reading zip archive: archive does "
                               "not contain any files")
        first = names[0]
        if "/" not in first:
            raise RuntimeError(f"PytorchStreamReader failed reading zip archive: file in "
                               f"archive is not in a subdirectory: {first}")
        self.prefix = first[:first.index("/") + 1]
        self.records = {n[len(self.prefix):]: n for n in names if n.startswith(self.prefix)}
        if "data.pkl" not in self.records:
            if "constants.pkl" in self.records or any(n.startswith("code/") for n in self.records):
                raise RuntimeError("rustgrad.load: this file is a TorchScript archive "
                                   "(torch.jit.save), which rustgrad cannot load")
            raise RuntimeError(f"PytorchStreamReader failed locating file data.pkl: file not "
                               f"found in archive {self.prefix[:-1]}")
        order = self.read("byteorder").decode() if "byteorder" in self.records else "little"
        self.swap = order != sys.byteorder
        self.mmap_path = mmap_path

    def read(self, name):
        return self.zf.read(self.records[name])

    def storage(self, key, dtype, numel):
        name = f"data/{key}"
        if name not in self.records:
            raise RuntimeError(f"PytorchStreamReader failed locating file {name}: file not "
                               f"found in archive {self.prefix[:-1]}")
        info = self.zf.getinfo(self.records[name])
        if info.file_size != numel * dtype.itemsize:
            raise RuntimeError(f"rustgrad.load: record {name} holds {info.file_size} bytes, "
                               f"expected {numel} elements of {dtype.name}")
        if self.mmap_path is not None and info.compress_type == zipfile.ZIP_STORED and numel:
            array = np.memmap(self.mmap_path, dtype=dtype, mode="c",
                              offset=self._data_offset(info), shape=(numel,))
        else:
            array = np.empty(numel, dtype=dtype)
            with self.zf.open(info) as fh:
                fh.readinto(memoryview(array.view(np.uint8)))
        if self.swap and dtype.itemsize > 1:
            array = array.byteswap()
        return array

    def _data_offset(self, info):
        with open(self.mmap_path, "rb") as fh:
            fh.seek(info.header_offset)
            header = fh.read(30)
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        return info.header_offset + 30 + name_len + extra_len


def _restore_location(map_location):
    """The function that places one storage as `map_location` says (rustgrad is CPU-only)."""
    from . import cuda

    def place(location):
        location = str(location)
        if location.startswith("cuda") and not cuda.is_available():
            raise RuntimeError("Attempting to deserialize object on a CUDA device but "
                               "rustgrad.cuda.is_available() is False. If you are running on a "
                               "CPU-only machine, please use rustgrad.load with "
                               "map_location=rustgrad.device('cpu') to map your storages to "
                               "the CPU.")
        if location != "cpu" and not location.startswith("cpu:") and not location.startswith("cuda"):
            raise RuntimeError(f"don't know how to restore data location of "
                               f"rustgrad.storage.UntypedStorage (tagged with {location})")
        return None

    if map_location is None:
        return lambda array, location: place(location) or array
    if isinstance(map_location, (str, _C.device)):
        return lambda array, location: place(map_location) or array
    if isinstance(map_location, dict):
        return lambda array, location: place(map_location.get(location, location)) or array
    if callable(map_location):
        def call(array, location):
            # The callable sees the storage as torch passes it: untyped (a flat uint8 tensor).
            result = map_location(_C.from_numpy(array.view(np.uint8)), location)
            if result is None:
                place(location)
                return array
            if not isinstance(result, Tensor) or str(result.device) != "cpu":
                raise RuntimeError("rustgrad.load: map_location must return a CPU storage (a "
                                   "flat uint8 tensor) or None")
            return np.ascontiguousarray(result.detach().numpy()).view(np.uint8).view(array.dtype)
        return call
    raise ValueError(f"map_location should be either a function, a string or a dictionary, "
                     f"got {type(map_location).__name__}")


def _unpickler_class(base, archive, restore, weights_only):
    safe = _safe_globals()
    storages = {}

    class _Unpickler(base):
        def find_class(self, module, name):
            full = f"{module}.{name}"
            if module == "torch" and name in _UNSUPPORTED_DTYPES:
                _numpy_dtype(name)  # raises, naming the dtype
            if full in safe:
                return safe[full]
            if weights_only:
                raise pickle.UnpicklingError(_WEIGHTS_ONLY_HELP.format(
                    what=f"Unsupported global: GLOBAL {full} was not an allowed global."))
            if module == "torch" or module.startswith("torch."):
                return _torch_equivalent(module, name)
            return super().find_class(module, name)

        def persistent_load(self, pid):
            if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] in ("storage", b"storage")):
                raise pickle.UnpicklingError(f"rustgrad.load: unknown persistent id {pid!r}")
            _, kind, key, location, numel = pid
            if not isinstance(kind, _StorageType):
                raise pickle.UnpicklingError(f"rustgrad.load: {kind!r} is not a storage type")
            if isinstance(key, bytes):
                key, location = key.decode("ascii"), location.decode("ascii")
            if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
                raise pickle.UnpicklingError(f"rustgrad.load: malformed storage id {pid!r}")
            dtype = _numpy_dtype(kind.dtype_name)
            if key not in storages:
                storages[key] = _Storage(restore(archive.storage(key, dtype, numel), location))
            stored = storages[key]
            if stored.array.dtype != dtype:  # one storage viewed as another dtype
                return _Storage(stored.array.view(np.uint8).view(dtype))
            return stored

    return _Unpickler


def _torch_equivalent(module, name):
    # Full (weights_only=False) loads resolve torch's modules to rustgrad's namesakes, so a
    # pickled torch.nn.Linear becomes a rustgrad.nn.Linear; torch itself is never imported.
    import importlib
    try:
        return getattr(importlib.import_module("rustgrad" + module[len("torch"):]), name)
    except (ImportError, AttributeError):
        raise pickle.UnpicklingError(f"rustgrad.load: the file refers to {module}.{name}, "
                                     f"which rustgrad does not provide") from None


def _is_legacy(head: bytes) -> bool:
    # Legacy torch files start with a pickled magic number (protocol 2 LONG1 opcode).
    return head.startswith(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19")


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None,
         **pickle_load_args):
    """Loads an object saved with `rustgrad.save` or `torch.save` (zip format).

    weights_only=True unpickles through an allow-list: only tensors, storages, containers,
    numbers, strings, dtypes, devices and sizes; any other global is refused with
    `pickle.UnpicklingError` before anything runs. weights_only=False runs the full pickle.
    As in PyTorch, the default (None) means True unless a `pickle_module` is given."""
    if weights_only is None:
        weights_only = pickle_module is None
    if weights_only and pickle_module is not None:
        raise RuntimeError("Can not safely load weights when explicit pickle_module is specified")
    pickle_module = pickle if pickle_module is None else pickle_module
    mmap_path = None
    if mmap:
        if not isinstance(f, (str, os.PathLike)):
            raise ValueError("f must be a file path in order to use the mmap argument")
        mmap_path = os.fspath(f)

    opened = isinstance(f, (str, os.PathLike))
    fh = open(os.fspath(f), "rb") if opened else f
    try:
        start = fh.tell()
        head = fh.read(16)
        fh.seek(start)
        if not head:
            raise EOFError("Ran out of input")
        if not head.startswith(b"PK\x03\x04"):
            if _is_legacy(head):
                raise RuntimeError("rustgrad.load: this file uses PyTorch's legacy (pre-1.6, "
                                   "non-zip) format, which rustgrad does not read; re-save it "
                                   "with a current torch.save")
            raise pickle.UnpicklingError("rustgrad.load: the file is not a PyTorch zip "
                                         "checkpoint (no zip header)")
        archive = _Archive(fh, mmap_path)
        restore = _restore_location(map_location)
        base = pickle.Unpickler if weights_only else pickle_module.Unpickler
        unpickler_cls = _unpickler_class(base, archive, restore, weights_only)
        data = io.BytesIO(archive.read("data.pkl"))
        if weights_only:
            unpickler = unpickler_cls(data, encoding=pickle_load_args.get("encoding", "utf-8"))
            return unpickler.load()
        return unpickler_cls(data, **pickle_load_args).load()
    finally:
        if opened:
            fh.close()

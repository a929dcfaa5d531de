# The safetensors format, read and written directly: an 8-byte little-endian header length, a
# JSON header (dtype, shape, data_offsets per tensor, optional "__metadata__"), then raw data.
from __future__ import annotations

import json
import os
import struct

import numpy as np

from .. import _C

__all__ = ["save_safetensors", "load_safetensors"]

Tensor = _C.Tensor

_CODE_OF = {"float64": "F64", "float32": "F32", "int64": "I64", "int32": "I32", "uint8": "U8",
            "bool": "BOOL"}
_DTYPE_OF = {code: name for name, code in _CODE_OF.items()}
# safetensors orders tensors by its dtype enum, largest first, then by name.
_RANK = {"I64": 0, "F64": 1, "F32": 2, "I32": 3, "U8": 4, "BOOL": 5}
_KNOWN_CODES = {"F16", "BF16", "I8", "I16", "U16", "U32", "U64", "F8_E5M2", "F8_E4M3",
                "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"}
_MAX_HEADER = 100_000_000  # the reference implementation's limit


def _little_endian(array):
    return array.astype(array.dtype.newbyteorder("<"), copy=False)


def save_safetensors(tensors, path, metadata=None) -> None:
    """Writes `tensors` (a dict name -> Tensor) to `path` in the safetensors format, each as a
    contiguous copy of its values. `metadata` is an optional dict of str -> str."""
    if not isinstance(tensors, dict):
        raise TypeError(f"save_safetensors expects a dict of tensors, got {type(tensors).__name__}")
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("save_safetensors: metadata must be a dict of str -> str")
    entries = []
    for name, t in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"save_safetensors: tensor names must be str, got {type(name).__name__}")
        if name == "__metadata__":
            raise ValueError("save_safetensors: '__metadata__' is reserved and cannot name a tensor")
        if not isinstance(t, Tensor):
            raise TypeError(f"save_safetensors: '{name}' is a {type(t).__name__}, not a Tensor")
        dtype = str(t.dtype).rsplit(".", 1)[1]
        array = np.ascontiguousarray(_little_endian(t.detach().numpy())).reshape(-1)
        entries.append((_RANK[_CODE_OF[dtype]], name, _CODE_OF[dtype], list(t.shape), array))
    entries.sort(key=lambda e: (e[0], e[1]))

    header, offset = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for _, name, code, shape, array in entries:
        header[name] = {"dtype": code, "shape": shape,
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the reference pads
    with open(os.fspath(path), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for *_, array in entries:
            f.write(memoryview(array.view(np.uint8)))


def _invalid(message):
    return ValueError(f"load_safetensors: {message}")


def _read_header(blob):
    if len(blob) < 8:
        raise _invalid("file too short to hold a header length (HeaderTooSmall)")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > _MAX_HEADER:
        raise _invalid(f"header length {n} is too large (HeaderTooLarge)")
    if 8 + n > len(blob):
        raise _invalid(f"header length {n} runs past the end of the file (InvalidHeaderLength)")
    text = bytes(blob[8:8 + n])
    if not text.startswith(b"{"):
        raise _invalid("header does not start with '{' (InvalidHeaderStart)")
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise _invalid(f"header is not valid JSON (InvalidHeaderDeserialization): {err}") from None
    if not isinstance(header, dict):
        raise _invalid("header is not a JSON object (InvalidHeaderDeserialization)")
    return header, 8 + n


def _tensor_info(name, info):
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise _invalid(f"entry '{name}' must hold exactly dtype, shape and data_offsets")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if code not in _DTYPE_OF:
        if code in _KNOWN_CODES:
            raise _invalid(f"tensor '{name}' has dtype {code}, which rustgrad does not support "
                           f"(supported: {', '.join(_DTYPE_OF)})")
        raise _invalid(f"tensor '{name}' has an unknown dtype {code!r}")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise _invalid(f"tensor '{name}' has an invalid shape {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(type(o) is int and o >= 0 for o in offsets) and offsets[0] <= offsets[1]):
        raise _invalid(f"tensor '{name}' has invalid data_offsets {offsets!r}")
    dtype = np.dtype(_DTYPE_OF[code])
    if offsets[1] - offsets[0] != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
        raise _invalid(f"tensor '{name}': data_offsets {offsets} do not match shape {shape} "
                       f"and dtype {code} (TensorInvalidInfo)")
    return dtype, shape, offsets


def load_safetensors(path) -> dict:
    """Reads a safetensors file into a dict name -> Tensor (names in sorted order), checking
    that the header is well formed and that the tensors tile the data section exactly."""
    with open(os.fspath(path), "rb") as f:
        blob = f.read()
    header, start = _read_header(blob)
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict) and all(
            isinstance(v, str) for v in metadata.values())):
        raise _invalid("__metadata__ must map str to str")
    infos = {name: _tensor_info(name, info) for name, info in header.items()}

    end = 0
    for name, (_, _, (begin, stop)) in sorted(infos.items(), key=lambda kv: kv[1][2]):
        if begin != end:
            raise _invalid(f"tensor '{name}' starts at {begin}, expected {end}: tensors must "
                           f"tile the data section without gaps or overlaps (InvalidOffset)")
        end = stop
    if start + end != len(blob):
        raise _invalid(f"the data section holds {len(blob) - start} bytes but the header "
                       f"describes {end} (MetadataIncompleteBuffer)")

    out = {}
    for name in sorted(infos):
        dtype, shape, (begin, stop) = infos[name]
        raw = np.frombuffer(blob, dtype=np.uint8, count=stop - begin, offset=start + begin)
        array = raw.view(dtype.newbyteorder("<")).astype(dtype).reshape(shape)  # own aligned copy
        out[name] = _C.from_numpy(array)
    return out

# rustgrad.save / rustgrad.load (PyTorch's zip checkpoint format) against NumPy and against
# torch.save / torch.load in both directions, the weights_only allow-list, and safetensors.
import collections
import importlib
import io
import json
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

import rustgrad as rg
from _helpers import DTYPE_NAMES, assert_same, pair, requires_torch, to_numpy, torch_or_none

IS_TORCH = rg.__name__ == "torch"  # RUSTGRAD_TEST_BACKEND=torch
rustgrad_only = pytest.mark.skipif(IS_TORCH, reason="rustgrad behaviour beyond PyTorch's")
torch = torch_or_none()
# Without Tensor.as_strided, loaded views share memory but report storage_offset() == 0.
HAS_AS_STRIDED = hasattr(rg.Tensor, "as_strided")


def _fn(name):
    # rustgrad.save/load once the namespace exports them; the module until then.
    if hasattr(rg, name):
        return getattr(rg, name)
    return getattr(importlib.import_module("rustgrad.serialization"), name)


save, load = _fn("save"), _fn("load")


def roundtrip(obj, **load_args):
    buf = io.BytesIO()
    save(obj, buf)
    buf.seek(0)
    return load(buf, **load_args)


def records(data):
    """Record names of an archive (without the folder) -> bytes."""
    zf = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    return {n.split("/", 1)[1]: zf.read(n) for n in zf.namelist()}


def _np_dtype(name):
    return np.dtype(name)


def _values(shape, dtype, seed=0):
    return pair(shape, dtype, seed=seed)[1]


# ---------------------------------------------------------------- rustgrad -> rustgrad


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("layout", ["contig", "T", "step"])
def test_roundtrip_every_dtype_and_layout(dtype, layout):
    t, expected = pair((3, 4), dtype, layout)
    out = roundtrip(t)
    assert_same(out, expected)
    assert out.stride() == t.stride()
    if HAS_AS_STRIDED:
        assert out.storage_offset() == t.storage_offset()
    assert not out.requires_grad


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_roundtrip_zero_dim_and_empty(dtype):
    scalar = rg.tensor(np.array(_values((1,), dtype)[0]))
    empty = rg.tensor(np.zeros((0, 3), _np_dtype(dtype)))
    out = roundtrip({"s": scalar, "e": empty})
    assert_same(out["s"], to_numpy(scalar))
    assert tuple(out["s"].shape) == ()
    assert_same(out["e"], np.zeros((0, 3), _np_dtype(dtype)))


def test_views_share_one_storage_after_load():
    base = rg.arange(24.0)
    obj = {"base": base, "rows": base[4:16].view(3, 4), "t": base.view(4, 6).t(),
           "step": base[::5], "again": base}
    buf = io.BytesIO()
    save(obj, buf)
    data = [name for name in records(buf.getvalue()) if name.startswith("data/")]
    assert data == ["data/0"]  # one storage, written once
    buf.seek(0)
    out = load(buf)
    assert out["again"] is out["base"]  # the same object stays one object
    for key in ("rows", "t", "step"):
        assert_same(out[key], to_numpy(obj[key]))
        assert out[key].stride() == obj[key].stride()
        if HAS_AS_STRIDED:
            assert out[key].storage_offset() == obj[key].storage_offset()
    out["rows"][0, 1] = 100.0  # base[5]
    assert out["base"][5].item() == 100.0
    assert out["t"][5, 0].item() == 100.0
    assert out["step"][1].item() == 100.0


@rustgrad_only
def test_overlapping_from_numpy_views_are_saved_as_one_storage():
    buf = np.arange(20, dtype=np.float64)
    a, b = rg.from_numpy(buf[2:12]), rg.from_numpy(buf[::4])
    apart = rg.from_numpy(np.arange(3, dtype=np.float64))
    out_buf = io.BytesIO()
    save([a, b, apart], out_buf)
    assert sorted(n for n in records(out_buf.getvalue()) if n.startswith("data/")) == \
        ["data/0", "data/1"]
    out_buf.seek(0)
    la, lb, lapart = load(out_buf)
    assert_same(la, buf[2:12])
    assert_same(lb, buf[::4])
    la[2] = -1.0  # buf[4] == b[1]
    assert lb[1].item() == -1.0
    # A loaded set of views saves back to one storage again.
    again = io.BytesIO()
    save([la, lb], again)
    assert [n for n in records(again.getvalue()) if n.startswith("data/")] == ["data/0"]


def test_requires_grad_and_parameters():
    leaf = rg.tensor([1.0, 2.0], requires_grad=True)
    nonleaf = leaf * 2
    p = rg.nn.Parameter(rg.tensor([[1.0, 2.0]]))
    frozen = rg.nn.Parameter(rg.ones(2), requires_grad=False)
    out = roundtrip({"leaf": leaf, "nonleaf": nonleaf, "p": p, "frozen": frozen, "p2": p})
    assert out["leaf"].requires_grad and out["leaf"].is_leaf
    assert out["nonleaf"].requires_grad and out["nonleaf"].is_leaf
    assert_same(out["nonleaf"], np.array([2.0, 4.0], np.float32))
    assert isinstance(out["p"], rg.nn.Parameter) and out["p"].requires_grad
    assert isinstance(out["frozen"], rg.nn.Parameter) and not out["frozen"].requires_grad
    assert out["p2"] is out["p"]
    assert_same(out["p"], np.array([[1.0, 2.0]], np.float32))
    (out["p"] * 3).sum().backward()
    assert_same(out["p"].grad, np.full((1, 2), 3.0, np.float32))


def test_nested_containers():
    t = rg.arange(6).view(2, 3)
    obj = collections.OrderedDict(
        a=[1, 2.5, "x", None, True, (t, {"inner": t[1]})],
        b={0: t, 7: {"deep": [rg.ones(1)]}},
        c=(), d=b"bytes", e=rg.Size([2, 3]), f=rg.float64, g=rg.device("cpu"), h=-(2 ** 70))
    out = roundtrip(obj)
    assert type(out) is collections.OrderedDict and list(out) == list(obj)
    assert out["a"][:5] == [1, 2.5, "x", None, True]
    assert_same(out["a"][5][0], to_numpy(t))
    assert_same(out["a"][5][1]["inner"], to_numpy(t[1]))
    assert list(out["b"]) == [0, 7]
    assert_same(out["b"][7]["deep"][0], np.ones(1, np.float32))
    assert out["c"] == () and out["d"] == b"bytes" and out["h"] == -(2 ** 70)
    assert out["e"] == rg.Size([2, 3]) and type(out["e"]) is rg.Size
    assert out["f"] is rg.float64
    assert out["g"] == rg.device("cpu")
    out["a"][5][1]["inner"][0] = 50  # t[1, 0] in the loaded storage
    assert out["b"][0][1, 0].item() == 50


def test_paths_and_archive_layout(tmp_path):
    t = rg.arange(5.0)
    for target in (str(tmp_path / "model.pt"), tmp_path / "other.bin"):
        save({"t": t}, target)
        assert_same(load(target)["t"], np.arange(5.0, dtype=np.float32))
    zf = zipfile.ZipFile(tmp_path / "model.pt")
    assert zf.namelist() == ["model/data.pkl", "model/.format_version",
                             "model/.storage_alignment", "model/byteorder", "model/data/0",
                             "model/version", "model/.data/serialization_id"]
    assert zf.read("model/version") == b"3\n" and zf.read("model/byteorder") == b"little"
    raw = (tmp_path / "model.pt").read_bytes()
    for info in zf.infolist():  # every record's data is 64-byte aligned, stored uncompressed
        name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
        assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0
        assert info.compress_type == zipfile.ZIP_STORED
    buf = io.BytesIO()
    save(t, buf)
    assert zipfile.ZipFile(buf).namelist()[0] == "archive/data.pkl"
    with pytest.raises(RuntimeError, match="does not exist"):
        save(t, str(tmp_path / "missing" / "x.pt"))


def test_file_objects_open_in_binary_mode(tmp_path):
    path = tmp_path / "f.pt"
    with open(path, "wb") as f:
        save([rg.ones(2, dtype=rg.int32)], f)
    with open(path, "rb") as f:
        (out,) = load(f)
    assert_same(out, np.ones(2, np.int32))


@pytest.mark.parametrize("where", ["cpu", "device", "dict", "callable", "mmap"])
def test_map_location_and_mmap(tmp_path, where):
    path = tmp_path / "m.pt"
    save({"a": rg.arange(6.0).view(2, 3), "b": rg.tensor([1, 2])}, path)
    args = {"cpu": dict(map_location="cpu"), "device": dict(map_location=rg.device("cpu")),
            "dict": dict(map_location={"cpu": "cpu"}),
            "callable": dict(map_location=lambda storage, loc: storage),
            "mmap": dict(mmap=True)}[where]
    out = load(path, **args)
    assert_same(out["a"], np.arange(6.0, dtype=np.float32).reshape(2, 3))
    assert_same(out["b"], np.array([1, 2]))
    out["a"][0, 0] = 9.0  # mmap loads are private copies: the file does not change
    assert_same(load(path)["a"][0], np.arange(3.0, dtype=np.float32))


def test_load_argument_errors(tmp_path):
    buf = io.BytesIO()
    save(rg.ones(2), buf)
    buf.seek(0)
    with pytest.raises(RuntimeError, match="CUDA"):
        load(buf, map_location="cuda")
    buf.seek(0)
    with pytest.raises(ValueError, match="file path"):
        load(buf, mmap=True)
    buf.seek(0)
    with pytest.raises(RuntimeError, match="explicit pickle_module"):
        load(buf, pickle_module=pickle, weights_only=True)
    buf.seek(0)
    assert_same(load(buf, pickle_module=pickle), np.ones(2, np.float32))  # full pickle
    with pytest.raises(Exception):
        load(io.BytesIO(b"not a checkpoint at all"))


# ---------------------------------------------------------------- weights_only


def _archive_with_pickle(payload: bytes) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")
    buf.seek(0)
    return buf


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


class _EvilOpen:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


@pytest.mark.parametrize("kind", ["system", "open", "eval"])
def test_malicious_pickle_refused_without_side_effects(tmp_path, kind):
    marker = tmp_path / "pwned"
    if kind == "system":
        payload = pickle.dumps({"w": _Evil(marker)}, protocol=2)
        name = "system"
    elif kind == "open":
        payload = pickle.dumps([_EvilOpen(str(marker))], protocol=2)
        name = "open"
    else:
        payload = (b"\x80\x02cbuiltins\neval\nX" + struct.pack("<I", 30)
                   + f"open({str(marker)!r}, 'w')".ljust(30).encode() + b"\x85R.")
        name = "eval"
    with pytest.raises(pickle.UnpicklingError) as err:
        load(_archive_with_pickle(payload))
    assert name in str(err.value) and "weights_only" in str(err.value)
    assert not marker.exists()


def _tensor_pickle(numel, size):
    # data.pkl of a float tensor of `size` on a storage of `numel` elements, written by hand.
    u = lambda text: b"X" + struct.pack("<I", len(text)) + text.encode()  # noqa: E731
    return (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((" + u("storage")
            + b"ctorch\nFloatStorage\n" + u("0") + u("cpu") + b"K" + bytes([numel]) + b"tQK\x00K"
            + bytes([size]) + b"\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR.")


def test_hostile_geometry_cannot_reach_outside_its_storage():
    buf = _archive_with_pickle(_tensor_pickle(4, 3))
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr("archive/data/0", np.arange(4, dtype="<f4").tobytes())
    buf.seek(0)
    assert_same(load(buf), np.arange(3, dtype=np.float32))
    bad = _archive_with_pickle(_tensor_pickle(4, 100))
    with zipfile.ZipFile(bad, "a") as zf:
        zf.writestr("archive/data/0", np.arange(4, dtype="<f4").tobytes())
    bad.seek(0)
    with pytest.raises(RuntimeError):
        load(bad)


class Config:  # an arbitrary class: refused by weights_only, restored by a full load
    def __init__(self, width):
        self.width = width


def test_weights_only_refuses_other_globals_but_full_load_restores_them():
    buf = io.BytesIO()
    save({"cfg": Config(3), "w": rg.ones(1)}, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match="Config"):
        load(buf)
    buf.seek(0)
    out = load(buf, weights_only=False)
    assert isinstance(out["cfg"], Config) and out["cfg"].width == 3
    assert_same(out["w"], np.ones(1, np.float32))


def test_whole_module_save_load():
    rg.manual_seed(0)
    net = rg.nn.Sequential(rg.nn.Conv2d(2, 3, 3), rg.nn.BatchNorm2d(3), rg.nn.ReLU(),
                           rg.nn.Flatten(), rg.nn.Linear(12, 2))
    buf = io.BytesIO()
    save(net, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        load(buf)
    buf.seek(0)
    copy = load(buf, weights_only=False)
    assert type(copy) is type(net) and repr(copy) == repr(net)
    x = rg.randn(4, 2, 4, 4)
    net.eval(), copy.eval()
    assert_same(copy(x), to_numpy(net(x)))
    for (k, a), (k2, b) in zip(net.state_dict().items(), copy.state_dict().items()):
        assert k == k2
        assert_same(b, to_numpy(a))
    assert all(isinstance(p, rg.nn.Parameter) for p in copy.parameters())
    copy.train()
    copy(x).sum().backward()
    assert copy[0].weight.grad is not None


# ---------------------------------------------------------------- torch -> rustgrad


def _torch_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                               torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(16, 5))


def _cast(sd, dtype):
    tdtype = getattr(torch, dtype)
    if dtype == "bool":
        return collections.OrderedDict((k, v > 0) for k, v in sd.items())
    if dtype in ("float32", "float64"):
        return collections.OrderedDict((k, v.to(tdtype)) for k, v in sd.items())
    return collections.OrderedDict((k, (v * 10).to(tdtype)) for k, v in sd.items())


@requires_torch
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_torch_state_dict_every_dtype(tmp_path, dtype):
    sd = _cast(_torch_net().state_dict(), dtype)
    torch.save(sd, tmp_path / "sd.pt")
    out = load(tmp_path / "sd.pt")
    assert type(out) is collections.OrderedDict and list(out) == list(sd)
    for key, value in sd.items():
        assert_same(out[key], value)


@requires_torch
def test_torch_views_offsets_strides_share_storage(tmp_path):
    base = torch.arange(24.0, dtype=torch.float64).view(4, 6)
    views = {"base": base, "block": base[1:3, 2:5], "t": base.t(), "col": base[:, 1],
             "step": base[::2, ::3], "expand": base[0].expand(3, 6), "flat": base.view(-1)[7:]}
    torch.save(views, tmp_path / "v.pt")
    out = load(tmp_path / "v.pt")
    for key, value in views.items():
        assert_same(out[key], value)
        assert out[key].stride() == value.stride(), key
        if HAS_AS_STRIDED:
            assert out[key].storage_offset() == value.storage_offset(), key
    out["base"][1, 2] = -5.0
    assert out["block"][0, 0].item() == -5.0 and out["t"][2, 1].item() == -5.0
    assert out["flat"][1].item() == -5.0


@requires_torch
def test_torch_parameters_sizes_devices_dtypes(tmp_path):
    obj = {"p": torch.nn.Parameter(torch.ones(2, 3)),
           "q": torch.nn.Parameter(torch.zeros(1), requires_grad=False),
           "g": torch.ones(2, requires_grad=True), "size": torch.Size([3, 4]),
           "dev": torch.device("cpu"), "dt": torch.int32, "n": torch.tensor(7)}
    torch.save(obj, tmp_path / "p.pt")
    out = load(tmp_path / "p.pt")
    assert isinstance(out["p"], rg.nn.Parameter) and out["p"].requires_grad
    assert isinstance(out["q"], rg.nn.Parameter) and not out["q"].requires_grad
    assert out["g"].requires_grad and out["g"].is_leaf
    assert out["size"] == rg.Size([3, 4]) and out["dev"] == rg.device("cpu")
    assert out["dt"] is rg.int32 and out["n"].item() == 7


@requires_torch
def test_torch_optimizer_state_dict(tmp_path):
    net = _torch_net()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.randn(2, 3, 4, 4)).sum().backward()
    opt.step()
    sd = opt.state_dict()
    torch.save(sd, tmp_path / "opt.pt")
    out = load(tmp_path / "opt.pt")
    assert sorted(out["state"]) == sorted(sd["state"]) and all(type(k) is int for k in out["state"])
    for idx, state in sd["state"].items():
        assert sorted(out["state"][idx]) == sorted(state)
        for key, value in state.items():
            assert_same(out["state"][idx][key], value)
    assert out["param_groups"] == sd["param_groups"]


@requires_torch
def test_torch_module_pickle_loads_as_rustgrad_module(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh())
    torch.save(net, tmp_path / "net.pt")
    with pytest.raises(pickle.UnpicklingError):
        load(tmp_path / "net.pt")
    copy = load(tmp_path / "net.pt", weights_only=False)
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    assert_same(copy(rg.tensor(x)), net(torch.from_numpy(x)).detach(), rtol=1e-5)


@requires_torch
@rustgrad_only
def test_torch_files_rustgrad_cannot_read(tmp_path):
    torch.save({"h": torch.ones(2, dtype=torch.float16)}, tmp_path / "half.pt")
    with pytest.raises(RuntimeError, match="float16"):
        load(tmp_path / "half.pt")
    torch.save({"dtype": torch.bfloat16}, tmp_path / "dtype.pt")
    with pytest.raises(RuntimeError, match="bfloat16"):
        load(tmp_path / "dtype.pt")
    torch.save(torch.ones(2), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(RuntimeError, match="legacy"):
        load(tmp_path / "legacy.pt")


# ---------------------------------------------------------------- rustgrad -> torch


@requires_torch
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_torch_reads_rustgrad_files(tmp_path, dtype):
    contig, c_np = pair((3, 4), dtype)
    strided, s_np = pair((4, 2), dtype, "T", seed=1)
    stepped, st_np = pair((2, 3), dtype, "step", seed=2)
    save({"c": contig, "s": strided, "st": stepped, "z": contig[1, 2]}, tmp_path / "r.pt")
    out = torch.load(tmp_path / "r.pt", weights_only=True)
    for key, expected in (("c", c_np), ("s", s_np), ("st", st_np), ("z", c_np[1, 2])):
        assert str(out[key].dtype) == f"torch.{dtype}"
        np.testing.assert_array_equal(out[key].numpy(), expected)
    assert out["s"].stride() == strided.stride()


@requires_torch
def test_torch_sees_shared_views_and_parameters(tmp_path):
    base = rg.arange(12.0)
    p = rg.nn.Parameter(rg.ones(2, 2))
    save({"base": base, "view": base[3:9].view(2, 3), "p": p, "size": rg.Size([1, 2]),
          "dt": rg.uint8, "dev": rg.device("cpu")}, tmp_path / "s.pt")
    out = torch.load(tmp_path / "s.pt", weights_only=True)
    out["base"][4] = 100.0
    assert out["view"][0, 1].item() == 100.0
    assert out["view"].untyped_storage().data_ptr() == out["base"].untyped_storage().data_ptr()
    assert isinstance(out["p"], torch.nn.Parameter) and out["p"].requires_grad
    assert out["size"] == torch.Size([1, 2]) and out["dt"] is torch.uint8
    assert out["dev"] == torch.device("cpu")


@requires_torch
def test_rustgrad_state_dicts_load_into_torch(tmp_path):
    rg.manual_seed(1)
    net = rg.nn.Sequential(rg.nn.Conv2d(3, 4, 3), rg.nn.BatchNorm2d(4), rg.nn.ReLU(),
                           rg.nn.Flatten(), rg.nn.Linear(16, 5))
    opt = rg.optim.Adam(net.parameters(), lr=0.01)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    net(rg.tensor(x)).sum().backward()
    opt.step()
    save(net.state_dict(), tmp_path / "net.pt")
    save(opt.state_dict(), tmp_path / "opt.pt")
    tnet = _torch_net()
    tnet.load_state_dict(torch.load(tmp_path / "net.pt", weights_only=True))
    net.eval(), tnet.eval()
    assert_same(net(rg.tensor(x)), tnet(torch.from_numpy(x)).detach(), rtol=1e-5, atol=1e-5)
    tsd = torch.load(tmp_path / "opt.pt", weights_only=True)
    sd = opt.state_dict()
    assert tsd["param_groups"] == sd["param_groups"]
    for idx, state in sd["state"].items():
        for key, value in state.items():
            assert_same(tsd["state"][idx][key], to_numpy(value) if hasattr(value, "shape")
                        else value, dtype=None if hasattr(value, "shape") else "float32")


@requires_torch
@rustgrad_only
def test_records_identical_to_torch_save(tmp_path):
    # Same object graph -> the same archive, record for record (the serialization id aside).
    rbase = rg.arange(10.0)
    tbase = torch.arange(10.0)

    def build(m, base):
        return collections.OrderedDict(
            a=base, b=base[2:5], t=base.view(2, 5).t(), p=m.nn.Parameter(m.ones(2)),
            i=m.tensor([1, 2, 3]), e=m.ones(0), dt=m.float64, dev=m.device("cpu"),
            sz=m.Size([2, 3]), n=[1, 2.5, None, "s", (True,)])

    (tmp_path / "r").mkdir(), (tmp_path / "t").mkdir()
    save(build(rg, rbase), tmp_path / "r" / "ck.pt")
    torch.save(build(torch, tbase), tmp_path / "t" / "ck.pt")
    ours, theirs = (tmp_path / "r" / "ck.pt").read_bytes(), (tmp_path / "t" / "ck.pt").read_bytes()
    assert len(ours) == len(theirs)
    r, t = records(ours), records(theirs)
    assert list(r) == list(t)
    for name in r:
        if name != ".data/serialization_id":
            assert r[name] == t[name], name
    assert len(r[".data/serialization_id"]) == 40


# ---------------------------------------------------------------- safetensors


def _st():
    if hasattr(rg, "save_safetensors"):
        return rg.save_safetensors, rg.load_safetensors
    try:
        mod = importlib.import_module("rustgrad.utils.safetensors")
    except ImportError:
        pytest.skip("no safetensors support in this backend")
    return mod.save_safetensors, mod.load_safetensors


def test_safetensors_roundtrip(tmp_path):
    save_st, load_st = _st()
    tensors, expected = {}, {}
    for i, dtype in enumerate(DTYPE_NAMES):
        tensors[f"{dtype}.T"], expected[f"{dtype}.T"] = pair((3, 2), dtype, "T", seed=i)
        tensors[f"{dtype}.0d"] = rg.tensor(np.array(_values((1,), dtype, seed=i)[0]))
        expected[f"{dtype}.0d"] = to_numpy(tensors[f"{dtype}.0d"])
        tensors[f"{dtype}.empty"] = rg.tensor(np.zeros((0, 2), _np_dtype(dtype)))
        expected[f"{dtype}.empty"] = np.zeros((0, 2), _np_dtype(dtype))
    path = tmp_path / "m.safetensors"
    save_st(tensors, path, metadata={"format": "pt", "note": "x"})
    out = load_st(path)
    assert sorted(out) == sorted(tensors)
    for name, value in expected.items():
        assert_same(out[name], value)
        assert out[name].is_contiguous()

    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0
    header = json.loads(raw[8:8 + n])
    assert header["__metadata__"] == {"format": "pt", "note": "x"}
    info = header["float64.T"]
    assert info["dtype"] == "F64" and info["shape"] == [3, 2]
    begin, end = info["data_offsets"]
    data = np.frombuffer(raw[8 + n + begin:8 + n + end], dtype="<f8").reshape(3, 2)
    np.testing.assert_array_equal(data, expected["float64.T"])
    codes = {header[f"{d}.0d"]["dtype"] for d in DTYPE_NAMES}
    assert codes == {"F32", "F64", "I64", "I32", "U8", "BOOL"}


def test_safetensors_matches_the_reference_package(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    save_st, load_st = _st()
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.arange(4),
              "m": np.array([True, False])}
    st_numpy.save_file(arrays, str(tmp_path / "ref.safetensors"))
    for name, value in load_st(tmp_path / "ref.safetensors").items():
        assert_same(value, arrays[name])
    save_st({k: rg.tensor(v) for k, v in arrays.items()}, tmp_path / "ours.safetensors")
    for name, value in st_numpy.load_file(str(tmp_path / "ours.safetensors")).items():
        np.testing.assert_array_equal(value, arrays[name])


def _write_raw(path, header, data=b""):
    text = json.dumps(header).encode() if isinstance(header, dict) else header
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


@pytest.mark.parametrize("case, match", [
    ("short", "too short"),
    ("huge", "too large"),
    ("past_end", "past the end"),
    ("not_json", "JSON"),
    ("half", "F16"),
    ("unknown", "unknown dtype"),
    ("size_mismatch", "do not match"),
    ("gap", "tile"),
    ("trailing", "data section"),
    ("bad_shape", "shape"),
])
def test_safetensors_bad_files(tmp_path, case, match):
    _, load_st = _st()
    path = tmp_path / "bad.safetensors"
    good = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    if case == "short":
        path.write_bytes(b"\x01\x02")
    elif case == "huge":
        path.write_bytes(struct.pack("<Q", 2 ** 40) + b"{}")
    elif case == "past_end":
        path.write_bytes(struct.pack("<Q", 100) + b"{}")
    elif case == "not_json":
        _write_raw(path, b"{not json}")
    elif case == "half":
        _write_raw(path, {"h": dict(good, dtype="F16", data_offsets=[0, 4])}, bytes(4))
    elif case == "unknown":
        _write_raw(path, {"h": dict(good, dtype="Q7")}, bytes(8))
    elif case == "size_mismatch":
        _write_raw(path, {"a": dict(good, data_offsets=[0, 12])}, bytes(12))
    elif case == "gap":
        _write_raw(path, {"a": good, "b": dict(good, data_offsets=[12, 20])}, bytes(20))
    elif case == "trailing":
        _write_raw(path, {"a": good}, bytes(12))
    elif case == "bad_shape":
        _write_raw(path, {"a": dict(good, shape=[-2])}, bytes(8))
    with pytest.raises(ValueError, match=match):
        load_st(path)


def test_safetensors_save_errors(tmp_path):
    save_st, _ = _st()
    with pytest.raises(TypeError):
        save_st({"a": np.ones(2)}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError):
        save_st({"a": rg.ones(2)}, tmp_path / "x.safetensors", metadata={"k": 1})
    with pytest.raises(TypeError):
        save_st([rg.ones(2)], tmp_path / "x.safetensors")

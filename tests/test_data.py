# rustgrad.utils.data: datasets, samplers, default_collate/default_convert and the DataLoader
# (single-process and with worker processes), checked by value and against torch.utils.data.
import collections
import gc
import importlib
import multiprocessing
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import conftest  # noqa: F401  (spawned workers import this module without pytest's setup)
import rustgrad as rg
from _helpers import assert_same, dtype_name, requires_torch, to_numpy, torch_or_none

# Under RUSTGRAD_TEST_BACKEND=torch, `rustgrad` is torch and this is torch.utils.data.
data = importlib.import_module(rg.__name__ + ".utils.data")
torch = torch_or_none()
tdata = importlib.import_module("torch.utils.data") if torch is not None else None

Point = collections.namedtuple("Point", ["x", "y"])


# ---------------------------------------------------------------- helpers

def structure(obj):
    """A comparable description of a batch: tensors become (dtype, shape, values)."""
    if hasattr(obj, "dtype") and hasattr(obj, "shape") and not isinstance(obj, np.ndarray):
        return ("tensor", dtype_name(obj.dtype), tuple(obj.shape), to_numpy(obj).tolist())
    if isinstance(obj, np.ndarray):
        return ("ndarray", str(obj.dtype), obj.tolist())
    if isinstance(obj, dict):
        return (type(obj).__name__, {k: structure(v) for k, v in obj.items()})
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return (type(obj).__name__, [structure(v) for v in obj])
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [structure(v) for v in obj])
    return (type(obj).__name__, obj)


def tensor_like(mod, t):
    """A rustgrad tensor's values as a tensor of `mod` (rustgrad or torch)."""
    return mod.from_numpy(np.array(to_numpy(t), copy=True))


def alive(pid):
    """True while `pid` exists, zombies included (a zombie still has its /proc entry)."""
    return os.path.exists(f"/proc/{pid}")


def wait_gone(pids, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


# ---------------------------------------------------------------- datasets (module level so
# that worker processes started with 'spawn' can unpickle them)

class Squares(data.Dataset):
    def __init__(self, n=10):
        self.n = n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i * i

    def __len__(self):
        return self.n


class Nested(data.Dataset):
    """Samples mixing every type default_collate handles."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return {
            "t": rg.arange(3, dtype=rg.float32) + i,
            "np": np.full((2,), i, dtype=np.int32),
            "f": i / 2,
            "i": i,
            "b": i % 2 == 0,
            "s": f"s{i}",
            "tup": (i, float(i)),
            "lst": [np.float64(i), np.int64(-i)],
            "pt": Point(i, rg.tensor([i, i])),
        }


class TorchNested(Nested):
    """Nested's samples built with torch tensors (for the parity check)."""

    def __getitem__(self, i):
        s = super().__getitem__(i)
        s["t"] = tensor_like(torch, s["t"])
        s["pt"] = Point(i, torch.tensor([i, i]))
        return s


class WorkerReport(data.Dataset):
    """Each sample says which process made it and what its RNGs drew there."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = data.get_worker_info()
        return {
            "i": i,
            "pid": os.getpid(),
            "id": -1 if info is None else info.id,
            "num_workers": -1 if info is None else info.num_workers,
            "seed": -1 if info is None else info.seed,
            "same_dataset_type": info is not None and type(info.dataset) is WorkerReport,
            "torch_rand": int(rg.randint(0, 2**30, (1,)).item()),
            "py_rand": random.randrange(2**30),
            "np_rand": int(np.random.randint(2**30)),
        }


class Range(data.IterableDataset):
    """Yields start..end-1, split between workers by get_worker_info()."""

    def __init__(self, start, end, shard=True):
        self.start, self.end, self.shard = start, end, shard

    def __iter__(self):
        info = data.get_worker_info()
        if info is None or not self.shard:
            return iter(range(self.start, self.end))
        per = -(-(self.end - self.start) // info.num_workers)
        lo = self.start + info.id * per
        return iter(range(lo, min(lo + per, self.end)))

    def __len__(self):
        return self.end - self.start


class Unsized(data.IterableDataset):
    def __iter__(self):
        return iter(range(3))


class FailAt(data.Dataset):
    def __init__(self, bad, exc=ValueError):
        self.bad, self.exc = bad, exc

    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == self.bad:
            raise self.exc(f"bad sample {i}")
        return i


class ExitAt(data.Dataset):
    """A worker that dies without a word (os._exit) or by SIGKILL at one index."""

    def __init__(self, bad, how):
        self.bad, self.how = bad, how

    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == self.bad:
            if self.how == "exit":
                os._exit(1)
            os.kill(os.getpid(), signal.SIGKILL)
        return i


class Slow(data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 0:
            time.sleep(1.5)
        return i


class SlowFirst(data.Dataset):
    """Index 0 is slow, so later batches are ready first."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 0:
            time.sleep(0.5)
        return i


class GetItems(data.Dataset):
    """Fetches batches through __getitems__ and records it in the sample."""

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return ("single", i)

    def __getitems__(self, indices):
        return [("batched", i) for i in indices]


def record_init(worker_id):
    os.environ["RG_TEST_INIT"] = str(worker_id)  # seen by the worker's own samples


class InitReport(data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return int(os.environ.get("RG_TEST_INIT", "-1"))


def failing_init(worker_id):
    raise KeyError("init failed")


def collate_ids(batch):
    return [b["i"] for b in batch]


# ---------------------------------------------------------------- datasets

def test_dataset_base_and_add():
    with pytest.raises(NotImplementedError, match="Subclasses of Dataset should implement"):
        data.Dataset()[0]
    both = Squares(3) + Squares(2)
    assert isinstance(both, data.ConcatDataset)
    assert [both[i] for i in range(len(both))] == [0, 1, 4, 0, 1]
    chained = Range(0, 2) + Range(5, 7)
    assert isinstance(chained, data.ChainDataset)
    assert list(chained) == [0, 1, 5, 6] and len(chained) == 4


def test_tensor_dataset():
    x, y = rg.arange(12, dtype=rg.float32).reshape(4, 3), rg.tensor([1, 0, 1, 0])
    ds = data.TensorDataset(x, y)
    assert len(ds) == 4
    xi, yi = ds[2]
    assert_same(xi, np.arange(6, 9, dtype=np.float32))
    assert_same(yi, np.array(1, dtype=np.int64))
    xs, ys = ds[1:3]  # any index the tensors accept
    assert_same(xs, np.arange(3, 9, dtype=np.float32).reshape(2, 3))
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        data.TensorDataset(x, rg.zeros(3))


def test_concat_dataset():
    ds = data.ConcatDataset([Squares(3), Squares(4)])
    assert len(ds) == 7 and ds.cumulative_sizes == [3, 7]
    assert [ds[i] for i in range(7)] == [0, 1, 4, 0, 1, 4, 9]
    assert ds[-1] == 9 and ds[-7] == 0
    with pytest.raises(ValueError, match="absolute value of index should not exceed"):
        ds[-8]
    with pytest.raises(AssertionError, match="datasets should not be an empty iterable"):
        data.ConcatDataset([])
    with pytest.raises(AssertionError, match="ConcatDataset does not support IterableDataset"):
        data.ConcatDataset([Squares(2), Range(0, 2)])
    with pytest.warns(FutureWarning):
        assert ds.cummulative_sizes == [3, 7]


def test_chain_dataset_rejects_map_datasets():
    chained = data.ChainDataset([Range(0, 2), Squares(2)])
    with pytest.raises(AssertionError, match="ChainDataset only supports IterableDataset"):
        list(chained)
    with pytest.raises(AssertionError, match="ChainDataset only supports IterableDataset"):
        len(chained)


def test_stack_dataset():
    a, b = Squares(4), data.TensorDataset(rg.arange(4))
    tup = data.StackDataset(a, b)
    assert len(tup) == 4 and tup[2][0] == 4 and int(tup[2][1][0]) == 2
    with pytest.raises(ValueError, match="Size mismatch between datasets"):
        data.StackDataset(a, GetItems())
    with pytest.raises(ValueError, match="Size mismatch between datasets"):
        data.StackDataset(x=a, y=GetItems())
    with pytest.raises(ValueError, match="At least one dataset should be passed"):
        data.StackDataset()
    with pytest.raises(ValueError, match="but both types are given"):
        data.StackDataset(a, x=a)
    named = data.StackDataset(sq=Squares(5), g=GetItems())
    assert named[3] == {"sq": 9, "g": ("single", 3)}
    # A batch fetch uses each dataset's __getitems__ where it has one.
    assert named.__getitems__([1, 4]) == [{"sq": 1, "g": ("batched", 1)},
                                          {"sq": 16, "g": ("batched", 4)}]
    assert data.StackDataset(Squares(5), GetItems()).__getitems__([2]) == [(4, ("batched", 2))]


def test_subset():
    sub = data.Subset(Squares(10), [7, 2, 5])
    assert len(sub) == 3 and [sub[i] for i in range(3)] == [49, 4, 25]
    assert sub.__getitems__([0, 2]) == [49, 25]
    assert data.Subset(GetItems(), [4, 0]).__getitems__([0, 1]) == [("batched", 4),
                                                                     ("batched", 0)]

    class Bad(data.Subset):
        def __getitem__(self, idx):
            return 0

    with pytest.raises(NotImplementedError, match="overrides __getitem__ but not __getitems__"):
        Bad(Squares(3), [0])


@pytest.mark.parametrize("n,lengths,expected", [
    (10, [3, 7], [3, 7]),
    (10, [0.3, 0.3, 0.4], [3, 3, 4]),
    (11, [0.5, 0.5], [6, 5]),
    (7, [0.1, 0.1, 0.8], [1, 1, 5]),
    (5, [0.25, 0.25, 0.25, 0.25], [2, 1, 1, 1]),
])
def test_random_split_lengths(n, lengths, expected):
    parts = data.random_split(Squares(n), lengths, generator=rg.Generator().manual_seed(0))
    assert [len(p) for p in parts] == expected
    seen = sorted(i for p in parts for i in p.indices)
    assert seen == list(range(n))  # a partition of the dataset
    if torch is not None:
        tparts = tdata.random_split(range(n), lengths, generator=torch.Generator().manual_seed(0))
        assert [len(p) for p in tparts] == expected


def test_random_split_reproducible_and_errors():
    a = data.random_split(Squares(20), [5, 15], generator=rg.Generator().manual_seed(3))
    b = data.random_split(Squares(20), [5, 15], generator=rg.Generator().manual_seed(3))
    assert [p.indices for p in a] == [p.indices for p in b]
    rg.manual_seed(11)
    c = data.random_split(Squares(20), [5, 15])  # default generator
    rg.manual_seed(11)
    d = data.random_split(Squares(20), [5, 15])
    assert [p.indices for p in c] == [p.indices for p in d]
    assert sorted(c[0].indices) != list(range(5)) or sorted(c[1].indices) != list(range(5, 20))
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        data.random_split(Squares(5), [2, 2])
    with pytest.raises(ValueError, match="Fraction at index 2 is not between 0 and 1"):
        data.random_split(Squares(5), [0.5, 0.7, -0.2])
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        data.random_split(Squares(3), [0.9, 0.1])


# ---------------------------------------------------------------- samplers

def test_sequential_sampler():
    s = data.SequentialSampler(Squares(5))
    assert list(s) == [0, 1, 2, 3, 4] and len(s) == 5
    if torch is not None:
        assert list(tdata.SequentialSampler(range(5))) == list(s)
    with pytest.raises(NotImplementedError):
        iter(data.Sampler())


def test_random_sampler():
    g = rg.Generator().manual_seed(5)
    s = data.RandomSampler(range(20), generator=g)
    first = list(s)
    assert sorted(first) == list(range(20)) and len(s) == 20
    assert list(data.RandomSampler(range(20), generator=rg.Generator().manual_seed(5))) == first
    # Without a generator the order comes from the global RNG.
    rg.manual_seed(1)
    a = list(data.RandomSampler(range(20)))
    rg.manual_seed(1)
    assert list(data.RandomSampler(range(20))) == a
    # num_samples beyond the dataset without replacement: whole permutations, then a prefix.
    many = list(data.RandomSampler(range(4), num_samples=10, generator=g))
    assert len(many) == 10 and sorted(many[:4]) == sorted(many[4:8]) == [0, 1, 2, 3]
    assert len(set(many[8:])) == 2
    drawn = list(data.RandomSampler(range(3), replacement=True, num_samples=70, generator=g))
    assert len(drawn) == 70 and set(drawn) == {0, 1, 2}
    with pytest.raises(TypeError, match="replacement should be a boolean value, but got "
                                        "replacement=0"):
        data.RandomSampler(range(3), replacement=0)
    with pytest.raises(ValueError, match="num_samples should be a positive integer value, but "
                                         "got num_samples=0"):
        data.RandomSampler(range(3), num_samples=0)
    with pytest.raises(ValueError, match="num_samples=0"):
        data.RandomSampler([])


def test_subset_random_sampler():
    s = data.SubsetRandomSampler([10, 20, 30, 40], generator=rg.Generator().manual_seed(2))
    out = list(s)
    assert sorted(out) == [10, 20, 30, 40] and len(s) == 4


def test_weighted_random_sampler_with_replacement():
    weights = [0.0, 1.0, 3.0, 0.0, 4.0]
    s = data.WeightedRandomSampler(weights, 8000, generator=rg.Generator().manual_seed(0))
    out = np.array(list(s))
    assert len(s) == 8000 and out.shape == (8000,)
    counts = np.bincount(out, minlength=5) / 8000
    np.testing.assert_allclose(counts, np.array(weights) / 8.0, atol=0.03)
    assert counts[0] == 0 and counts[3] == 0
    again = list(data.WeightedRandomSampler(weights, 8000,
                                            generator=rg.Generator().manual_seed(0)))
    assert again == out.tolist()


def test_weighted_random_sampler_without_replacement():
    weights = [1.0, 0.0, 5.0, 2.0, 1.0, 0.5]
    firsts = []
    g = rg.Generator().manual_seed(1)
    for _ in range(400):
        out = list(data.WeightedRandomSampler(weights, 5, replacement=False, generator=g))
        assert len(set(out)) == 5 and 1 not in out  # distinct; the zero weight never drawn
        firsts.append(out[0])
    freq = np.bincount(firsts, minlength=6) / 400
    np.testing.assert_allclose(freq, np.array(weights) / sum(weights), atol=0.08)


@pytest.mark.parametrize("weights,num,replacement,msg", [
    ([1.0, -1.0], 1, True, "probability tensor contains either `inf`, `nan` or element < 0"),
    ([float("nan"), 1.0], 1, True, "probability tensor contains either"),
    ([0.0, 0.0], 1, True, r"invalid multinomial distribution \(sum of probabilities <= 0\)"),
    ([1.0, 1.0], 3, False, "cannot sample n_sample > prob_dist.size"),
])
def test_weighted_random_sampler_draw_errors(weights, num, replacement, msg):
    s = data.WeightedRandomSampler(weights, num, replacement=replacement)
    with pytest.raises(RuntimeError, match=msg):
        list(s)


def test_weighted_random_sampler_argument_errors():
    with pytest.raises(ValueError, match="num_samples should be a positive integer value, "
                                         "but got num_samples=True"):
        data.WeightedRandomSampler([1.0], True)
    with pytest.raises(ValueError, match="replacement should be a boolean value, but got "
                                         "replacement=1"):
        data.WeightedRandomSampler([1.0], 1, replacement=1)
    with pytest.raises(ValueError, match=r"weights should be a 1d sequence but given weights "
                                         r"have shape \(1, 2\)"):
        data.WeightedRandomSampler([[1.0, 2.0]], 1)
    assert data.WeightedRandomSampler([1, 2], 3).weights.dtype == rg.float64


@pytest.mark.parametrize("n,bs,drop_last", [(10, 3, False), (10, 3, True), (9, 3, True),
                                            (2, 5, False), (2, 5, True)])
def test_batch_sampler(n, bs, drop_last):
    s = data.BatchSampler(data.SequentialSampler(range(n)), bs, drop_last)
    out = list(s)
    assert len(out) == len(s)
    if torch is not None:
        assert out == list(tdata.BatchSampler(tdata.SequentialSampler(range(n)), bs, drop_last))
    flat = [i for b in out for i in b]
    assert flat == list(range(len(flat))) and all(isinstance(b, list) for b in out)


def test_batch_sampler_errors():
    with pytest.raises(ValueError, match="batch_size should be a positive integer value, but "
                                         "got batch_size=0"):
        data.BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="batch_size=True"):
        data.BatchSampler(range(3), True, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean value, but got "
                                         "drop_last=None"):
        data.BatchSampler(range(3), 2, None)


# ---------------------------------------------------------------- collate / convert

def test_default_collate_types():
    out = data.default_collate([Nested()[i] for i in range(3)])
    assert_same(out["t"], (np.arange(3) + np.arange(3)[:, None]).astype(np.float32))
    assert_same(out["np"], np.repeat(np.arange(3, dtype=np.int32)[:, None], 2, axis=1))
    assert_same(out["f"], np.array([0.0, 0.5, 1.0]))  # Python floats -> float64
    assert_same(out["i"], np.array([0, 1, 2], dtype=np.int64))
    assert_same(out["b"], np.array([True, False, True]))
    assert out["s"] == ["s0", "s1", "s2"]
    assert isinstance(out["tup"], list)  # tuples of fields become lists
    assert_same(out["tup"][1], np.array([0.0, 1.0, 2.0]))
    assert_same(out["lst"][0], np.array([0.0, 1.0, 2.0]))  # NumPy float64 scalars
    assert_same(out["lst"][1], np.array([0, -1, -2]))
    assert type(out["pt"]) is Point
    assert_same(out["pt"].y, np.array([[0, 0], [1, 1], [2, 2]]))
    assert data.default_collate([b"a", b"b"]) == [b"a", b"b"]
    assert_same(data.default_collate([np.float32(1), np.float32(2)]),
                np.array([1, 2], dtype=np.float32))
    assert_same(data.default_collate([np.int64(3), np.float32(2)]),
                np.array([3, 2], dtype=np.float32))  # tensor promotion, not NumPy's


@requires_torch
def test_default_collate_matches_torch():
    ours = data.default_collate([Nested()[i] for i in range(4)])
    theirs = tdata.default_collate([TorchNested()[i] for i in range(4)])
    assert structure(ours) == structure(theirs)
    for batch in ([1, 2], [1.5, 2.0], [True, False], [(1, "a"), (2, "b")], [[1, 2], [3, 4]],
                  [{"a": 1}, {"a": 2}], [np.array([1, 2]), np.array([3, 4])],
                  [np.float64(1.0), np.float64(2.5)], [np.bool_(True), np.bool_(False)],
                  [np.int32(1), np.int64(2)]):
        assert structure(data.default_collate(batch)) == structure(tdata.default_collate(batch))


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match=r"stack expects each tensor to be equal size, but got "
                                           r"\[2\] at entry 0 and \[3\] at entry 1"):
        data.default_collate([rg.zeros(2), rg.zeros(3)])
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        data.default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate: batch must contain tensors, numpy "
                                        "arrays, numbers, dicts or lists; found <class 'object'>"):
        data.default_collate([object(), object()])
    with pytest.raises(TypeError, match="found <U1"):
        data.default_collate([np.array(["a"]), np.array(["b"])])


def test_default_convert():
    arr = np.arange(4, dtype=np.float64).reshape(2, 2)
    out = data.default_convert({"a": arr, "b": (np.int32(3), "x"), "c": [np.bool_(True)],
                                "p": Point(np.float32(1.5), 2), "s": np.array(["u"])})
    assert_same(out["a"], arr)
    assert out["b"][1] == "x" and isinstance(out["b"], list)
    assert_same(out["b"][0], np.array(3, dtype=np.int32))
    assert_same(out["c"][0], np.array(True))
    assert type(out["p"]) is Point and out["p"].y == 2
    assert isinstance(out["s"], np.ndarray)  # string arrays pass through
    t = rg.ones(2)
    assert data.default_convert(t) is t and data.default_convert("str") == "str"
    if torch is not None:
        sample = {"a": arr, "b": (np.int32(3), "x"), "n": np.float64(2.0)}
        assert structure(data.default_convert(sample)) == structure(tdata.default_convert(sample))


# ---------------------------------------------------------------- DataLoader options

LOADER_ERRORS = [
    (dict(num_workers=-1), ValueError, "num_workers option should be non-negative"),
    (dict(timeout=-1), ValueError, "timeout option should be non-negative"),
    (dict(prefetch_factor=2), ValueError, "prefetch_factor option could only be specified in "
                                          "multiprocessing"),
    (dict(num_workers=1, prefetch_factor=-1), ValueError,
     "prefetch_factor option should be non-negative"),
    (dict(persistent_workers=True), ValueError, "persistent_workers option needs num_workers > 0"),
    (dict(sampler=[0, 1], shuffle=True), ValueError,
     "sampler option is mutually exclusive with shuffle"),
    (dict(batch_sampler=[[0]], batch_size=2), ValueError,
     "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and "
     "drop_last"),
    (dict(batch_sampler=[[0]], drop_last=True), ValueError, "mutually exclusive with batch_size"),
    (dict(batch_sampler=[[0]], sampler=[0]), ValueError, "mutually exclusive with batch_size"),
    (dict(batch_size=None, drop_last=True), ValueError,
     "batch_size=None option disables auto-batching and is mutually exclusive with drop_last"),
    (dict(multiprocessing_context="fork"), ValueError,
     "multiprocessing_context can only be used with multi-process loading "
     r"\(num_workers > 0\), but got num_workers=0"),
    (dict(num_workers=1, multiprocessing_context="bogus"), ValueError,
     "multiprocessing_context option should specify a valid start method in"),
    (dict(num_workers=1, multiprocessing_context=3), TypeError,
     "multiprocessing_context option should be a valid context object or a string specifying "
     "the start method, but got multiprocessing_context=3"),
]


@pytest.mark.parametrize("kwargs,exc,msg", LOADER_ERRORS)
def test_loader_argument_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        data.DataLoader(Squares(4), **kwargs)
    if torch is not None:
        with pytest.raises(exc, match=msg):
            tdata.DataLoader(range(4), **kwargs)


@pytest.mark.parametrize("kwargs,msg", [
    (dict(shuffle=True), "DataLoader with IterableDataset: expected unspecified shuffle option, "
                         "but got shuffle=True"),
    (dict(sampler=[0]), r"expected unspecified sampler option, but got sampler=\[0\]"),
    (dict(batch_sampler=[[0]]), r"expected unspecified batch_sampler option, but got "
                                r"batch_sampler=\[\[0\]\]"),
])
def test_loader_iterable_dataset_errors(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        data.DataLoader(Range(0, 3), **kwargs)
    data.DataLoader(Range(0, 3), shuffle=False)  # an explicit False is allowed


def test_loader_attributes_frozen():
    loader = data.DataLoader(Squares(4), batch_size=2)
    for attr in ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset",
                 "persistent_workers"):
        with pytest.raises(ValueError, match=f"{attr} attribute should not be set after "
                                             "DataLoader is initialized"):
            setattr(loader, attr, None)
    loader.num_workers = 0  # others stay settable
    assert isinstance(loader.sampler, data.SequentialSampler)
    assert isinstance(loader.batch_sampler, data.BatchSampler)
    assert loader.collate_fn is data.default_collate and loader.prefetch_factor is None
    assert data.DataLoader(Squares(4), batch_size=None).collate_fn is data.default_convert
    assert data.DataLoader(Squares(4), num_workers=1).prefetch_factor == 2


def _loader_outputs(mod, dataset, **kwargs):
    return [structure(b) for b in mod.DataLoader(dataset, **kwargs)]


@requires_torch
@pytest.mark.parametrize("kwargs", [
    dict(batch_size=4),
    dict(batch_size=4, drop_last=True),
    dict(batch_size=6, drop_last=True),
    dict(batch_size=None),
    dict(batch_size=1),
    dict(sampler=[5, 0, 3]),
    dict(sampler=[5, 0, 3], batch_size=2),
    dict(batch_sampler=[[0, 2], [5], [1, 3, 4]]),
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_loader_matches_torch(kwargs):
    ours = data.DataLoader(Nested(), **kwargs)
    theirs = tdata.DataLoader(TorchNested(), **kwargs)
    assert len(ours) == len(theirs)
    assert [structure(b) for b in ours] == [structure(b) for b in theirs]


@requires_torch
def test_loader_tensor_dataset_matches_torch():
    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    y = np.arange(10) % 3
    ours = data.DataLoader(data.TensorDataset(rg.from_numpy(x), rg.from_numpy(y)), batch_size=4)
    theirs = tdata.DataLoader(tdata.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                              batch_size=4)
    assert [structure(b) for b in ours] == [structure(b) for b in theirs]


def test_loader_len_and_order():
    assert len(data.DataLoader(Squares(10), batch_size=3)) == 4
    assert len(data.DataLoader(Squares(10), batch_size=3, drop_last=True)) == 3
    assert len(data.DataLoader(Squares(10), batch_size=None)) == 10
    out = [b.tolist() for b in data.DataLoader(Squares(5), batch_size=2)]
    assert out == [[0, 1], [4, 9], [16]]
    single = list(data.DataLoader(Squares(3), batch_size=None))
    assert single == [0, 1, 4]  # no batching: default_convert leaves ints alone
    batched = list(data.DataLoader(GetItems(), batch_size=2))  # __getitems__ used for batches
    assert batched[0][0] == ("batched", "batched")  # strings stay as zip made them


def test_loader_shuffle_reproducible():
    def epoch(seed):
        loader = data.DataLoader(Squares(12), batch_size=5, shuffle=True,
                                 generator=rg.Generator().manual_seed(seed))
        return [b.tolist() for b in loader]

    a = epoch(7)
    assert a == epoch(7)
    assert sorted(v for b in a for v in b) == sorted(i * i for i in range(12))
    assert [v for b in a for v in b] != [i * i for i in range(12)]
    loader = data.DataLoader(Squares(12), shuffle=True)
    assert isinstance(loader.sampler, data.RandomSampler)
    rg.manual_seed(4)
    b = [int(v) for v in loader]
    rg.manual_seed(4)
    assert [int(v) for v in loader] == b


def test_loader_iterable_dataset():
    loader = data.DataLoader(Range(0, 7), batch_size=3)
    assert len(loader) == 3
    assert [b.tolist() for b in loader] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in data.DataLoader(Range(0, 7), batch_size=3, drop_last=True)] == \
        [[0, 1, 2], [3, 4, 5]]
    assert len(data.DataLoader(Range(0, 7), batch_size=3, drop_last=True)) == 2
    assert list(data.DataLoader(Range(0, 3), batch_size=None)) == [0, 1, 2]
    with pytest.raises(TypeError):
        len(data.DataLoader(Unsized()))


def test_loader_iterable_dataset_length_warning():
    # Two unsharded workers yield every sample twice: more than len() reported. As in
    # PyTorch, the count compared is the dataset's length, whatever the batch size.
    loader = data.DataLoader(Range(0, 4, shard=False), batch_size=None, num_workers=2)
    assert len(loader) == 4
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = list(loader)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 4  # one per sample past the reported length
    assert re.match(r"Length of IterableDataset .* was reported to be 4\(when accessing "
                    r"len\(dataloader\)\), but 5 samples have been fetched. For multiprocessing "
                    r"data-loading", messages[0])
    assert sorted(out) == [0, 0, 1, 1, 2, 2, 3, 3]
    single = data.DataLoader(Range(0, 4, shard=False), batch_size=3)
    assert len(single) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 2 batches from a length of 4: no warning
        assert [b.tolist() for b in single] == [[0, 1, 2], [3]]


def test_loader_pin_memory_warns_without_accelerator():
    with pytest.warns(UserWarning, match="'pin_memory' argument is set as true but no "
                                         "accelerator is found"):
        out = list(data.DataLoader(Squares(2), pin_memory=True))
    assert [int(b) for b in out] == [0, 1]


def test_loader_worker_count_warning():
    n = len(os.sched_getaffinity(0)) + 1
    with pytest.warns(UserWarning, match=f"This DataLoader will create {n} worker processes in "
                                         "total. Our suggested max number of worker"):
        data.DataLoader(Squares(2), num_workers=n)


# ---------------------------------------------------------------- worker processes

def test_workers_match_single_process():
    for kwargs in (dict(batch_size=3), dict(batch_size=None), dict(batch_size=2, drop_last=True),
                   dict(batch_sampler=[[4, 1], [0], [5, 2, 3]])):
        expected = _loader_outputs(data, Nested(), **kwargs)
        assert _loader_outputs(data, Nested(), num_workers=2, **kwargs) == expected
        assert _loader_outputs(data, Nested(), num_workers=1, prefetch_factor=1,
                               **kwargs) == expected


def test_workers_out_of_order():
    loader = data.DataLoader(SlowFirst(), batch_size=2, num_workers=2, in_order=False)
    out = [b.tolist() for b in loader]
    assert sorted(out) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert out[0] != [0, 1]  # the slow first batch is not waited for
    loader = data.DataLoader(SlowFirst(), batch_size=2, num_workers=2)
    assert [b.tolist() for b in loader] == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_workers_info_and_seeds():
    assert data.get_worker_info() is None
    loader = data.DataLoader(WorkerReport(), batch_size=None, num_workers=2,
                             generator=rg.Generator().manual_seed(123))
    rows = list(loader)
    by_id = collections.defaultdict(list)
    for r in rows:
        by_id[r["id"]].append(r)
    assert set(by_id) == {0, 1}
    # Round-robin assignment: worker k serves indices k, k + 2, ...
    assert [r["i"] for r in by_id[0]] == [0, 2, 4, 6]
    assert all(r["num_workers"] == 2 and r["same_dataset_type"] for r in rows)
    assert all(r["pid"] != os.getpid() for r in rows)
    assert len({r["pid"] for r in by_id[0]}) == 1 and by_id[0][0]["pid"] != by_id[1][0]["pid"]
    seed0, seed1 = by_id[0][0]["seed"], by_id[1][0]["seed"]
    assert seed1 == seed0 + 1  # base_seed + worker id
    for key in ("torch_rand", "py_rand", "np_rand"):
        assert by_id[0][0][key] != by_id[1][0][key], key
    # The same loader generator seed gives the same worker seeds and draws.
    again = list(data.DataLoader(WorkerReport(), batch_size=None, num_workers=2,
                                 generator=rg.Generator().manual_seed(123)))
    strip = [{k: v for k, v in r.items() if k != "pid"} for r in rows]
    assert [{k: v for k, v in r.items() if k != "pid"} for r in again] == strip


def test_worker_numpy_seed_is_pytorchs():
    from rustgrad.utils.data._utils.worker import _generate_state
    for base_seed, worker_id in ((0, 0), (123456789012, 3), (2**63 - 1, 7)):
        expected = None
        if torch is not None:
            from torch.utils.data._utils.worker import _generate_state as torch_state
            expected = torch_state(base_seed, worker_id)
        state = _generate_state(base_seed, worker_id)
        assert len(state) == 4 and all(0 <= s < 2**32 for s in state)
        if expected is not None:
            assert state == expected


def test_worker_init_fn():
    out = list(data.DataLoader(InitReport(), batch_size=None, num_workers=2,
                               worker_init_fn=record_init))
    assert out == [0, 1, 0, 1]
    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process 0"):
        list(data.DataLoader(InitReport(), num_workers=1, worker_init_fn=failing_init))


def test_iterable_dataset_sharded_by_workers():
    loader = data.DataLoader(Range(0, 10), batch_size=2, num_workers=2)
    out = [b.tolist() for b in loader]
    assert sorted(v for b in out for v in b) == list(range(10))
    # Worker 0 holds 0..4, worker 1 holds 5..9: batches alternate between them.
    assert out == [[0, 1], [5, 6], [2, 3], [7, 8], [4], [9]]
    unbatched = list(data.DataLoader(Range(0, 5), batch_size=None, num_workers=2))
    assert sorted(unbatched) == [0, 1, 2, 3, 4]


def test_worker_exception_reraised():
    loader = data.DataLoader(FailAt(5), batch_size=2, num_workers=2)
    it = iter(loader)
    assert next(it).tolist() == [0, 1] and next(it).tolist() == [2, 3]
    with pytest.raises(ValueError) as err:
        next(it)
    msg = str(err.value)
    assert msg.startswith("Caught ValueError in DataLoader worker process 0.\n"
                          "Original Traceback (most recent call last):")
    assert "bad sample 5" in msg and "in __getitem__" in msg
    with pytest.raises(KeyError) as err:  # readable, not repr()-quoted
        list(data.DataLoader(FailAt(0, KeyError), num_workers=1))
    assert "Caught KeyError in DataLoader worker process 0.\nOriginal Traceback" in str(err.value)


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_worker_death_raises(how):
    # timeout= is a backstop: a loader that failed to notice the death raises "timed out".
    loader = data.DataLoader(ExitAt(3, how), batch_size=None, num_workers=2, timeout=20)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+\) exited "
                                           "unexpectedly"):
        for _ in loader:
            pass
    assert time.monotonic() - start < 10


def test_timeout_option():
    loader = data.DataLoader(Slow(), num_workers=1, timeout=0.3)
    it = iter(loader)
    pids = [w.pid for w in it._workers]
    with pytest.raises(RuntimeError, match=r"DataLoader timed out after 0.3 seconds"):
        next(it)
    del it
    gc.collect()
    assert wait_gone(pids) == []


def test_persistent_workers_reused():
    def pids(loader):
        return {r["pid"] for r in loader}

    loader = data.DataLoader(WorkerReport(), batch_size=None, num_workers=2,
                             persistent_workers=True)
    first, second = pids(loader), pids(loader)
    assert len(first) == 2 and first == second
    it = iter(loader)
    next(it)  # an epoch left half done is dropped when the next one starts
    assert [r["i"] for r in loader] == list(range(8))
    # Persistent workers also restart an exhausted IterableDataset every epoch.
    it_loader = data.DataLoader(Range(0, 6), batch_size=2, num_workers=2,
                                persistent_workers=True)
    assert [b.tolist() for b in it_loader] == [b.tolist() for b in it_loader]
    worker_pids = [w.pid for w in loader._iterator._workers + it_loader._iterator._workers]
    del loader, it, it_loader
    gc.collect()
    assert wait_gone(worker_pids) == []
    # Without persistence every epoch starts new processes.
    plain = data.DataLoader(WorkerReport(), batch_size=None, num_workers=2)
    assert pids(plain).isdisjoint(pids(plain))


def test_no_leftover_processes():
    before = set(p.pid for p in multiprocessing.active_children())
    loader = data.DataLoader(Squares(20), batch_size=2, num_workers=2)
    it = iter(loader)
    next(it)
    pids = [w.pid for w in it._workers]
    assert all(alive(p) for p in pids)
    del it  # deleted mid-epoch
    gc.collect()
    assert wait_gone(pids) == []
    it = iter(loader)
    pids = [w.pid for w in it._workers]
    assert len(list(it)) == 10  # the end of an epoch shuts the workers down
    assert wait_gone(pids) == []
    assert set(p.pid for p in multiprocessing.active_children()) <= before


def test_spawn_context():
    # A dataset of rustgrad's own classes: a spawned child then imports rustgrad alone (this
    # module would bring in PyTorch through _helpers).
    x = rg.arange(24, dtype=rg.float32).reshape(8, 3)
    ds = data.TensorDataset(x, rg.arange(8))
    expected = _loader_outputs(data, ds, batch_size=3)
    ctx = multiprocessing.get_context("spawn")
    for context in ("spawn", ctx):
        loader = data.DataLoader(ds, batch_size=3, num_workers=2, multiprocessing_context=context)
        assert [structure(b) for b in loader] == expected


def test_custom_collate_and_large_batches():
    out = list(data.DataLoader(WorkerReport(), batch_size=4, num_workers=2,
                               collate_fn=collate_ids))
    assert out == [[0, 1, 2, 3], [4, 5, 6, 7]]
    big = rg.arange(64 * 4096, dtype=rg.float32).reshape(64, 4096)
    batches = list(data.DataLoader(data.TensorDataset(big), batch_size=16, num_workers=2))
    assert_same(rg.cat([b[0] for b in batches]), to_numpy(big))


def test_exit_with_live_workers_leaves_no_processes():
    # A program that exits while persistent workers (and a half-read iterator) are alive.
    script = textwrap.dedent(f"""
        import importlib, sys
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        import conftest, rustgrad
        from test_data import Squares
        data = importlib.import_module(rustgrad.__name__ + ".utils.data")
        loader = data.DataLoader(Squares(50), num_workers=2, persistent_workers=True)
        it = iter(loader)
        next(it)
        other = iter(data.DataLoader(Squares(50), num_workers=2))
        next(other)
        print(" ".join(str(w.pid) for w in it._workers + other._workers), flush=True)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=30, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    pids = [int(p) for p in proc.stdout.split()]
    assert len(pids) == 4
    assert wait_gone(pids) == []

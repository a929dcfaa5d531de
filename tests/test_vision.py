# rustgrad.vision (the torchvision subset): datasets read back from files written in the real
# on-disk formats, transforms against NumPy references (and PyTorch where importable), make_grid
# against a NumPy reference, reprs as torchvision prints them, and the blitz CIFAR-10 loader.
import gzip
import io
import os
import pickle
import struct
import sys
import tarfile

import numpy as np
import pytest

import rustgrad
import rustgrad.vision as torchvision
from _helpers import assert_same, requires_torch, torch_or_none
from rustgrad.vision import transforms as T
from rustgrad.vision.transforms import functional as F

try:
    import PIL.Image as PILImage
except ImportError:
    PILImage = None

requires_pil = pytest.mark.skipif(PILImage is None, reason="Pillow is not installed")
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture
def no_pillow(monkeypatch):
    """Run as if Pillow were absent, whether or not it is installed."""
    monkeypatch.setattr(F, "_Image", None)


def as_array(img):
    """A dataset image (PIL image or HWC array) as a NumPy array."""
    return np.asarray(img)


# ---------------------------------------------------------------------------------------------
# Files in the real formats

def write_cifar(root, folder="cifar-10-batches-py", batches=None, meta="batches.meta", key="label_names",
                label_key="labels", per_batch=6, classes=CLASSES, bytes_keys=True, seed=0):
    """Pickled batches as the published files hold them: a dict with 'data' uint8 (N, 3072),
    row = 1024 red, 1024 green, 1024 blue values; protocol 2 (Python 2's cPickle)."""
    batches = batches or ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                          "test_batch"]
    rng = np.random.default_rng(seed)
    k = (lambda s: s.encode()) if bytes_keys else (lambda s: s)
    os.makedirs(os.path.join(root, folder), exist_ok=True)
    written = {}
    for name in batches:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, len(classes), size=per_batch)]
        entry = {k("batch_label"): k(f"batch {name}"), k("data"): data, k(label_key): labels,
                 k("filenames"): [k(f"img_{i}.png") for i in range(per_batch)]}
        with open(os.path.join(root, folder, name), "wb") as f:
            pickle.dump(entry, f, protocol=2)
        written[name] = (data, labels)
    with open(os.path.join(root, folder, meta), "wb") as f:
        pickle.dump({k(key): [k(c) for c in classes], k("num_cases_per_batch"): per_batch, k("num_vis"): 3072},
                    f, protocol=2)
    return written


def write_idx(path, array, gz=False):
    """An IDX file: magic 0x00 0x00 <type 0x08 = ubyte> <ndim>, big-endian int32 sizes, data."""
    array = np.asarray(array)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">i", s) for s in array.shape)
    payload = header + array.astype(">u1").tobytes()
    opener = gzip.open if gz else open
    with opener(str(path) + (".gz" if gz else ""), "wb") as f:
        f.write(payload)


def write_mnist(root, name="MNIST", n_train=7, n_test=3, gz=False, seed=0):
    raw = os.path.join(root, name, "raw")
    os.makedirs(raw, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(os.path.join(raw, f"{split}-images-idx3-ubyte"), images, gz)
        write_idx(os.path.join(raw, f"{split}-labels-idx1-ubyte"), labels, gz)
        out[split] = (images, labels)
    return out


# ---------------------------------------------------------------------------------------------
# CIFAR

def test_cifar10_reads_the_batches(tmp_path):
    written = write_cifar(tmp_path)
    train = torchvision.datasets.CIFAR10(root=str(tmp_path), train=True)
    rows = np.vstack([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    expected = rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    assert isinstance(train.data, np.ndarray) and train.data.dtype == np.uint8
    assert train.data.shape == (30, 32, 32, 3)
    np.testing.assert_array_equal(train.data, expected)
    assert train.targets == sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert isinstance(train.targets, list) and all(type(t) is int for t in train.targets)
    assert train.classes == CLASSES
    assert train.class_to_idx == {c: i for i, c in enumerate(CLASSES)}
    assert len(train) == 30
    img, target = train[7]
    np.testing.assert_array_equal(as_array(img), expected[7])
    assert target == train.targets[7] and type(target) is int
    test = torchvision.datasets.CIFAR10(root=str(tmp_path), train=False)
    assert len(test) == 6
    np.testing.assert_array_equal(test.data, written["test_batch"][0].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def test_cifar10_item_without_pillow_is_a_copy_of_the_hwc_array(tmp_path, no_pillow):
    write_cifar(tmp_path)
    ds = torchvision.datasets.CIFAR10(root=str(tmp_path))
    img, _ = ds[3]
    assert isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.shape == (32, 32, 3)
    img[...] = 0  # a transform writing into the image must not change the dataset
    assert ds.data[3].any()


@requires_pil
def test_cifar10_item_with_pillow_is_an_rgb_image(tmp_path):
    write_cifar(tmp_path)
    ds = torchvision.datasets.CIFAR10(root=str(tmp_path))
    img, _ = ds[2]
    assert isinstance(img, PILImage.Image) and img.mode == "RGB" and img.size == (32, 32)
    np.testing.assert_array_equal(np.asarray(img), ds.data[2])


def test_cifar10_python2_pickles_with_str_keys(tmp_path):
    # Unpickled with latin1, the published Python 2 files give str keys and str class names.
    write_cifar(tmp_path, bytes_keys=False)
    ds = torchvision.datasets.CIFAR10(root=str(tmp_path), train=False)
    assert ds.classes == CLASSES and len(ds) == 6


def test_cifar10_transforms_and_repr(tmp_path):
    write_cifar(tmp_path)
    transform = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    ds = torchvision.datasets.CIFAR10(root=str(tmp_path), train=True, transform=transform,
                                      target_transform=lambda t: t + 100)
    img, target = ds[4]
    ref = (ds.data[4].transpose(2, 0, 1).astype(np.float32) / 255 - 0.5) / 0.5
    assert_same(img, ref.astype(np.float32), rtol=1e-6, atol=1e-6)
    assert target == ds.targets[4] + 100
    ds = torchvision.datasets.CIFAR10(root=str(tmp_path), train=False, transform=transform)
    assert repr(ds) == (
        "Dataset CIFAR10\n"
        "    Number of datapoints: 6\n"
        f"    Root location: {tmp_path}\n"
        "    Split: Test\n"
        "    StandardTransform\n"
        "Transform: Compose(\n"
        "               ToTensor()\n"
        "               Normalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))\n"
        "           )")


def test_cifar10_missing_files(tmp_path):
    with pytest.raises(RuntimeError, match="Dataset not found or corrupted"):
        torchvision.datasets.CIFAR10(root=str(tmp_path))
    with pytest.raises(RuntimeError) as info:
        torchvision.datasets.CIFAR10(root=str(tmp_path), download=True)
    message = str(info.value)
    folder = os.path.join(str(tmp_path), "cifar-10-batches-py")
    for part in ("no network", folder, "cifar-10-python.tar.gz", os.path.join(folder, "data_batch_1"),
                 os.path.join(folder, "test_batch"), os.path.join(folder, "batches.meta")):
        assert part in message
    write_cifar(tmp_path, batches=["data_batch_1", "test_batch"])  # an incomplete copy is refused
    with pytest.raises(RuntimeError, match="Missing: data_batch_2, data_batch_3, data_batch_4, data_batch_5$"):
        torchvision.datasets.CIFAR10(root=str(tmp_path), download=True)


def test_cifar10_download_true_verifies_present_files(tmp_path, capsys):
    write_cifar(tmp_path)
    ds = torchvision.datasets.CIFAR10(root=str(tmp_path), train=True, download=True)
    assert capsys.readouterr().out == "Files already downloaded and verified\n"
    assert len(ds) == 30


def test_cifar10_download_true_extracts_a_placed_archive(tmp_path, capsys):
    source = tmp_path / "src"
    written = write_cifar(source)
    root = tmp_path / "data"
    root.mkdir()
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    ds = torchvision.datasets.CIFAR10(root=str(root), train=False, download=True)
    assert "Extracting" in capsys.readouterr().out
    np.testing.assert_array_equal(ds.data.transpose(0, 3, 1, 2).reshape(-1, 3072), written["test_batch"][0])


def test_cifar100_fine_labels(tmp_path):
    names = [f"class{i}" for i in range(100)]
    written = write_cifar(tmp_path, folder="cifar-100-python", batches=["train", "test"], meta="meta",
                          key="fine_label_names", label_key="fine_labels", classes=names)
    ds = torchvision.datasets.CIFAR100(root=str(tmp_path), train=True)
    assert ds.classes == names and ds.targets == written["train"][1] and ds.data.shape == (6, 32, 32, 3)
    assert "Split: Train" in repr(ds)


# ---------------------------------------------------------------------------------------------
# MNIST

@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_mnist_reads_idx_files(tmp_path, gz):
    written = write_mnist(tmp_path, gz=gz)
    ds = torchvision.datasets.MNIST(root=str(tmp_path), train=True)
    assert_same(ds.data, written["train"][0])
    assert_same(ds.targets, written["train"][1].astype(np.int64))
    assert len(ds) == 7
    img, target = ds[5]
    np.testing.assert_array_equal(as_array(img), written["train"][0][5])
    assert target == int(written["train"][1][5]) and type(target) is int
    test = torchvision.datasets.MNIST(root=str(tmp_path), train=False, transform=T.ToTensor())
    x, _ = test[1]
    assert_same(x, (written["t10k"][0][1][None].astype(np.float32) / 255))
    assert test.class_to_idx["3 - three"] == 3
    assert repr(test) == ("Dataset MNIST\n    Number of datapoints: 3\n"
                          f"    Root location: {tmp_path}\n    Split: Test\n    StandardTransform\n"
                          "Transform: ToTensor()")


@requires_pil
def test_mnist_item_with_pillow_is_an_l_image(tmp_path):
    write_mnist(tmp_path)
    img, _ = torchvision.datasets.MNIST(root=str(tmp_path))[0]
    assert isinstance(img, PILImage.Image) and img.mode == "L" and img.size == (28, 28)


def test_fashion_mnist_uses_its_own_folder(tmp_path):
    written = write_mnist(tmp_path, name="FashionMNIST", gz=True)
    ds = torchvision.datasets.FashionMNIST(root=str(tmp_path), train=False)
    assert_same(ds.targets, written["t10k"][1].astype(np.int64))
    assert ds.classes[9] == "Ankle boot"
    with pytest.raises(RuntimeError, match="Dataset not found"):
        torchvision.datasets.MNIST(root=str(tmp_path))


def test_mnist_missing_files_and_bad_magic(tmp_path):
    with pytest.raises(RuntimeError) as info:
        torchvision.datasets.MNIST(root=str(tmp_path), download=True)
    raw = os.path.join(str(tmp_path), "MNIST", "raw")
    assert raw in str(info.value) and "train-images-idx3-ubyte.gz" in str(info.value)
    write_mnist(tmp_path)
    assert len(torchvision.datasets.MNIST(root=str(tmp_path), download=True)) == 7  # present: just verified
    with open(os.path.join(raw, "train-labels-idx1-ubyte"), "wb") as f:
        f.write(b"\x00\x00\x0c\x01" + struct.pack(">i", 7) + np.arange(7, dtype=">i4").tobytes())
    with pytest.raises(TypeError, match="uint8"):
        torchvision.datasets.MNIST(root=str(tmp_path))
    with open(os.path.join(raw, "train-labels-idx1-ubyte"), "wb") as f:
        f.write(b"\x12\x34\x56\x78")
    with pytest.raises(ValueError, match="not an IDX file"):
        torchvision.datasets.MNIST(root=str(tmp_path))


# ---------------------------------------------------------------------------------------------
# FakeData

def test_fakedata_is_deterministic_per_index():
    ds = torchvision.datasets.FakeData(size=5, image_size=(3, 6, 5), num_classes=4, transform=T.ToTensor())
    rustgrad.manual_seed(123)
    expected_next = rustgrad.rand(3)
    rustgrad.manual_seed(123)
    a, ta = ds[2]
    assert_same(rustgrad.rand(3), expected_next.numpy())  # the caller's generator is left as it was
    rustgrad.randn(10)
    b, tb = ds[2]
    assert_same(a, b.numpy()) and ta == tb
    assert a.shape == (3, 6, 5) and type(ta) is int and 0 <= ta < 4
    # The image is what ToPILImage makes of randn drawn after manual_seed(index + offset).
    state = rustgrad.get_rng_state()
    rustgrad.manual_seed(2)
    raw = rustgrad.randn(3, 6, 5).permute(1, 2, 0).numpy()
    rustgrad.set_rng_state(state)
    assert_same(a, ((raw * 255).astype(np.uint8).transpose(2, 0, 1) / np.float32(255)).astype(np.float32))
    shifted = torchvision.datasets.FakeData(size=5, image_size=(3, 6, 5), random_offset=1, transform=T.ToTensor())
    assert_same(shifted[1][0], a.numpy())
    assert len(ds) == 5
    with pytest.raises(IndexError, match="FakeData index out of range"):
        ds[5]
    gray, _ = torchvision.datasets.FakeData(size=1, image_size=(1, 4, 4))[0]
    assert as_array(gray).shape == (4, 4)


# ---------------------------------------------------------------------------------------------
# Transforms

def hwc(shape=(5, 7, 3), seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def test_to_tensor_arrays():
    x = hwc()
    assert_same(T.ToTensor()(x), x.transpose(2, 0, 1).astype(np.float32) / np.float32(255))
    g = hwc((4, 6))
    assert_same(T.ToTensor()(g), g[None].astype(np.float32) / np.float32(255))
    f = np.random.default_rng(1).random((4, 3, 2))  # not uint8: kept as it is, not scaled
    assert_same(T.ToTensor()(f), f.transpose(2, 0, 1))
    with pytest.raises(TypeError, match="pic should be PIL Image or ndarray"):
        T.ToTensor()([[1, 2]])
    with pytest.raises(ValueError, match="pic should be 2/3 dimensional. Got 4 dimensions."):
        T.ToTensor()(np.zeros((1, 2, 3, 4), np.uint8))


@requires_pil
def test_pil_conversions():
    x = hwc()
    img = PILImage.fromarray(x)
    assert_same(T.ToTensor()(img), x.transpose(2, 0, 1).astype(np.float32) / np.float32(255))
    assert_same(T.PILToTensor()(img), x.transpose(2, 0, 1))
    assert_same(T.ToTensor()(PILImage.fromarray(x[:, :, 0])), x[None, :, :, 0].astype(np.float32) / np.float32(255))
    back = T.ToPILImage()(T.ToTensor()(img))
    assert back.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(back), (x.astype(np.float32) / np.float32(255) * 255).astype(np.uint8))
    assert T.ToPILImage()(rustgrad.tensor(x[:, :, 0])).mode == "L"
    with pytest.raises(ValueError, match="Only modes"):
        T.ToPILImage(mode="L")(x)


@requires_pil
@pytest.mark.parametrize("array,mode,expected_mode", [
    (np.arange(12, dtype=np.float32).reshape(3, 4) / 11, "F", "F"),
    (np.arange(12, dtype=np.int32).reshape(3, 4) * 1000, None, "I"),
    (np.arange(24, dtype=np.uint8).reshape(3, 4, 2), None, "LA"),
    (np.arange(48, dtype=np.uint8).reshape(3, 4, 4), None, "RGBA"),
    (np.arange(36, dtype=np.uint8).reshape(3, 4, 3), "YCbCr", "YCbCr"),
], ids=["F", "I", "LA", "RGBA", "YCbCr"])
def test_to_pil_image_modes(array, mode, expected_mode):
    img = T.ToPILImage(mode)(array)
    assert img.mode == expected_mode and img.size == (4, 3)
    np.testing.assert_array_equal(np.asarray(img), array)  # the bytes are read as the mode, not converted


def test_to_pil_image_without_pillow(no_pillow):
    with pytest.raises(ImportError, match="Pillow"):
        T.ToPILImage()(rustgrad.zeros(3, 2, 2))


def test_normalize():
    x = rustgrad.rand(3, 4, 5)
    xn = x.numpy().copy()
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    ref = (xn - np.array(mean, np.float32)[:, None, None]) / np.array(std, np.float32)[:, None, None]
    out = T.Normalize(mean, std)(x)
    assert_same(out, ref.astype(np.float32))
    np.testing.assert_array_equal(x.numpy(), xn)  # out of place by default
    batch = rustgrad.tensor(np.stack([xn, xn]))
    assert_same(T.Normalize(mean, std)(batch), np.stack([ref, ref]).astype(np.float32))
    y = x.clone()
    assert T.Normalize(mean, std, inplace=True)(y) is y
    assert_same(y, ref.astype(np.float32))
    assert_same(T.Normalize([0.5], [0.5])(x.double()), ((xn.astype(np.float64) - 0.5) / 0.5))
    with pytest.raises(ValueError, match="std evaluated to zero after conversion to rustgrad.float32"):
        T.Normalize((0.5, 0.5, 0.5), (0.5, 0.0, 0.5))(x)
    with pytest.raises(TypeError, match="Input tensor should be a float tensor"):
        T.Normalize((0.5,), (0.5,))(rustgrad.zeros(3, 2, 2, dtype=rustgrad.uint8))
    with pytest.raises(ValueError, match="Expected tensor to be a tensor image of size"):
        T.Normalize((0.5,), (0.5,))(rustgrad.zeros(2, 2))
    with pytest.raises(TypeError, match="img should be Tensor Image"):
        T.Normalize((0.5,), (0.5,))(xn)


@requires_torch
def test_normalize_matches_torch_formula():
    torch = torch_or_none()
    x = np.random.default_rng(3).random((2, 3, 4, 4)).astype(np.float32)
    mean, std = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)
    expected = torch.from_numpy(x).sub(torch.tensor(mean).view(-1, 1, 1)).div(torch.tensor(std).view(-1, 1, 1))
    assert_same(T.Normalize(mean, std)(rustgrad.tensor(x)), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["tensor", "array"])
def test_flips(kind):
    x = hwc()
    img = rustgrad.tensor(x.transpose(2, 0, 1)) if kind == "tensor" else x
    as_hwc = (lambda t: t.numpy().transpose(1, 2, 0)) if kind == "tensor" else np.asarray
    np.testing.assert_array_equal(as_hwc(T.RandomHorizontalFlip(p=1.0)(img)), x[:, ::-1])
    np.testing.assert_array_equal(as_hwc(T.RandomHorizontalFlip(p=0.0)(img)), x)
    np.testing.assert_array_equal(as_hwc(T.RandomVerticalFlip(p=1.0)(img)), x[::-1])
    rustgrad.manual_seed(0)
    draws = [bool(rustgrad.rand(1) < 0.5) for _ in range(20)]  # one rand(1) per call, as torchvision
    rustgrad.manual_seed(0)
    flip = T.RandomHorizontalFlip()
    for d in draws:
        np.testing.assert_array_equal(as_hwc(flip(img)), x[:, ::-1] if d else x)
    assert any(draws) and not all(draws)


def test_random_crop_with_padding_follows_the_generator():
    x = np.arange(2 * 6 * 5, dtype=np.float32).reshape(2, 6, 5)
    crop = T.RandomCrop((4, 3), padding=2)
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    for seed in range(5):
        rustgrad.manual_seed(seed)
        i = rustgrad.randint(0, 10 - 4 + 1, size=(1,)).item()
        j = rustgrad.randint(0, 9 - 3 + 1, size=(1,)).item()
        rustgrad.manual_seed(seed)
        out = crop(rustgrad.tensor(x))
        assert_same(out, padded[:, i:i + 4, j:j + 3])
    rustgrad.manual_seed(7)
    a = T.RandomCrop(32, padding=4)(hwc((32, 32, 3)))
    rustgrad.manual_seed(7)
    b = T.RandomCrop(32, padding=4)(hwc((32, 32, 3)))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (32, 32, 3)


@pytest.mark.parametrize("mode,np_mode", [("constant", "constant"), ("edge", "edge"), ("reflect", "reflect"),
                                          ("symmetric", "symmetric")])
def test_pad_modes(mode, np_mode):
    x = hwc((4, 5, 3))
    ltrb = [1, 3, 2, 0]
    widths = ((3, 0), (1, 2), (0, 0))
    ref = np.pad(x, widths, mode=np_mode)
    np.testing.assert_array_equal(F.pad(x, ltrb, padding_mode=mode), ref)
    out = F.pad(rustgrad.tensor(x.transpose(2, 0, 1)), ltrb, padding_mode=mode)
    assert_same(out, ref.transpose(2, 0, 1))
    if PILImage is not None:
        np.testing.assert_array_equal(np.asarray(F.pad(PILImage.fromarray(x), ltrb, padding_mode=mode)), ref)


def test_pad_fill_and_errors():
    x = hwc((2, 2, 3))
    out = F.pad(x, 1, fill=(10, 20, 30))
    np.testing.assert_array_equal(out[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(out[1:3, 1:3], x)
    assert_same(F.pad(rustgrad.ones(1, 2, 2), [1, 2], fill=7.5)[0, 0, 0], np.float32(7.5))
    with pytest.raises(ValueError, match="Padding must be an int or a 1, 2, or 4 element tuple, not a 3"):
        T.Pad((1, 2, 3))
    with pytest.raises(ValueError, match="Padding mode should be either constant, edge, reflect or symmetric"):
        T.Pad(1, padding_mode="wrap")
    with pytest.raises(ValueError, match="The number of elements in 'fill' does not match"):
        F.pad(x, 1, fill=(1, 2))


def test_random_crop_pad_if_needed_and_errors():
    x = rustgrad.ones(1, 3, 2)
    out = T.RandomCrop((5, 4), pad_if_needed=True, fill=-1)(x)
    assert tuple(out.shape) == (1, 5, 4)
    assert float(out.sum()) == 6 - 14
    with pytest.raises(ValueError, match=r"Required crop size \(5, 4\) is larger than input image size \(3, 2\)"):
        T.RandomCrop((5, 4))(x)
    with pytest.raises(ValueError, match="Please provide only two dimensions"):
        T.RandomCrop((1, 2, 3))


def test_center_crop():
    x = hwc((7, 6, 3))
    t = rustgrad.tensor(x.transpose(2, 0, 1))
    top, left = int(round((7 - 4) / 2.0)), int(round((6 - 3) / 2.0))
    np.testing.assert_array_equal(T.CenterCrop((4, 3))(x), x[top:top + 4, left:left + 3])
    assert_same(T.CenterCrop((4, 3))(t), x[top:top + 4, left:left + 3].transpose(2, 0, 1))
    big = T.CenterCrop(9)(t)  # smaller than the crop: zero-padded around, then cropped
    ref = np.pad(x, ((1, 1), (1, 2), (0, 0))).transpose(2, 0, 1)
    assert_same(big, ref)
    if PILImage is not None:
        np.testing.assert_array_equal(np.asarray(T.CenterCrop((4, 3))(PILImage.fromarray(x))),
                                      x[top:top + 4, left:left + 3])


def test_crop_outside_the_image_is_zero():
    x = rustgrad.ones(1, 3, 3)
    out = F.crop(x, -1, 1, 3, 4)
    ref = np.zeros((1, 3, 4), np.float32)
    ref[:, 1:, :2] = 1
    assert_same(out, ref)


def test_resize_output_sizes():
    x = rustgrad.rand(3, 10, 20)
    assert tuple(T.Resize(5)(x).shape) == (3, 5, 10)  # the smaller edge becomes 5
    assert tuple(T.Resize((4, 6))(x).shape) == (3, 4, 6)
    assert tuple(T.Resize(6, max_size=8)(x).shape) == (3, 4, 8)
    assert T.Resize((10, 20))(x) is x
    assert T.Resize(4)(hwc((8, 12, 3))).shape == (4, 6, 3)  # an HWC array resizes as an image
    with pytest.raises(ValueError, match="max_size should only be passed"):
        T.Resize((4, 6), max_size=8)(x)
    with pytest.raises(TypeError, match="Size should be int or sequence"):
        T.Resize(2.5)


@requires_torch
@pytest.mark.parametrize("mode,antialias", [("bilinear", True), ("bilinear", False), ("nearest", True),
                                            ("bicubic", True)])
def test_resize_tensor_matches_torch_interpolate(mode, antialias):
    torch = torch_or_none()
    x = np.random.default_rng(0).random((2, 3, 12, 9)).astype(np.float32)
    out = T.Resize((5, 7), interpolation=T.InterpolationMode(mode), antialias=antialias)(rustgrad.tensor(x))
    kw = dict(align_corners=False) if mode != "nearest" else {}
    expected = torch.nn.functional.interpolate(torch.from_numpy(x), size=(5, 7), mode=mode,
                                               antialias=antialias and mode != "nearest", **kw)
    assert_same(out, expected, rtol=1e-5, atol=1e-5)
    u8 = (x * 255).astype(np.uint8)
    out = T.Resize((5, 7), interpolation=T.InterpolationMode(mode), antialias=antialias)(rustgrad.tensor(u8[0]))
    exp = torch.nn.functional.interpolate(torch.from_numpy(u8).float(), size=(5, 7), mode=mode,
                                          antialias=antialias and mode != "nearest", **kw)[0]
    if mode == "bicubic":
        exp = exp.clamp(0, 255)
    np.testing.assert_allclose(out.numpy().astype(np.int64), exp.round().numpy().astype(np.int64), atol=1)
    assert out.dtype == rustgrad.uint8


@requires_pil
def test_resize_array_is_close_to_pillow():
    x = hwc((16, 12, 3))
    ours = T.Resize((7, 5))(x)
    pil = np.asarray(PILImage.fromarray(x).resize((5, 7), PILImage.BILINEAR))
    assert ours.shape == pil.shape and ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - pil.astype(int)).max() <= 1


def test_convert_image_dtype_and_lambda():
    u8 = rustgrad.tensor(hwc((2, 3, 3)))
    assert_same(T.ConvertImageDtype(rustgrad.float32)(u8), u8.numpy().astype(np.float32) / np.float32(255))
    f = rustgrad.tensor(np.array([0.0, 0.5, 1.0], np.float32))
    assert_same(F.convert_image_dtype(f, rustgrad.uint8), np.array([0, 127, 255], np.uint8))
    with pytest.raises(RuntimeError, match="cannot be performed safely"):
        F.convert_image_dtype(f, rustgrad.int64)
    assert T.Lambda(lambda v: v * 2)(3) == 6
    with pytest.raises(TypeError, match="Argument lambd should be callable, got 'int'"):
        T.Lambda(3)


def test_reprs_as_torchvision():
    assert repr(T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))])) == (
        "Compose(\n"
        "    RandomCrop(size=(32, 32), padding=4)\n"
        "    RandomHorizontalFlip(p=0.5)\n"
        "    ToTensor()\n"
        "    Normalize(mean=(0.4914, 0.4822, 0.4465), std=(0.247, 0.243, 0.261))\n"
        ")")
    assert repr(T.Resize(10)) == "Resize(size=10, interpolation=bilinear, max_size=None, antialias=True)"
    assert repr(T.CenterCrop(3)) == "CenterCrop(size=(3, 3))"
    assert repr(T.Pad(2)) == "Pad(padding=2, fill=0, padding_mode=constant)"
    assert repr(T.Lambda(abs)) == "Lambda()"
    assert repr(T.ToPILImage()) == "ToPILImage()" and repr(T.ToPILImage("L")) == "ToPILImage(mode=L)"
    assert repr(T.PILToTensor()) == "PILToTensor()"
    assert repr(T.RandomVerticalFlip(0.3)) == "RandomVerticalFlip(p=0.3)"
    assert repr(T.ConvertImageDtype(rustgrad.float32)) == "ConvertImageDtype()"
    assert repr(T.RandomApply([T.RandomHorizontalFlip()], p=0.3)) == (
        "RandomApply(\n    p=0.3\n    RandomHorizontalFlip(p=0.5)\n)")


# ---------------------------------------------------------------------------------------------
# make_grid / save_image

def grid_reference(batch, nrow=8, padding=2, pad_value=0.0):
    """make_grid as torchvision documents it, in NumPy: images in row-major order, nrow per row,
    `padding` pixels of pad_value before every image and after the last row/column."""
    b, c, h, w = batch.shape
    if c == 1:
        batch = np.repeat(batch, 3, axis=1)
        c = 3
    xmaps = min(nrow, b)
    ymaps = -(-b // xmaps)
    grid = np.full((c, ymaps * (h + padding) + padding, xmaps * (w + padding) + padding), pad_value, batch.dtype)
    for k in range(b):
        y, x = divmod(k, xmaps)
        top, left = y * (h + padding) + padding, x * (w + padding) + padding
        grid[:, top:top + h, left:left + w] = batch[k]
    return grid


@pytest.mark.parametrize("b,c,nrow,padding,pad_value", [(5, 3, 2, 2, 0.0), (4, 3, 8, 2, 0.0), (7, 1, 3, 1, 0.5),
                                                        (9, 3, 4, 0, 0.0), (2, 3, 1, 3, 1.0)])
def test_make_grid_layout(b, c, nrow, padding, pad_value):
    batch = np.random.default_rng(b).random((b, c, 4, 5)).astype(np.float32)
    out = torchvision.utils.make_grid(rustgrad.tensor(batch), nrow=nrow, padding=padding, pad_value=pad_value)
    assert_same(out, grid_reference(batch, nrow, padding, pad_value))
    listed = torchvision.utils.make_grid([rustgrad.tensor(im) for im in batch], nrow=nrow, padding=padding,
                                         pad_value=pad_value)
    assert_same(listed, grid_reference(batch, nrow, padding, pad_value))


def test_make_grid_normalize():
    batch = np.random.default_rng(0).normal(size=(3, 3, 4, 4)).astype(np.float32)
    t = rustgrad.tensor(batch)
    out = torchvision.utils.make_grid(t, normalize=True)
    scaled = (batch - batch.min()) / (batch.max() - batch.min())
    assert_same(out, grid_reference(scaled), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(t.numpy(), batch)  # normalize works on a copy
    out = torchvision.utils.make_grid(t, normalize=True, value_range=(-1, 1))
    assert_same(out, grid_reference((np.clip(batch, -1, 1) + 1) / 2), rtol=1e-5, atol=1e-6)
    each = np.stack([(im - im.min()) / (im.max() - im.min()) for im in batch])
    out = torchvision.utils.make_grid(t, normalize=True, scale_each=True)
    assert_same(out, grid_reference(each), rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="value_range has to be a tuple"):
        torchvision.utils.make_grid(t, normalize=True, value_range=[0, 1])


def test_make_grid_single_images_and_errors():
    img = np.random.default_rng(1).random((3, 4, 5)).astype(np.float32)
    assert_same(torchvision.utils.make_grid(rustgrad.tensor(img)), img)  # one image: no padding
    gray = img[0]
    assert_same(torchvision.utils.make_grid(rustgrad.tensor(gray)), np.stack([gray] * 3))
    with pytest.raises(TypeError, match="tensor or list of tensors expected, got <class 'numpy.ndarray'>"):
        torchvision.utils.make_grid(img)
    with pytest.raises(TypeError, match="got a list containing <class 'int'>"):
        torchvision.utils.make_grid([rustgrad.tensor(img), 3])


@requires_torch
def test_make_grid_matches_torchvision_source_on_torch():
    # torchvision's loop run on real torch tensors (torchvision itself is not installed here).
    torch = torch_or_none()
    batch = np.random.default_rng(2).random((6, 3, 3, 3)).astype(np.float32)
    x = torch.from_numpy(batch)
    grid = x.new_full((3, 2 * 5 + 2, 4 * 5 + 2), 0.25)
    for k in range(6):
        y, xx = divmod(k, 4)
        grid.narrow(1, y * 5 + 2, 3).narrow(2, xx * 5 + 2, 3).copy_(x[k])
    assert_same(torchvision.utils.make_grid(rustgrad.tensor(batch), nrow=4, pad_value=0.25), grid)


def test_save_image_without_pillow(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now fails
    with pytest.raises(ImportError, match="Pillow"):
        torchvision.utils.save_image(rustgrad.rand(3, 4, 4), str(tmp_path / "x.png"))


@requires_pil
def test_save_image_writes_png(tmp_path):
    batch = np.random.default_rng(0).random((3, 3, 4, 4)).astype(np.float32)
    path = tmp_path / "grid.png"
    torchvision.utils.save_image(rustgrad.tensor(batch), str(path), nrow=2)
    back = np.asarray(PILImage.open(path))
    expected = np.clip(grid_reference(batch, nrow=2) * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    np.testing.assert_array_equal(back, expected)
    buf = io.BytesIO()
    torchvision.utils.save_image(rustgrad.tensor(batch[0]), buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------
# The blitz tutorial's loading snippet

def test_blitz_cifar10_loader(tmp_path):
    try:
        from rustgrad.utils.data import DataLoader
    except ImportError:
        pytest.skip("rustgrad.utils.data is not available yet")
    write_cifar(tmp_path)
    transform = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    trainset = torchvision.datasets.CIFAR10(root=str(tmp_path), train=True, download=True, transform=transform)
    trainloader = DataLoader(trainset, batch_size=4, shuffle=True, num_workers=0)
    images, labels = next(iter(trainloader))
    assert tuple(images.shape) == (4, 3, 32, 32) and images.dtype == rustgrad.float32
    assert labels.dtype == rustgrad.int64 and tuple(labels.shape) == (4,)
    assert float(images.min()) >= -1 and float(images.max()) <= 1
    seen = 0
    for images, labels in trainloader:
        seen += images.shape[0]
    assert seen == 30
    grid = torchvision.utils.make_grid(images)
    assert tuple(grid.shape) == (3, 36, 34 * images.shape[0] + 2)

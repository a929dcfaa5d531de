# MNIST and its drop-in variants (FashionMNIST, KMNIST) from the IDX files under
# root/<ClassName>/raw, read plain or gzipped. There is no network here: download=True only
# checks that the files are in place.
import gzip
import os
import warnings

import numpy as np

import rustgrad as _rg

from ..transforms import functional as F
from .vision import VisionDataset


class MNIST(VisionDataset):
    """Handwritten digits: 60,000 training and 10,000 test 28x28 grayscale images."""

    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
    resources = [
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]
    training_file = "training.pt"
    test_file = "test.pt"
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]

    @property
    def train_labels(self):
        warnings.warn("train_labels has been renamed targets")
        return self.targets

    @property
    def test_labels(self):
        warnings.warn("test_labels has been renamed targets")
        return self.targets

    @property
    def train_data(self):
        warnings.warn("train_data has been renamed data")
        return self.data

    @property
    def test_data(self):
        warnings.warn("test_data has been renamed data")
        return self.data

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = train
        if download:
            self.download()
        if not self._check_exists():
            raise RuntimeError("Dataset not found. You can use download=True to download it. " + self._placement())
        self.data, self.targets = self._load_data()

    def _load_data(self):
        split = "train" if self.train else "t10k"
        data = read_image_file(self._raw_file(f"{split}-images-idx3-ubyte"))
        targets = read_label_file(self._raw_file(f"{split}-labels-idx1-ubyte"))
        return data, targets

    def __getitem__(self, index):
        img, target = self.data[index], int(self.targets[index])
        img = F._to_image(np.array(img.numpy()))  # 'L' mode with Pillow: 2-D uint8
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self):
        return len(self.data)

    @property
    def raw_folder(self):
        return os.path.join(self.root, self.__class__.__name__, "raw")

    @property
    def processed_folder(self):
        return os.path.join(self.root, self.__class__.__name__, "processed")

    @property
    def class_to_idx(self):
        return {_class: i for i, _class in enumerate(self.classes)}

    def _raw_file(self, name):
        """The extracted file if present, else its .gz; None when neither exists."""
        for candidate in (name, name + ".gz"):
            path = os.path.join(self.raw_folder, candidate)
            if os.path.isfile(path):
                return path
        return None

    def _names(self):
        return [os.path.splitext(gz)[0] for gz, _ in self.resources]

    def _check_exists(self):
        return all(self._raw_file(name) is not None for name in self._names())

    def _placement(self):
        missing = [name for name in self._names() if self._raw_file(name) is None]
        return (f"{self.__class__.__name__} not found under {self.raw_folder}: download "
                f"{', '.join(gz for gz, _ in self.resources)} from {self.mirrors[0]} and place them in "
                f"{self.raw_folder} (gzipped or extracted). Missing: {', '.join(missing)}")

    def download(self):
        if self._check_exists():
            return
        raise RuntimeError("There is no network access to download the dataset. " + self._placement())

    def extra_repr(self):
        return f"Split: {'Train' if self.train is True else 'Test'}"


class FashionMNIST(MNIST):
    """Zalando's article images in MNIST's format."""

    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    resources = [
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ]
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]


class KMNIST(MNIST):
    """Kuzushiji-MNIST: cursive Japanese characters in MNIST's format."""

    mirrors = ["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"]
    resources = [
        ("train-images-idx3-ubyte.gz", "bdb82020997e1d708af4cf47b453dcf7"),
        ("train-labels-idx1-ubyte.gz", "e144d726b3acfaa3e44228e80efcd344"),
        ("t10k-images-idx3-ubyte.gz", "5c965bf0a639b31b8f53240b1b52f4d7"),
        ("t10k-labels-idx1-ubyte.gz", "7320c461ea6c1c855c0b718fb2a4b134"),
    ]
    classes = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


# IDX element types: the third magic byte; data is big-endian.
_IDX_TYPES = {8: ">u1", 9: ">i1", 11: ">i2", 12: ">i4", 13: ">f4", 14: ">f8"}


def read_sn3_pascalvincent_array(path, strict=True):
    """An IDX ("SN3 Pascal Vincent") file, plain or gzipped, as a native-endian NumPy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES or not 1 <= data[3] <= 3:
        raise ValueError(f"{path} is not an IDX file: magic number {data[:4].hex()}")
    ty, nd = data[2], data[3]
    shape = [int.from_bytes(data[4 * (i + 1):4 * (i + 2)], "big") for i in range(nd)]
    dtype = np.dtype(_IDX_TYPES[ty])
    parsed = np.frombuffer(data, dtype=dtype, offset=4 * (nd + 1))
    if parsed.size != int(np.prod(shape)):
        if strict or parsed.size < int(np.prod(shape)):
            raise ValueError(f"{path}: the header promises {int(np.prod(shape))} values, the file holds {parsed.size}")
        parsed = parsed[:int(np.prod(shape))]
    return parsed.astype(dtype.newbyteorder("=")).reshape(shape)


def _checked(path, ndim):
    x = read_sn3_pascalvincent_array(path, strict=False)
    if x.dtype != np.uint8:
        raise TypeError(f"x should be of dtype rustgrad.uint8 instead of {x.dtype.name}")
    if x.ndim != ndim:
        raise ValueError(f"x should have {ndim} dimension{'s' if ndim > 1 else ''} instead of {x.ndim}")
    return x


def read_label_file(path):
    """Labels as an int64 tensor (N,)."""
    return _rg.tensor(_checked(path, 1).astype(np.int64))


def read_image_file(path):
    """Images as a uint8 tensor (N, H, W)."""
    return _rg.tensor(_checked(path, 3))

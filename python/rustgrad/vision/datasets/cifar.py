# CIFAR-10 and CIFAR-100 from their "python version" directories: pickled batches of uint8 rows
# (N, 3072) plus a meta file of class names. There is no network here, so download=True only
# verifies the files or extracts an archive placed under root by hand.
import os
import pickle
import tarfile

import numpy as np

from ..transforms import functional as F
from .vision import VisionDataset


class CIFAR10(VisionDataset):
    """CIFAR-10: 50,000 training and 10,000 test 32x32 RGB images in 10 classes."""

    base_folder = "cifar-10-batches-py"
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    page = "https://www.cs.toronto.edu/~kriz/cifar.html"
    filename = "cifar-10-python.tar.gz"
    tgz_md5 = "c58f30108f718f92721af3b95e74349a"
    train_list = [
        ["data_batch_1", "c99cafc152244af753f735de768cd75f"],
        ["data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"],
        ["data_batch_3", "54ebc095f3ab1f0389bbae665268c751"],
        ["data_batch_4", "634d18415352ddfa80567beed471001a"],
        ["data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"],
    ]
    test_list = [
        ["test_batch", "40351d587109b95175f43aff81a1287e"],
    ]
    meta = {"filename": "batches.meta", "key": "label_names", "md5": "5ff9c542aee3614f3951f8cda6e48888"}
    _title = "CIFAR-10"

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = train
        if download:
            self.download()
        if not self._check_integrity():
            raise RuntimeError("Dataset not found or corrupted. You can use download=True to download it. "
                               + self._placement())
        files = self.train_list if self.train else self.test_list
        self.data = []
        self.targets = []
        for file_name, _ in files:
            entry = _load_pickle(os.path.join(self.root, self.base_folder, file_name))
            self.data.append(np.asarray(entry["data"], dtype=np.uint8))
            self.targets.extend(int(t) for t in entry["labels" if "labels" in entry else "fine_labels"])
        self.data = np.vstack(self.data).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))  # HWC, as torchvision
        self._load_meta()

    def _load_meta(self):
        names = _load_pickle(os.path.join(self.root, self.base_folder, self.meta["filename"]))[self.meta["key"]]
        self.classes = [n.decode("latin1") if isinstance(n, bytes) else n for n in names]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}

    def __getitem__(self, index):
        # A copy, so a transform that writes into the array cannot change the dataset.
        img, target = F._to_image(np.array(self.data[index])), self.targets[index]
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self):
        return len(self.data)

    def _required(self):
        names = [name for name, _ in self.train_list + self.test_list] + [self.meta["filename"]]
        return [os.path.join(self.root, self.base_folder, name) for name in names]

    def _check_integrity(self):
        # File names only: the published MD5 sums would reject any reduced copy of the data.
        return all(os.path.isfile(path) for path in self._required())

    def _placement(self):
        folder = os.path.join(self.root, self.base_folder)
        missing = [os.path.basename(p) for p in self._required() if not os.path.isfile(p)]
        first, last = self.train_list[0][0], self.test_list[-1][0]
        return (f"{self._title} not found under {folder}: download {self.filename} from the {self._title} page "
                f"({self.page}, {self.url}), extract it so that {os.path.join(folder, first)} ... "
                f"{os.path.join(folder, last)} and {os.path.join(folder, self.meta['filename'])} exist, "
                f"or place {self.filename} itself in {self.root} and pass download=True to extract it. "
                f"Missing: {', '.join(missing)}")

    def download(self):
        if self._check_integrity():
            print("Files already downloaded and verified")
            return
        archive = os.path.join(self.root, self.filename)
        if os.path.isfile(archive):  # placed by hand: unpack it as torchvision would after downloading
            print(f"Extracting {archive} to {self.root}")
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(self.root, filter="data")
            if self._check_integrity():
                return
        raise RuntimeError("There is no network access to download the dataset. " + self._placement())

    def extra_repr(self):
        return f"Split: {'Train' if self.train is True else 'Test'}"


class CIFAR100(CIFAR10):
    """CIFAR-100: the CIFAR-10 layout with 100 fine classes (targets are the fine labels)."""

    base_folder = "cifar-100-python"
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    filename = "cifar-100-python.tar.gz"
    tgz_md5 = "eb9058c3a382ffc7106e4002c42a8d85"
    train_list = [["train", "16019d7e3df5f24257cddd939b257f8d"]]
    test_list = [["test", "f0ef6b0ae62326f3e7ffdfab6717acfc"]]
    meta = {"filename": "meta", "key": "fine_label_names", "md5": "7973b15100ade9c7d40fb424638fde48"}
    _title = "CIFAR-100"


def _load_pickle(path):
    # The published files are Python 2 pickles: latin1 maps their byte strings 1:1. Copies written
    # from Python 3 may have bytes keys instead; both spell the same dict.
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}

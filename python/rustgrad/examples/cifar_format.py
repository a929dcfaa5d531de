# Writing images as a CIFAR-10 "python version" directory (cifar-10-batches-py), byte for byte in
# the layout of the published files, so that the unchanged tutorial can run on any images.
import os
import pickle
import struct

import numpy as np

BASE_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = 5


class _Py2Str(str):
    """A Python 2 `str`. The published files were pickled by Python 2, so their keys load as str
    with encoding='latin1' (torchvision's choice) and as bytes with encoding='bytes'; Python 3's
    own str pickles as unicode, which would load as str under both."""


class _Py2Pickler(pickle._Pickler):
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        data = obj.encode("latin1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[_Py2Str] = _save_py2_str


def _dump(obj, path):
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


def _batch(label, images, labels, first):
    # Rows are the 3072 bytes of one image: the red plane, then green, then blue, each row-major.
    rows = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), 3 * 32 * 32)
    return {
        _Py2Str("batch_label"): _Py2Str(label),
        _Py2Str("labels"): [int(y) for y in labels],
        _Py2Str("data"): rows,
        _Py2Str("filenames"): [_Py2Str(f"image_{first + i:06d}.png") for i in range(len(images))],
    }


def write_cifar10(root, train, test, label_names):
    """Write `root/cifar-10-batches-py`: data_batch_1..5 (the training images split in five),
    test_batch and batches.meta. `train` and `test` are (images, labels) with images uint8 of
    shape (N, 32, 32, 3) as `CIFAR10.data` holds them. Returns the folder's path."""
    if len(label_names) != 10:
        raise ValueError(f"CIFAR-10 has 10 classes, got {len(label_names)} label names")
    folder = os.path.join(root, BASE_FOLDER)
    os.makedirs(folder, exist_ok=True)
    splits = []
    for images, labels in (train, test):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.dtype != np.uint8 or images.shape[1:] != (32, 32, 3) or len(labels) != len(images):
            raise ValueError("expected uint8 images of shape (N, 32, 32, 3) and N labels, got "
                             f"{images.dtype} {images.shape} and {len(labels)} labels")
        splits.append((images, labels))
    (train_x, train_y), (test_x, test_y) = splits
    bounds = np.linspace(0, len(train_x), TRAIN_BATCHES + 1).astype(int)
    for i in range(TRAIN_BATCHES):
        lo, hi = bounds[i], bounds[i + 1]
        batch = _batch(f"training batch {i + 1} of {TRAIN_BATCHES}", train_x[lo:hi], train_y[lo:hi], lo)
        _dump(batch, os.path.join(folder, f"data_batch_{i + 1}"))
    _dump(_batch("testing batch 1 of 1", test_x, test_y, 0), os.path.join(folder, "test_batch"))
    meta = {
        _Py2Str("num_cases_per_batch"): int(bounds[1] - bounds[0]),
        _Py2Str("label_names"): [_Py2Str(name) for name in label_names],
        _Py2Str("num_vis"): 3 * 32 * 32,
    }
    _dump(meta, os.path.join(folder, "batches.meta"))
    return folder

# The main job (`rustgrad-cifar10`, rustgrad.examples.cifar10): the synthetic dataset, the
# CIFAR-10 file writer, the progress bar, and whole runs of main() on synthetic images and on a
# tiny CIFAR-10 directory in the real format (outputs, reload equality, learning, flags, errors).
import io
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

examples = pytest.importorskip("rustgrad.examples")  # absent when the suite runs on PyTorch

import rustgrad as rg  # noqa: E402
from rustgrad.examples import cifar10  # noqa: E402
from rustgrad.examples.cifar_format import write_cifar10  # noqa: E402
from rustgrad.examples.lenet import LeNet  # noqa: E402
from rustgrad.examples.progress import SimpleBar  # noqa: E402
from rustgrad.examples.synthetic import CLASSES, SyntheticImages  # noqa: E402
from _helpers import requires_torch, torch_or_none  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _load_state(path):
    load = rg.load if hasattr(rg, "load") else __import__("rustgrad.serialization").serialization.load
    return load(path)


def _run(tmp_path, *flags, data=None):
    out = tmp_path / "out"
    argv = ["--data", str(data or tmp_path / "no-data"), "--out", str(out), *flags]
    return cifar10.main(argv), out


# ---- the synthetic dataset -------------------------------------------------------------------

def test_synthetic_items_are_deterministic_balanced_uint8_images():
    a, b = SyntheticImages(30, seed=3), SyntheticImages(30, seed=3)
    assert len(a) == 30 and a.classes == CLASSES and len(CLASSES) == 10
    for i in (0, 7, 29, -1):
        (xa, ya), (xb, yb) = a[i], b[i]
        assert xa.dtype == np.uint8 and xa.shape == (32, 32, 3)
        np.testing.assert_array_equal(xa, xb)
        assert ya == yb == (i % 30) % 10
    assert np.bincount([a[i][1] for i in range(30)]).tolist() == [3] * 10
    # seed and split both change the pictures
    assert not np.array_equal(a[5][0], SyntheticImages(30, seed=4)[5][0])
    assert not np.array_equal(a[5][0], SyntheticImages(30, train=False, seed=3)[5][0])
    with pytest.raises(IndexError):
        a[30]
    with pytest.raises(ValueError):
        SyntheticImages(-1)


def test_synthetic_transforms_apply_to_image_and_label():
    ds = SyntheticImages(10, transform=lambda x: x.astype(np.float32) / 255, target_transform=lambda y: -y)
    x, y = ds[4]
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1 and y == -4
    assert "Number of datapoints: 10" in repr(ds) and "Split: Train" in repr(ds)


def test_synthetic_classes_need_shapes_not_colours():
    # Nearest class mean of each image's average colour: near chance, so the net must see shape.
    train, test = SyntheticImages(600, seed=1), SyntheticImages(300, train=False, seed=1)
    def features(ds):
        xs, ys = zip(*(ds[i] for i in range(len(ds))))
        return np.stack(xs).reshape(len(xs), -1, 3).mean(1), np.array(ys)
    (fx, fy), (tx, ty) = features(train), features(test)
    means = np.stack([fx[fy == c].mean(0) for c in range(10)])
    guess = np.argmin(((tx[:, None, :] - means[None]) ** 2).sum(-1), 1)
    assert np.mean(guess == ty) < 0.2
    images = np.stack([train[i][0] for i in range(600)]).astype(np.float64)
    assert images.std() > 30  # varied, noisy pictures rather than flat colour


# ---- the CIFAR-10 writer ---------------------------------------------------------------------

def _fake_cifar(root, n_train=50, n_test=20, seed=0):
    rng = np.random.default_rng(seed)
    train = (rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8), np.arange(n_train) % 10)
    test = (rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8), (np.arange(n_test) * 3) % 10)
    return write_cifar10(root, train, test, CIFAR_NAMES), train, test


def test_cifar_writer_matches_the_published_layout(tmp_path):
    folder, (train_x, train_y), (test_x, test_y) = _fake_cifar(tmp_path, n_train=52)
    assert sorted(os.listdir(folder)) == sorted(
        ["batches.meta", "test_batch"] + [f"data_batch_{i}" for i in range(1, 6)])
    rows, labels = [], []
    for i in range(1, 6):
        with open(os.path.join(folder, f"data_batch_{i}"), "rb") as f:
            entry = pickle.load(f, encoding="bytes")  # Python 2 str keys load as bytes
        assert set(entry) == {b"batch_label", b"labels", b"data", b"filenames"}
        assert entry[b"batch_label"] == f"training batch {i} of 5".encode()
        assert entry[b"data"].dtype == np.uint8 and entry[b"data"].shape[1] == 3072
        rows.append(entry[b"data"])
        labels += entry[b"labels"]
    rows = np.concatenate(rows)
    assert len(rows) == 52 and labels == train_y.tolist()
    # a row holds the red plane, then green, then blue
    np.testing.assert_array_equal(rows[7, :1024].reshape(32, 32), train_x[7, :, :, 0])
    np.testing.assert_array_equal(rows[7, 2048:].reshape(32, 32), train_x[7, :, :, 2])
    with open(os.path.join(folder, "batches.meta"), "rb") as f:
        meta = pickle.load(f, encoding="latin1")  # torchvision's way: keys load as str
    assert meta["label_names"] == CIFAR_NAMES and meta["num_vis"] == 3072
    with open(os.path.join(folder, "test_batch"), "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    assert entry["labels"] == test_y.tolist()
    np.testing.assert_array_equal(entry["data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), test_x)
    with pytest.raises(ValueError):
        write_cifar10(tmp_path, train_x[..., :2], test_x, CIFAR_NAMES)  # not RGB
    with pytest.raises(ValueError):
        write_cifar10(tmp_path, train_x, test_x, CIFAR_NAMES[:9])


# ---- the progress bar ------------------------------------------------------------------------

class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_prints_tenths_to_a_file():
    out = io.StringIO()
    bar = SimpleBar(100, "epoch 1/2", "img", out)
    for _ in range(25):
        bar.update(4, loss=2.5)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10, lines
    assert lines[0].startswith("epoch 1/2:  12%|") and "12/100" in lines[0]
    assert lines[-1].startswith("epoch 1/2: 100%|") and "100/100" in lines[-1]
    assert "img/s" in lines[-1] and "loss=2.500" in lines[-1] and "<" in lines[-1]


def test_progress_bar_redraws_in_place_on_a_terminal():
    out = _Tty()
    bar = SimpleBar(10, "epoch 1/1", "img", out)
    for _ in range(10):
        bar.update(1, loss=1.0)
    bar.close()
    text = out.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and text.count("\n") == 1
    assert "10/10" in text.split("\r")[-1]


def test_progress_bar_reports_an_unfinished_stretch_on_close():
    out = io.StringIO()
    bar = SimpleBar(100, "e", "img", out)
    bar.update(15)
    bar.update(3)
    bar.close()
    bar.close()
    assert [line.split("|")[0] for line in out.getvalue().splitlines()] == ["e:  15%", "e:  18%"]


# ---- whole runs ------------------------------------------------------------------------------

def test_main_on_synthetic_learns_and_saves_a_reloadable_model(tmp_path, capsys):
    # a budget of 4,000 images; the default (40,000 at lr 0.001, batch 4) gets ~90 %
    code, out = _run(tmp_path, "--epochs", "2", "--limit", "2000", "--test-limit", "300",
                     "--batch-size", "8", "--lr", "0.02", "--seed", "0")
    assert code == 0
    text = capsys.readouterr()
    folder = os.path.join(str(tmp_path / "no-data"), "cifar-10-batches-py")
    assert (f"CIFAR-10 not found under {folder}; training on the built-in synthetic dataset "
            "(2000 train / 300 test images)") in text.out
    assert "Finished Training" in text.out
    for name in CLASSES:
        assert f"Accuracy for class: {name:5s} is " in text.out
    assert "epoch 2/2: 100%" in text.err and "img/s" in text.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "synthetic" and metrics["train_images"] == 2000
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert metrics["test_accuracy"] >= 30.0, metrics["epochs"]  # chance is 10 %
    assert metrics["epochs"][1]["train_loss"] < metrics["epochs"][0]["train_loss"]
    assert metrics["reload_matches"] and metrics["reloaded_test_accuracy"] == metrics["test_accuracy"]
    assert len(metrics["loss_trace"]) == 2 * cifar10.LOSS_POINTS
    assert abs(np.mean(list(metrics["per_class_accuracy"].values())) - metrics["test_accuracy"]) < 1e-9
    assert f"Accuracy of the network on the 300 test images: {metrics['test_accuracy']:.1f} %" in text.out
    # the state dict has LeNet's keys and shapes, and a fresh LeNet reproduces the accuracy
    state = _load_state(str(out / "lenet.pt"))
    reference = LeNet().state_dict()
    assert list(state) == list(reference)
    assert all(tuple(state[k].shape) == tuple(reference[k].shape) for k in state)
    if (out / "curves.png").exists():
        assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "skipped curves.png (matplotlib is not installed" in text.out


def test_main_on_a_cifar10_directory(tmp_path, capsys):
    _fake_cifar(tmp_path / "data")
    code, out = _run(tmp_path, "--epochs", "1", data=tmp_path / "data")
    assert code == 0
    text = capsys.readouterr().out
    assert f"CIFAR-10 from {os.path.join(str(tmp_path / 'data'), 'cifar-10-batches-py')} (50 train / 20 test images)" in text
    assert "not found" not in text
    for name in cifar10.CIFAR_CLASSES:  # the tutorial's short names
        assert f"Accuracy for class: {name:5s} is " in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == "cifar10" and metrics["test_images"] == 20
    assert metrics["reload_matches"]
    # --limit takes the first images of the training set
    code, _ = _run(tmp_path, "--epochs", "1", "--limit", "12", "--test-limit", "10", data=tmp_path / "data")
    assert code == 0 and "(12 train / 10 test images)" in capsys.readouterr().out


def test_an_incomplete_cifar10_directory_is_an_error(tmp_path, capsys):
    (tmp_path / "data" / "cifar-10-batches-py").mkdir(parents=True)
    with pytest.raises(SystemExit) as exit_info:
        _run(tmp_path, data=tmp_path / "data")
    assert exit_info.value.code == 1
    assert "data_batch_1" in capsys.readouterr().err


def test_runs_are_reproducible_and_workers_change_nothing(tmp_path):
    states = []
    for workers in ("0", "0", "2"):
        code, out = _run(tmp_path / workers / str(len(states)), "--epochs", "1", "--limit", "40",
                         "--test-limit", "20", "--seed", "5", "--workers", workers)
        assert code == 0
        states.append(_load_state(str(out / "lenet.pt")))
    for other in states[1:]:
        for key, value in states[0].items():
            np.testing.assert_array_equal(value.numpy(), other[key].numpy(), err_msg=key)
    code, out = _run(tmp_path / "seed6", "--epochs", "1", "--limit", "40", "--test-limit", "20", "--seed", "6")
    assert not np.array_equal(_load_state(str(out / "lenet.pt"))["fc3.bias"].numpy(), states[0]["fc3.bias"].numpy())


def test_threads_flag_sets_the_thread_count(tmp_path):
    before = rg.get_num_threads()
    try:
        code, _ = _run(tmp_path, "--epochs", "1", "--limit", "8", "--test-limit", "10", "--threads", "1")
        assert code == 0 and rg.get_num_threads() == 1
    finally:
        rg.set_num_threads(before)


@pytest.mark.parametrize("device, words", [("cuda", "not available"), ("cuda:1", "not available"),
                                           ("mps", "--device"), ("gpu0", "--device")])
def test_unusable_devices_are_clear_errors(tmp_path, capsys, device, words):
    with pytest.raises(SystemExit) as exit_info:
        _run(tmp_path, "--device", device)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "rustgrad-cifar10: error: argument --device" in err and words in err


@pytest.mark.parametrize("flags", [["--epochs", "0"], ["--batch-size", "-1"], ["--lr", "-0.1"],
                                   ["--workers", "-1"], ["--limit", "0"], ["--bogus"]])
def test_bad_flags_exit_with_usage(tmp_path, capsys, flags):
    with pytest.raises(SystemExit) as exit_info:
        _run(tmp_path, *flags)
    assert exit_info.value.code == 2
    assert "usage: rustgrad-cifar10" in capsys.readouterr().err


def test_defaults_follow_the_tutorial():
    args = cifar10.build_parser().parse_args([])
    assert (args.data, args.epochs, args.batch_size, args.lr, args.momentum, args.workers) == \
        ("./data", 2, 4, 0.001, 0.9, 0)
    assert (args.device, args.out, args.threads, args.limit) == ("cpu", "./runs/cifar10", None, None)


@requires_torch
def test_saved_state_dict_loads_in_pytorch_and_gives_the_same_outputs(tmp_path):
    torch = torch_or_none()
    code, out = _run(tmp_path, "--epochs", "1", "--limit", "40", "--test-limit", "20")
    assert code == 0
    theirs = torch.load(str(out / "lenet.pt"), weights_only=True)
    ours = _load_state(str(out / "lenet.pt"))
    assert list(theirs) == list(ours)
    net = LeNet()
    net.load_state_dict(ours)
    tnet = torch.nn.Sequential()  # the same architecture, built from torch layers
    tnet.conv1, tnet.pool, tnet.conv2 = torch.nn.Conv2d(3, 6, 5), torch.nn.MaxPool2d(2, 2), torch.nn.Conv2d(6, 16, 5)
    tnet.fc1, tnet.fc2, tnet.fc3 = torch.nn.Linear(400, 120), torch.nn.Linear(120, 84), torch.nn.Linear(84, 10)
    tnet.load_state_dict(theirs)
    x = np.random.default_rng(0).standard_normal((5, 3, 32, 32)).astype(np.float32)
    F = torch.nn.functional
    t = tnet.pool(F.relu(tnet.conv1(torch.from_numpy(x))))
    t = tnet.pool(F.relu(tnet.conv2(t))).flatten(1)
    expected = tnet.fc3(F.relu(tnet.fc2(F.relu(tnet.fc1(t))))).detach().numpy()
    with rg.no_grad():
        got = net(rg.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


# ---- entry points ----------------------------------------------------------------------------

def _env():
    # The child imports the same rustgrad this process did (the source tree or an installed wheel).
    env = dict(os.environ)
    here = os.path.dirname(os.path.dirname(os.path.abspath(rg.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    return env


@pytest.mark.parametrize("command", [[sys.executable, "-m", "rustgrad.examples.cifar10"],
                                     [sys.executable, os.path.join(ROOT, "examples", "train_cifar10.py")]])
def test_command_line_entry_points(command):
    done = subprocess.run(command + ["--help"], capture_output=True, text=True, env=_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    for flag in ("--data", "--epochs", "--batch-size", "--lr", "--momentum", "--workers", "--threads",
                 "--device", "--out", "--seed", "--limit"):
        assert flag in done.stdout
    bad = subprocess.run(command + ["--device", "cuda"], capture_output=True, text=True, env=_env(), timeout=120)
    assert bad.returncode == 2 and "not available" in bad.stderr


def test_console_script_is_declared():
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        tomllib = pytest.importorskip("tomli")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    assert project["scripts"]["rustgrad-cifar10"] == "rustgrad.examples.cifar10:main"

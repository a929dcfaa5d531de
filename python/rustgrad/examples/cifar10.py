# The main job: the blitz tutorial's LeNet trained on CIFAR-10 (or, without a download, on the
# built-in synthetic images) as a command: `python -m rustgrad.examples.cifar10`,
# `rustgrad-cifar10` or `python examples/train_cifar10.py`, with the same flags everywhere.
import argparse
import json
import os
import sys
import time

import numpy as np

import rustgrad
import rustgrad.nn as nn
import rustgrad.optim as optim
import rustgrad.vision.transforms as transforms
from rustgrad.utils.data import DataLoader, Subset
from rustgrad.vision.datasets import CIFAR10

from .lenet import LeNet
from .progress import progress_bar
from .synthetic import SyntheticImages

# The tutorial's short names for CIFAR-10's classes (batches.meta says 'airplane', 'automobile'...).
CIFAR_CLASSES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Sized so the default command (2 epochs at batch 4) takes about a minute on 2 cores.
SYNTHETIC_TRAIN, SYNTHETIC_TEST = 20000, 2000
# Evaluation needs no gradients and no tutorial batch size: larger batches are just faster.
EVAL_BATCH_SIZE = 200
# Points per epoch on the loss curve.
LOSS_POINTS = 20


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text}")
    return value


def _non_negative_float(text):
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text}")
    return value


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def build_parser():
    p = argparse.ArgumentParser(
        prog="rustgrad-cifar10",
        description="Train the LeNet of PyTorch's 'Training a Classifier' tutorial with rustgrad. "
                    "Uses CIFAR-10 when DIR/cifar-10-batches-py exists, and otherwise a built-in "
                    "synthetic 10-class image dataset that needs no download.")
    p.add_argument("--data", metavar="DIR", default="./data",
                   help="folder holding cifar-10-batches-py (default: ./data)")
    p.add_argument("--epochs", type=_positive_int, default=2,
                   help="passes over the training set (default: 2)")
    p.add_argument("--batch-size", type=_positive_int, default=4,
                   help="training batch size (default: 4, as the tutorial)")
    p.add_argument("--lr", type=_non_negative_float, default=0.001, help="SGD learning rate (default: 0.001)")
    p.add_argument("--momentum", type=_non_negative_float, default=0.9, help="SGD momentum (default: 0.9)")
    p.add_argument("--workers", type=_non_negative_int, default=0,
                   help="DataLoader worker processes (default: 0, load in the main process)")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help=f"threads for rustgrad's kernels (default: all cores, {_cpu_count()} here)")
    p.add_argument("--device", default="cpu", help="device to train on (default: cpu)")
    p.add_argument("--out", metavar="DIR", default="./runs/cifar10",
                   help="where lenet.pt, metrics.json and curves.png go (default: ./runs/cifar10)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for initialisation, shuffling and the synthetic data (default: 0)")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="train on at most N images (e.g. for a quick smoke test)")
    p.add_argument("--test-limit", type=_positive_int, default=None, metavar="N",
                   help="test on at most N images")
    return p


def resolve_device(name, parser):
    """The rustgrad.device for `name`; argparse's error (exit code 2) when it cannot be used."""
    try:
        device = rustgrad.device(name)
    except (RuntimeError, ValueError, TypeError) as err:
        parser.error(f"argument --device: {err}")
    if device.type == "cpu":
        return device
    backend = getattr(rustgrad, device.type, None)
    available = backend is not None and backend.is_available()
    if available and device.index is not None:
        available = device.index < backend.device_count()
    if not available:
        parser.error(f"argument --device: {device} is not available "
                     f"(rustgrad.{device.type}.is_available() is False in this build); use --device cpu")
    return device


def load_datasets(args):
    """(train set, test set, class names, dataset name, a line saying what was loaded)."""
    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    folder = os.path.join(args.data, "cifar-10-batches-py")
    if os.path.isdir(folder):
        train = CIFAR10(args.data, train=True, transform=transform)
        test = CIFAR10(args.data, train=False, transform=transform)
        train, test = _first(train, args.limit), _first(test, args.test_limit)
        note = f"CIFAR-10 from {folder} ({len(train)} train / {len(test)} test images)"
        return train, test, CIFAR_CLASSES, "cifar10", note
    n_train = min(SYNTHETIC_TRAIN, args.limit or SYNTHETIC_TRAIN)
    n_test = min(SYNTHETIC_TEST, args.test_limit or SYNTHETIC_TEST)
    train = SyntheticImages(n_train, train=True, seed=args.seed, transform=transform)
    test = SyntheticImages(n_test, train=False, seed=args.seed, transform=transform)
    note = (f"CIFAR-10 not found under {folder}; training on the built-in synthetic dataset "
            f"({n_train} train / {n_test} test images)")
    return train, test, SyntheticImages.classes, "synthetic", note


def _first(dataset, limit):
    return dataset if limit is None or limit >= len(dataset) else Subset(dataset, range(limit))


def train_epoch(net, loader, criterion, optimizer, device, bar, trace, epoch):
    """One pass over `loader`; returns the mean training loss. Appends (fractional epoch, mean
    loss since the last point) to `trace` each time another 1/LOSS_POINTS of the epoch is done."""
    net.train()
    total, seen = 0.0, 0
    chunk_loss, chunk_seen, mark = 0.0, 0, 1
    size = len(loader.dataset)
    for inputs, labels in loader:
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = criterion(net(inputs), labels)
        loss.backward()
        optimizer.step()
        n, value = labels.shape[0], loss.item()
        total, seen = total + value * n, seen + n
        chunk_loss, chunk_seen = chunk_loss + value * n, chunk_seen + n
        if seen * LOSS_POINTS >= mark * size:
            trace.append((epoch - 1 + seen / size, chunk_loss / chunk_seen))
            chunk_loss, chunk_seen, mark = 0.0, 0, seen * LOSS_POINTS // size + 1
        bar.update(n, loss=total / seen)
    return total / max(seen, 1)


def predict(net, loader, device):
    """(predicted classes, true classes) over `loader` as NumPy arrays."""
    net.eval()
    predicted, truth = [], []
    with rustgrad.no_grad():
        for inputs, labels in loader:
            outputs = net(inputs.to(device))
            predicted.append(outputs.argmax(1).cpu().numpy())
            truth.append(np.asarray(labels.numpy()))
    return np.concatenate(predicted), np.concatenate(truth)


def accuracy(predicted, truth):
    return 100.0 * float(np.mean(predicted == truth)) if len(truth) else 0.0


def per_class_accuracy(predicted, truth, classes):
    """{class name: accuracy in %}; classes absent from the test set are left out."""
    hits = np.bincount(truth[predicted == truth], minlength=len(classes))
    counts = np.bincount(truth, minlength=len(classes))
    return {name: 100.0 * hits[i] / counts[i] for i, name in enumerate(classes) if counts[i]}


def _serialization():
    # The top-level names arrive once the lead exports them; the module has them already.
    if hasattr(rustgrad, "save") and hasattr(rustgrad, "load"):
        return rustgrad.save, rustgrad.load
    from rustgrad import serialization
    return serialization.save, serialization.load


def plot_curves(history, trace, path):
    """Write the loss and accuracy curves; False when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend or window state
    except ImportError:
        return False
    fig = Figure(figsize=(10, 4))
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot([t for t, _ in trace], [v for _, v in trace], color="tab:blue", alpha=0.6,
                 label=f"mean of each 1/{LOSS_POINTS} epoch")
    loss_ax.plot([h["epoch"] for h in history], [h["train_loss"] for h in history], "o-",
                 color="tab:red", label="epoch mean")
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="Training loss")
    loss_ax.legend()
    acc_ax.plot([h["epoch"] for h in history], [h["test_accuracy"] for h in history], "o-",
                color="tab:green")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Test accuracy", ylim=(0, 100))
    acc_ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def fit(net, train_loader, test_loader, epochs, lr, momentum, device):
    """Train with the tutorial's loss and optimizer, testing after each epoch. Returns the
    per-epoch history, the loss trace and the last epoch's (predicted, true) test classes."""
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    size = len(train_loader.dataset)
    history, trace = [], []
    for epoch in range(1, epochs + 1):
        bar = progress_bar(size, f"epoch {epoch}/{epochs}")
        tic = time.perf_counter()
        try:
            loss = train_epoch(net, train_loader, criterion, optimizer, device, bar, trace, epoch)
        finally:
            bar.close()
        seconds = time.perf_counter() - tic
        predicted, truth = predict(net, test_loader, device)
        history.append({"epoch": epoch, "train_loss": loss, "test_accuracy": accuracy(predicted, truth),
                        "seconds": seconds, "images_per_second": size / seconds})
        print(f"[epoch {epoch}/{epochs}] train loss {loss:.3f}, test accuracy "
              f"{history[-1]['test_accuracy']:.1f} % ({size / seconds:.0f} img/s, {seconds:.1f} s)")
        sys.stdout.flush()
    return history, trace, predicted, truth


def save_and_reload(net, path, test_loader, device):
    """Save the state dict to `path`, load it into a fresh LeNet and return that net's test
    predictions: the file must reproduce the trained model exactly."""
    save, load = _serialization()
    save(net.state_dict(), path)
    fresh = LeNet(net.fc3.out_features)
    fresh.load_state_dict(load(path))
    return predict(fresh.to(device), test_loader, device)[0]


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    device = resolve_device(args.device, parser)
    threads = args.threads or _cpu_count()
    rustgrad.set_num_threads(threads)
    rustgrad.manual_seed(args.seed)
    try:
        train_set, test_set, classes, dataset_name, note = load_datasets(args)
    except RuntimeError as err:  # e.g. an incomplete cifar-10-batches-py folder
        parser.exit(1, f"{parser.prog}: error: {err}\n")
    print(note)
    print(f"rustgrad {rustgrad.__version__}: LeNet on {device}, {threads} thread(s), {args.epochs} epoch(s), "
          f"batch size {args.batch_size}, SGD(lr={args.lr}, momentum={args.momentum})")
    sys.stdout.flush()

    persistent = args.workers > 0  # workers start once, not once per epoch
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                              num_workers=args.workers, persistent_workers=persistent)
    test_loader = DataLoader(test_set, batch_size=EVAL_BATCH_SIZE, shuffle=False,
                             num_workers=args.workers, persistent_workers=persistent)
    net = LeNet(len(classes)).to(device)
    started = time.perf_counter()
    history, trace, predicted, truth = fit(net, train_loader, test_loader, args.epochs, args.lr,
                                           args.momentum, device)
    train_seconds = time.perf_counter() - started

    print("Finished Training")
    final = accuracy(predicted, truth)
    print(f"Accuracy of the network on the {len(truth)} test images: {final:.1f} %")
    classwise = per_class_accuracy(predicted, truth, classes)
    for name, value in classwise.items():
        print(f"Accuracy for class: {name:5s} is {value:.1f} %")

    os.makedirs(args.out, exist_ok=True)
    weights = os.path.join(args.out, "lenet.pt")
    reloaded = save_and_reload(net, weights, test_loader, device)
    same = bool(np.array_equal(reloaded, predicted))
    print(f"Saved the state dict to {weights}; a fresh LeNet loaded from it scores "
          f"{accuracy(reloaded, truth):.1f} %" + (" (identical predictions)" if same else ""))

    metrics_path, curves = os.path.join(args.out, "metrics.json"), os.path.join(args.out, "curves.png")
    with open(metrics_path, "w") as f:
        json.dump({"dataset": dataset_name, "classes": list(classes), "train_images": len(train_set),
                   "test_images": len(test_set), "args": vars(args), "threads": threads,
                   "epochs": history, "loss_trace": trace, "train_seconds": train_seconds,
                   "test_accuracy": final, "per_class_accuracy": classwise,
                   "reloaded_test_accuracy": accuracy(reloaded, truth), "reload_matches": same}, f, indent=2)
    if plot_curves(history, trace, curves):
        print(f"Wrote {curves} and {metrics_path}")
    else:
        print(f"Wrote {metrics_path}; skipped curves.png (matplotlib is not installed: pip install matplotlib)")
    if not same:
        print("error: the reloaded model's predictions differ from the trained model's", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

# The built-in stand-in for CIFAR-10: a deterministic, learnable but noisy 10-class dataset of
# 3x32x32 images, each drawn on the fly from (seed, split, index) so no download is needed.
import functools
import math

import numpy as np

from rustgrad.utils.data import Dataset

CLASSES = ("hbar", "vbar", "diag", "adiag", "disc", "ring", "cross", "check", "frame", "tri")


def _inside(d):
    """Anti-aliased coverage of a shape from its signed distance (negative inside), in pixels."""
    return np.clip(0.5 - d, 0.0, 1.0)


def _box(u, v, half_u, half_v):
    return np.maximum(np.abs(u) - half_u, np.abs(v) - half_v)


def _shape_distance(label, u, v, w, L):
    """Signed distance (approximate outside the shape, which is all the coverage needs)."""
    if label == 0:  # horizontal bar
        return _box(u, v, L, w)
    if label == 1:  # vertical bar
        return _box(u, v, w, L)
    a, b = (u + v) / math.sqrt(2), (u - v) / math.sqrt(2)
    if label == 2:  # diagonal bar
        return _box(a, b, L, w)
    if label == 3:  # the other diagonal
        return _box(a, b, w, L)
    r = np.hypot(u, v)
    if label == 4:  # disc
        return r - 0.7 * L
    if label == 5:  # ring
        return np.abs(r - 0.75 * L) - 0.6 * w
    if label == 6:  # plus-shaped cross
        return np.minimum(_box(u, v, L, w), _box(u, v, w, L))
    if label == 7:  # checkerboard patch: cells of 2w pixels inside a square
        cells = np.sin(u * math.pi / (2 * w)) * np.sin(v * math.pi / (2 * w))
        return np.maximum(_box(u, v, L, L), -cells * 2 * w / math.pi)
    if label == 8:  # square outline
        edge = np.maximum(np.abs(u), np.abs(v))
        return np.abs(edge - 0.8 * L) - 0.6 * w
    # triangle: base along the top, apex at the bottom (a half-turn shows it the other way up)
    return np.maximum(-v - 0.8 * L, (2 * np.abs(u) - (0.8 * L - v)) / math.sqrt(5))


@functools.lru_cache(maxsize=4)
def _grid(size):
    grid = np.mgrid[0:size, 0:size].astype(np.float64)
    grid.setflags(write=False)
    return grid


def render(rng, label, size=32):
    """One (size, size, 3) uint8 image of class `label` drawn with generator `rng`."""
    centre = (size - 1) / 2 + rng.uniform(-5, 5, 2)
    scale = rng.uniform(0.75, 1.25)
    yy, xx = _grid(size)
    u, v = (xx - centre[1]) / scale, (yy - centre[0]) / scale
    cover = _inside(_shape_distance(label, u, v, w=2.0, L=9.0) * scale)[..., None]
    # Background: a colour gradient in a random direction. The shape is mostly lighter than its
    # surroundings, by a margin that varies down to nearly nothing; hues are random, so colour
    # alone says nothing about the class.
    angle = rng.uniform(0, 2 * math.pi)
    t = ((xx * math.cos(angle) + yy * math.sin(angle)) / size + 1) / 2
    c0, c1 = rng.uniform(0, 0.65, (2, 3))
    fg = rng.uniform(0.35, 1, 3)
    if rng.random() < 0.25:
        c0, c1, fg = 1 - c0, 1 - c1, 1 - fg
    image = c0 + (c1 - c0) * t[..., None]
    # two small blots of clutter, anywhere, under the shape
    for _ in range(2):
        cy, cx, radius = rng.uniform(0, size, 3) * (1, 1, 0.1)
        blot = _inside((np.hypot(xx - cx, yy - cy) - 1 - radius))[..., None]
        image = image * (1 - blot) + rng.uniform(0, 1, 3) * blot
    image = image * (1 - cover) + fg * cover
    image = image + rng.normal(0, rng.uniform(0.05, 0.3), image.shape)
    if rng.random() < 0.5:  # a half-turn keeps every class what it is
        image = image[::-1, ::-1]
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


class SyntheticImages(Dataset):
    """`size` images of the ten CLASSES, balanced (label = index % 10), drawn from
    (seed, train, index) so every worker process and every run sees the same pictures.

    Items are (image, label) like torchvision's CIFAR10 without Pillow: a (32, 32, 3) uint8
    NumPy array passed through `transform` (e.g. ToTensor + Normalize) when one is given."""

    classes = CLASSES

    def __init__(self, size, train=True, seed=0, transform=None, target_transform=None):
        if size < 0:
            raise ValueError(f"size should be a non-negative integer, got {size}")
        self.size, self.train, self.seed = int(size), bool(train), int(seed)
        self.transform, self.target_transform = transform, target_transform
        self.class_to_idx = {name: i for i, name in enumerate(CLASSES)}

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        if not -self.size <= index < self.size:
            raise IndexError(f"index {index} is out of range for a dataset of {self.size} images")
        index %= self.size
        label = index % len(CLASSES)
        image = render(np.random.default_rng((self.seed, int(self.train), index)), label)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def __repr__(self):
        split = "Train" if self.train else "Test"
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {self.size}",
                 f"    Split: {split}", f"    Seed: {self.seed}"]
        if self.transform is not None:
            lines.append("    Transform: " + repr(self.transform).replace("\n", "\n    "))
        return "\n".join(lines)

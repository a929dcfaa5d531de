# torchvision.datasets: the datasets the tutorials use, read from their on-disk formats.
from .cifar import CIFAR10, CIFAR100
from .fakedata import FakeData
from .mnist import KMNIST, MNIST, FashionMNIST
from .vision import VisionDataset

__all__ = ("CIFAR10", "CIFAR100", "FakeData", "MNIST", "FashionMNIST", "KMNIST", "VisionDataset")

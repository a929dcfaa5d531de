# PyTorch's blitz tutorial "Training a Classifier" (beginner_source/blitz/cifar10_tutorial.py), its
# code run unchanged except for the imports, on a small CIFAR-10 directory in the real format
# (synthetic pictures), checking that it completes and prints the tutorial's lines.
import os
import re
import sys
import types

import numpy as np
import pytest

pytest.importorskip("rustgrad.examples")  # absent when the suite runs on PyTorch

import rustgrad  # noqa: E402
from rustgrad.examples.cifar_format import write_cifar10  # noqa: E402
from rustgrad.examples.synthetic import SyntheticImages  # noqa: E402

TUTORIAL = '''
import torch
import torchvision
import torchvision.transforms as transforms

transform = transforms.Compose(
    [transforms.ToTensor(),
     transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])

batch_size = 4

trainset = torchvision.datasets.CIFAR10(root='./data', train=True,
                                        download=True, transform=transform)
trainloader = torch.utils.data.DataLoader(trainset, batch_size=batch_size,
                                          shuffle=True, num_workers=2)

testset = torchvision.datasets.CIFAR10(root='./data', train=False,
                                       download=True, transform=transform)
testloader = torch.utils.data.DataLoader(testset, batch_size=batch_size,
                                         shuffle=False, num_workers=2)

classes = ('plane', 'car', 'bird', 'cat',
           'deer', 'dog', 'frog', 'horse', 'ship', 'truck')

import matplotlib.pyplot as plt
import numpy as np

# functions to show an image


def imshow(img):
    img = img / 2 + 0.5     # unnormalize
    npimg = img.numpy()
    plt.imshow(np.transpose(npimg, (1, 2, 0)))
    plt.show()


# get some random training images
dataiter = iter(trainloader)
images, labels = next(dataiter)

# show images
imshow(torchvision.utils.make_grid(images))
# print labels
print(' '.join(f'{classes[labels[j]]:5s}' for j in range(batch_size)))

import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1) # flatten all dimensions except batch
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


net = Net()

import torch.optim as optim

criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)

for epoch in range(2):  # loop over the dataset multiple times

    running_loss = 0.0
    for i, data in enumerate(trainloader, 0):
        # get the inputs; data is a list of [inputs, labels]
        inputs, labels = data

        # zero the parameter gradients
        optimizer.zero_grad()

        # forward + backward + optimize
        outputs = net(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()

        # print statistics
        running_loss += loss.item()
        if i % 2000 == 1999:    # print every 2000 mini-batches
            print(f'[{epoch + 1}, {i + 1:5d}] loss: {running_loss / 2000:.3f}')
            running_loss = 0.0

print('Finished Training')

PATH = './cifar_net.pth'
torch.save(net.state_dict(), PATH)

dataiter = iter(testloader)
images, labels = next(dataiter)

# print images
imshow(torchvision.utils.make_grid(images))
print('GroundTruth: ', ' '.join(f'{classes[labels[j]]:5s}' for j in range(4)))

net = Net()
net.load_state_dict(torch.load(PATH, weights_only=True))

outputs = net(images)

_, predicted = torch.max(outputs, 1)

print('Predicted: ', ' '.join(f'{classes[predicted[j]]:5s}'
                              for j in range(4)))

correct = 0
total = 0
# since we're not training, we don't need to calculate the gradients for our outputs
with torch.no_grad():
    for data in testloader:
        images, labels = data
        # calculate outputs by running images through the network
        outputs = net(images)
        # the class with the highest energy is what we choose as prediction
        _, predicted = torch.max(outputs, 1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()

print(f'Accuracy of the network on the 10000 test images: {100 * correct // total} %')

# prepare to count predictions for each class
correct_pred = {classname: 0 for classname in classes}
total_pred = {classname: 0 for classname in classes}

# again no gradients needed
with torch.no_grad():
    for data in testloader:
        images, labels = data
        outputs = net(images)
        _, predictions = torch.max(outputs, 1)
        # collect the correct predictions for each class
        for label, prediction in zip(labels, predictions):
            if label == prediction:
                correct_pred[classes[label]] += 1
            total_pred[classes[label]] += 1


# print accuracy for each class
for classname, correct_count in correct_pred.items():
    accuracy = 100 * float(correct_count) / total_pred[classname]
    print(f'Accuracy for class: {classname:5s} is {accuracy:.1f} %')

device = torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')

# Assuming that we are on a CUDA machine, this should print a CUDA device:

print(device)

del dataiter
'''

# The only edits: where the tutorial imports torch/torchvision, import rustgrad.
IMPORTS = {
    "import torch\n": "import rustgrad as torch\n",
    "import torchvision\n": "import rustgrad.vision as torchvision\n",
    "import torchvision.transforms as transforms\n": "import rustgrad.vision.transforms as transforms\n",
    "import torch.nn as nn\n": "import rustgrad.nn as nn\n",
    "import torch.nn.functional as F\n": "import rustgrad.nn.functional as F\n",
    "import torch.optim as optim\n": "import rustgrad.optim as optim\n",
}
CLASSES = ('plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck')
LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def rustgrad_source(text):
    lines = text.splitlines(keepends=True)
    for old, new in IMPORTS.items():
        assert lines.count(old) == 1, old
        lines[lines.index(old)] = new
    source = "".join(lines)
    assert not re.search(r"^\s*(import|from)\s+torch", source, re.M)
    return source


def _write_data(root, n_train, n_test):
    def arrays(ds):
        images, labels = zip(*(ds[i] for i in range(len(ds))))
        return np.stack(images), np.array(labels)
    train, test = SyntheticImages(n_train, seed=1), SyntheticImages(n_test, train=False, seed=1)
    write_cifar10(os.path.join(root, "data"), arrays(train), arrays(test), LABEL_NAMES)


@pytest.fixture
def plots(monkeypatch):
    """The images the tutorial shows. With matplotlib, plt.show is silenced (Agg backend);
    without it, a stand-in pyplot module records what imshow receives."""
    shown = []
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = types.ModuleType("matplotlib.pyplot")
        package = types.ModuleType("matplotlib")
        package.pyplot = plt
        monkeypatch.setitem(sys.modules, "matplotlib", package)
        monkeypatch.setitem(sys.modules, "matplotlib.pyplot", plt)
        plt.imshow = lambda image, *args, **kwargs: None
        plt.show = lambda *args, **kwargs: None
    real_imshow = plt.imshow
    def imshow(image, *args, **kwargs):
        shown.append(np.array(image))
        return real_imshow(image, *args, **kwargs)
    monkeypatch.setattr(plt, "imshow", imshow, raising=False)
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: None, raising=False)
    return shown


@pytest.fixture
def tutorial_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # torch.save/torch.load come from rustgrad.serialization until the top-level names exist.
    if not hasattr(rustgrad, "save"):
        from rustgrad import serialization
        monkeypatch.setattr(rustgrad, "save", serialization.save, raising=False)
        monkeypatch.setattr(rustgrad, "load", serialization.load, raising=False)
    return tmp_path


def run(source, capsys):
    namespace = {"__name__": "__main__"}
    exec(compile(source, "cifar10_tutorial.py", "exec"), namespace)
    return capsys.readouterr().out, namespace


def test_the_tutorial_runs_unchanged(tutorial_dir, plots, capsys):
    _write_data(tutorial_dir, n_train=60, n_test=40)
    out, ns = run(rustgrad_source(TUTORIAL), capsys)
    lines = out.splitlines()
    # the four training labels, then the test images' truth and the reloaded net's guesses
    names = "|".join(CLASSES)
    label_lines = [l for l in lines if re.fullmatch(rf"(({names}) *)( ({names}) *){{3}}", l)]
    assert len(label_lines) == 1
    assert "Finished Training" in lines
    expected_truth = " ".join(f"{CLASSES[k % 10]:5s}" for k in range(4))  # test labels are index % 10
    assert f"GroundTruth:  {expected_truth}" in lines
    assert any(re.fullmatch(rf"Predicted:  (({names}) *)( ({names}) *){{3}}", l) for l in lines)
    accuracy = [l for l in lines if l.startswith("Accuracy of the network on the 10000 test images: ")]
    assert len(accuracy) == 1 and re.fullmatch(r".*: \d+ %", accuracy[0])
    per_class = [l for l in lines if l.startswith("Accuracy for class: ")]
    assert [l.split()[3] for l in per_class] == list(CLASSES)
    assert all(re.fullmatch(r"Accuracy for class: .{5} is \d+\.\d %", l) for l in per_class)
    # the printed overall accuracy is the per-class counts combined (4 test images per class)
    overall = int(accuracy[0].split(": ")[1].split()[0])
    hits = sum(round(float(l.split()[-2]) * 4 / 100) for l in per_class)
    assert overall == 100 * hits // 40
    assert lines[-1] == "cpu"
    # two grids of four 32x32 images with 2-pixel padding, unnormalized into [0, 1]
    assert len(plots) == 2 and all(p.shape == (36, 138, 3) for p in plots)
    assert all(0 <= p.min() and p.max() <= 1 for p in plots)
    # the saved weights load back into the tutorial's Net
    state = rustgrad.load("cifar_net.pth")
    assert list(state) == list(ns["Net"]().state_dict())
    assert "dataiter" not in ns


def test_the_tutorial_prints_its_running_loss(tutorial_dir, plots, capsys):
    # 2000 mini-batches per print is 8,000 images; printing every 5 shows the format on 60.
    source = rustgrad_source(TUTORIAL).replace("i % 2000 == 1999", "i % 5 == 4")
    _write_data(tutorial_dir, n_train=60, n_test=20)
    out, _ = run(source, capsys)
    losses = [l for l in out.splitlines() if l.startswith("[")]
    expected = [f"[{e}, {i:5d}]" for e in (1, 2) for i in (5, 10, 15)]
    assert [l.split(" loss: ")[0] for l in losses] == expected
    assert all(re.fullmatch(r"\[\d, +\d+\] loss: \d\.\d{3}", l) for l in losses)

# The network of PyTorch's blitz tutorial "Training a Classifier": LeNet-5 for 3x32x32 images.
import rustgrad
import rustgrad.nn as nn
import rustgrad.nn.functional as F


class LeNet(nn.Module):
    """conv 3->6 5x5, max-pool 2, conv 6->16 5x5, max-pool 2, fc 400->120->84->num_classes."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = rustgrad.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)

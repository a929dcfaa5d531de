# LeNet-5 on 3x32x32 input (the blitz CIFAR-10 network) trained with CrossEntropyLoss and
# SGD(momentum): losses and weights against a NumPy-free self-consistency check, and against
# PyTorch started from the same weights and batches (20 steps, 1e-4 relative).

import numpy as np
import pytest
import rustgrad as rg
from _helpers import requires_torch, torch_or_none

STEPS = 20


def lenet(m):
    nn, F = m.nn, m.nn.functional

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
            x = m.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    return Net()


def batches(n, batch):
    rng = np.random.default_rng(11)
    return [(rng.standard_normal((batch, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, batch)) for _ in range(n)]


def train(m, net, data, lr=0.01, momentum=0.9):
    opt = m.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    crit = m.nn.CrossEntropyLoss()
    losses = []
    for x, y in data:
        opt.zero_grad()
        loss = crit(net(m.tensor(x)), m.tensor(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_lenet_learns_a_fixed_batch():
    rg.manual_seed(0)
    net = lenet(rg)
    (x, y), = batches(1, 16)
    losses = train(rg, net, [(x, y)] * 60, lr=0.02)
    assert losses[-1] < 0.5 * losses[0], losses
    assert np.isfinite(losses).all()


@requires_torch
@pytest.mark.parametrize("batch", [4, 16])
def test_lenet_matches_pytorch_over_20_steps(batch):
    torch = torch_or_none()
    rg.manual_seed(0)
    ours = lenet(rg)
    theirs = lenet(torch)
    with torch.no_grad():
        for (name, p), (tname, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert name == tname
            tp.copy_(torch.from_numpy(p.detach().numpy().copy()))
    data = batches(STEPS, batch)
    l_ours = train(rg, ours, data)
    l_theirs = train(torch, theirs, data)
    np.testing.assert_allclose(l_ours, l_theirs, rtol=1e-4, atol=1e-6)
    ts = theirs.state_dict()
    for k, v in ours.state_dict().items():
        np.testing.assert_allclose(v.numpy(), ts[k].numpy(), rtol=1e-4, atol=1e-5, err_msg=k)

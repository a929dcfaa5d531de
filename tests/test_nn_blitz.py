# The "Neural Networks" part of PyTorch's 60-minute blitz, run unchanged with
# `import rustgrad as torch`: LeNet, print(net), parameters, forward/backward, MSELoss and its
# grad_fn chain, the manual SGD update and optim.SGD. Its transcript is compared with the same
# code under PyTorch (numbers and addresses blanked: the random draws differ), and its values
# with PyTorch running the same weights and inputs.
import contextlib
import importlib
import io
import re

import numpy as np
import pytest
import rustgrad as rg
from _helpers import norm, requires_torch, to_numpy, torch_or_none

# Verbatim from the tutorial, after its `import torch` lines (which the runner supplies).
DEFINE = '''
class Net(nn.Module):

    def __init__(self):
        super(Net, self).__init__()
        # 1 input image channel, 6 output channels, 5x5 square convolution
        # kernel
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        # an affine operation: y = Wx + b
        self.fc1 = nn.Linear(16 * 5 * 5, 120)  # 5*5 from image dimension
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        # Max pooling over a (2, 2) window
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        # If the size is a square, you can specify with a single number
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1) # flatten all dimensions except the batch dimension
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


net = Net()
print(net)
params = list(net.parameters())
print(len(params))
print(params[0].size())  # conv1's .weight
'''

FORWARD = '''
input = torch.randn(1, 1, 32, 32)
out = net(input)
print(out)
net.zero_grad()
out.backward(torch.randn(1, 10))
'''

LOSS = '''
output = net(input)
target = torch.randn(10)  # a dummy target, for example
target = target.view(1, -1)  # make it the same shape as output
criterion = nn.MSELoss()

loss = criterion(output, target)
print(loss)
print(loss.grad_fn)  # MSELoss
print(loss.grad_fn.next_functions[0][0])  # Linear
print(loss.grad_fn.next_functions[0][0].next_functions[0][0])  # ReLU
'''

BACKPROP = '''
net.zero_grad()     # zeroes the gradient buffers of all parameters

print('conv1.bias.grad before backward')
print(net.conv1.bias.grad)

loss.backward()

print('conv1.bias.grad after backward')
print(net.conv1.bias.grad)
'''

MANUAL_SGD = '''
learning_rate = 0.01
for f in net.parameters():
    f.data.sub_(f.grad.data * learning_rate)
'''

OPTIM = '''
import torch.optim as optim

# create your optimizer
optimizer = optim.SGD(net.parameters(), lr=0.01)

# in your training loop:
optimizer.zero_grad()   # zero the gradient buffers
output = net(input)
loss = criterion(output, target)
loss.backward()
optimizer.step()    # Does the update
'''

NET_OUT = """\
Net(
  (conv1): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))
  (conv2): Conv2d(6, 16, kernel_size=(5, 5), stride=(1, 1))
  (fc1): Linear(in_features=400, out_features=120, bias=True)
  (fc2): Linear(in_features=120, out_features=84, bias=True)
  (fc3): Linear(in_features=84, out_features=10, bias=True)
)
10
rustgrad.Size([6, 1, 5, 5])
"""

needs_conv = pytest.mark.skipif(not (hasattr(rg.nn.functional, "conv2d") and hasattr(rg.nn.functional, "max_pool2d")),
                                reason="F.conv2d / F.max_pool2d are not in rustgrad yet")


def run(lib_name, *snippets, ns=None):
    """exec the snippets with `import <lib> as torch` semantics; (stdout, namespace)."""
    ns = {} if ns is None else ns
    src = "".join(snippets)
    if lib_name == "rustgrad" and rg.__name__ == "rustgrad":
        # The tutorial says `import torch`; here torch *is* rustgrad.
        src = src.replace("import torch.optim as optim", "import rustgrad.optim as optim")
        head = "import rustgrad as torch\nimport rustgrad.nn as nn\nimport rustgrad.nn.functional as F\n"
    else:
        head = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(head + src, f"<blitz-{lib_name}>", "exec"), ns)
    return buf.getvalue(), ns


def blank(text):
    """A transcript with addresses, numbers and layout whitespace blanked."""
    text = re.sub(r"0x[0-9a-f]+", "0x", norm(text))
    text = re.sub(r"-?\d+\.\d*(e[+-]?\d+)?", "N", text)
    # Column alignment depends on the values' signs and widths.
    return re.sub(r"\s+", " ", text).replace("[ ", "[")


def test_define_and_print_net():
    out, ns = run("rustgrad", DEFINE)
    assert norm(out) == NET_OUT
    net = ns["net"]
    assert [tuple(p.shape) for p in net.parameters()] == [
        (6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120), (84,), (10, 84), (10,)]
    torch = torch_or_none()
    if torch is not None:
        assert norm(out) == norm(run("torch", DEFINE)[0])


@needs_conv
def test_forward_backward_loss_transcript():
    out, ns = run("rustgrad", DEFINE, FORWARD, LOSS, BACKPROP)
    assert tuple(ns["out"].shape) == (1, 10) and ns["out"].grad_fn is not None
    assert "conv1.bias.grad before backward\nNone\nconv1.bias.grad after backward\ntensor([" in out
    assert "<MseLossBackward0 object at 0x" in out
    torch = torch_or_none()
    if torch is not None:
        theirs, _ = run("torch", DEFINE, FORWARD, LOSS, BACKPROP)
        assert blank(out) == blank(theirs)


def _copy_net(ns_rg, torch):
    """The tutorial's Net under torch, with the rustgrad net's weights."""
    _, ns_t = run("torch", DEFINE)
    sd = {k: torch.from_numpy(np.array(to_numpy(v), copy=True)) for k, v in ns_rg["net"].state_dict().items()}
    ns_t["net"].load_state_dict(sd)
    return ns_t


@needs_conv
@requires_torch
def test_values_and_grads_match_torch():
    torch = torch_or_none()
    _, ns = run("rustgrad", DEFINE, FORWARD, LOSS)
    ns_t = _copy_net(ns, torch)
    inp = torch.from_numpy(to_numpy(ns["input"]).copy())
    target = torch.from_numpy(to_numpy(ns["target"]).copy())
    net_t = ns_t["net"]
    output = net_t(inp)
    loss = torch.nn.MSELoss()(output, target)
    np.testing.assert_allclose(to_numpy(ns["output"]), to_numpy(output), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ns["loss"].item(), loss.item(), rtol=1e-5)
    net = ns["net"]
    net.zero_grad()
    ns["loss"].backward()
    loss.backward()
    for (name, p), (_, q) in zip(net.named_parameters(), net_t.named_parameters()):
        np.testing.assert_allclose(to_numpy(p.grad), to_numpy(q.grad), rtol=1e-4, atol=1e-6, err_msg=name)


@needs_conv
def test_manual_sgd_update():
    _, ns = run("rustgrad", DEFINE, FORWARD, LOSS, BACKPROP)
    net = ns["net"]
    before = [to_numpy(p).copy() for p in net.parameters()]
    grads = [to_numpy(p.grad).copy() for p in net.parameters()]
    params = list(net.parameters())
    run("rustgrad", MANUAL_SGD, ns=ns)
    for p, q, b, g in zip(net.parameters(), params, before, grads):
        assert p is q and p.requires_grad and p.is_leaf
        np.testing.assert_allclose(to_numpy(p), b - np.float32(0.01) * g, rtol=1e-6, atol=1e-7)


@needs_conv
def test_optim_sgd_step():
    if getattr(rg, "optim", None) is None:
        try:
            importlib.import_module("rustgrad.optim")
        except ImportError:
            pytest.skip("rustgrad.optim does not exist yet")
    _, ns = run("rustgrad", DEFINE, FORWARD, LOSS)
    net = ns["net"]
    before = [to_numpy(p).copy() for p in net.parameters()]
    run("rustgrad", OPTIM, ns=ns)
    grads = [to_numpy(p.grad) for p in net.parameters()]
    for p, b, g in zip(net.parameters(), before, grads):
        np.testing.assert_allclose(to_numpy(p), b - np.float32(0.01) * g, rtol=1e-6, atol=1e-7)
    assert any(np.abs(g).max() > 0 for g in grads)

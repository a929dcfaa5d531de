# The tensor section of PyTorch's "Deep Learning with PyTorch: A 60 Minute Blitz", run as
# written with `import rustgrad as torch`; the printed transcript and the values are asserted.
import numpy as np
import rustgrad as torch
from _helpers import assert_same, norm

ROW = "[1., 0., 1., 1.]"
EXPECTED = "\n".join([
    "Ones Tensor: ", " tensor([[1, 1],", "        [1, 1]]) ", "",
    "Ones Tensor: ", " tensor([[1., 1., 1.],", "        [1., 1., 1.]]) ", "",
    "Zeros Tensor: ", " tensor([[0., 0., 0.],", "        [0., 0., 0.]])",
    "Shape of tensor: rustgrad.Size([3, 4])",
    "Datatype of tensor: rustgrad.float32",
    "Device tensor is stored on: cpu",
    "First row: tensor([1., 1., 1., 1.])",
    "First column: tensor([1., 1., 1., 1.])",
    "Last column: tensor([1., 1., 1., 1.])",
    f"tensor([{ROW},", f"        {ROW},", f"        {ROW},", f"        {ROW}])",
    "tensor([[1., 0., 1., 1., 1., 0., 1., 1., 1., 0., 1., 1.],",
    "        [1., 0., 1., 1., 1., 0., 1., 1., 1., 0., 1., 1.],",
    "        [1., 0., 1., 1., 1., 0., 1., 1., 1., 0., 1., 1.],",
    "        [1., 0., 1., 1., 1., 0., 1., 1., 1., 0., 1., 1.]])",
    "12.0 <class 'float'>",
    f"tensor([{ROW},", f"        {ROW},", f"        {ROW},", f"        {ROW}]) ", "",
    "tensor([[6., 5., 6., 6.],", "        [6., 5., 6., 6.],", "        [6., 5., 6., 6.],",
    "        [6., 5., 6., 6.]])",
    "t: tensor([1., 1., 1., 1., 1.])", "n: [1. 1. 1. 1. 1.]",
    "t: tensor([2., 2., 2., 2., 2.])", "n: [2. 2. 2. 2. 2.]",
    "t: tensor([2., 2., 2., 2., 2.], dtype=rustgrad.float64)", "n: [2. 2. 2. 2. 2.]",
    "",
])


def test_blitz_tensor_tutorial(capsys):
    # Initializing a tensor: directly from data, from a NumPy array, from another tensor
    data = [[1, 2], [3, 4]]
    x_data = torch.tensor(data)
    np_array = np.array(data)
    x_np = torch.from_numpy(np_array)
    assert_same(x_data, np_array)
    assert_same(x_np, np_array)

    x_ones = torch.ones_like(x_data)  # retains the properties of x_data
    print(f"Ones Tensor: \n {x_ones} \n")
    x_rand = torch.rand_like(x_data, dtype=torch.float)  # overrides the datatype of x_data
    assert x_rand.dtype is torch.float32 and x_rand.shape == (2, 2)
    assert ((x_rand >= 0) & (x_rand < 1)).all()

    # With random or constant values
    shape = (2, 3,)
    rand_tensor = torch.rand(shape)
    ones_tensor = torch.ones(shape)
    zeros_tensor = torch.zeros(shape)
    assert rand_tensor.shape == (2, 3) and rand_tensor.dtype is torch.float32
    print(f"Ones Tensor: \n {ones_tensor} \n")
    print(f"Zeros Tensor: \n {zeros_tensor}")

    # Attributes of a tensor
    tensor = torch.rand(3, 4)
    print(f"Shape of tensor: {tensor.shape}")
    print(f"Datatype of tensor: {tensor.dtype}")
    print(f"Device tensor is stored on: {tensor.device}")

    # Operations on tensors
    if torch.cuda.is_available():
        tensor = tensor.to("cuda")
    tensor = torch.ones(4, 4)
    print(f"First row: {tensor[0]}")
    print(f"First column: {tensor[:, 0]}")
    print(f"Last column: {tensor[..., -1]}")
    tensor[:, 1] = 0
    print(tensor)

    t1 = torch.cat([tensor, tensor, tensor], dim=1)
    print(t1)

    # matrix multiplication, three ways
    y1 = tensor @ tensor.T
    y2 = tensor.matmul(tensor.T)
    y3 = torch.rand_like(y1)
    torch.matmul(tensor, tensor.T, out=y3)
    expected_mm = np.full((4, 4), 3.0, np.float32)
    for y in (y1, y2, y3):
        assert_same(y, expected_mm)

    # element-wise product, three ways
    z1 = tensor * tensor
    z2 = tensor.mul(tensor)
    z3 = torch.rand_like(tensor)
    torch.mul(tensor, tensor, out=z3)
    expected_mul = np.tile(np.array([1, 0, 1, 1], np.float32), (4, 1))
    for z in (z1, z2, z3):
        assert_same(z, expected_mul)

    # single-element tensors
    agg = tensor.sum()
    agg_item = agg.item()
    print(agg_item, type(agg_item))

    # in-place operations
    print(f"{tensor} \n")
    tensor.add_(5)
    print(tensor)

    # Bridge with NumPy: tensor to NumPy array
    t = torch.ones(5)
    print(f"t: {t}")
    n = t.numpy()
    print(f"n: {n}")
    t.add_(1)
    print(f"t: {t}")
    print(f"n: {n}")

    # NumPy array to tensor
    n = np.ones(5)
    t = torch.from_numpy(n)
    np.add(n, 1, out=n)
    print(f"t: {t}")
    print(f"n: {n}")

    assert norm(capsys.readouterr().out) == EXPECTED

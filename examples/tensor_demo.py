"""A tour of rustgrad tensors, written exactly as PyTorch code (`import rustgrad as torch`).

Run: python examples/tensor_demo.py
"""
import time

import numpy as np

import rustgrad as torch

torch.manual_seed(0)

print("== Creating tensors")
data = [[1, 2], [3, 4]]
x_data = torch.tensor(data)
x_np = torch.from_numpy(np.array(data))
print(x_data)
print(torch.ones_like(x_data))
print(torch.rand_like(x_data, dtype=torch.float))

shape = (2, 3,)
print(torch.rand(shape), torch.ones(shape), torch.zeros(shape), sep="\n")

print("\n== Attributes")
tensor = torch.rand(3, 4)
print(f"Shape of tensor: {tensor.shape}")
print(f"Datatype of tensor: {tensor.dtype}")
print(f"Device tensor is stored on: {tensor.device}")
print(f"CUDA available: {torch.cuda.is_available()}")

print("\n== Indexing, joining, arithmetic")
tensor = torch.ones(4, 4)
tensor[:, 1] = 0
print(tensor)
print(torch.cat([tensor, tensor, tensor], dim=1).shape)
y = tensor @ tensor.T
print(y)
print(tensor * tensor)
agg = tensor.sum()
print(agg.item(), type(agg.item()))
tensor.add_(5)
print(tensor)

print("\n== NumPy bridge (shared memory both ways)")
t = torch.ones(5)
n = t.numpy()
t.add_(1)
print(t, n)
n = np.ones(5)
t = torch.from_numpy(n)
np.add(n, 1, out=n)
print(t, n)

print("\n== Broadcasting, promotion, reductions, advanced indexing")
a = torch.arange(12).reshape(3, 4)
print(a / 2)                      # int / int -> float32
print(a.float().mean(dim=0))
print(a.max(dim=1))
print(a[[0, 2], 1:])
print(a[a % 2 == 0])

print("\n== A 512x512 matmul")
m = torch.randn(512, 512)
start = time.perf_counter()
p = m @ m
elapsed = time.perf_counter() - start
ref = m.numpy() @ m.numpy()
print(f"{elapsed * 1e3:.1f} ms, max |diff| vs NumPy = {np.abs(p.numpy() - ref).max():.2e}")

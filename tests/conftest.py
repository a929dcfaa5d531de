# pytest setup: puts tests/ on sys.path (for `from _helpers import ...`) and picks the backend.
# RUSTGRAD_TEST_BACKEND=torch makes `import rustgrad` return PyTorch, which is how this suite
# is checked against the behaviour it specifies; without it the real rustgrad is imported.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BACKEND = os.environ.get("RUSTGRAD_TEST_BACKEND", "rustgrad")
if BACKEND == "torch":
    import torch

    sys.modules["rustgrad"] = torch


def pytest_report_header(config):
    return f"rustgrad test backend: {BACKEND}"

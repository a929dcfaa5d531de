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


import pytest  # noqa: E402


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    """Runs a test on 1 and on 2 engine threads, restoring the count after."""
    import rustgrad as rg
    before = rg.get_num_threads()
    rg.set_num_threads(request.param)
    yield request.param
    rg.set_num_threads(before)

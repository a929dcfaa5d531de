#!/usr/bin/env bash
# The whole test suite: engine unit tests (cargo), then rustgrad installed from this tree and
# its pytest suite. PyTorch's CPU wheel is installed for parity tests when ../shared has it;
# without it those tests skip and the NumPy / finite-difference checks still run.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q --upgrade pip maturin "pytest>=7" numpy
torch_wheel=$(ls ../shared/wheels/torch-*cp311*.whl 2>/dev/null | head -n 1 || true)
if [ -n "$torch_wheel" ] && ! python3 -c "import torch" 2>/dev/null; then
  python3 -m pip install -q "$torch_wheel"
fi

cargo test -p engine --quiet
python3 -m pip install -q .
python3 -m pytest tests -q -p no:cacheprovider

"""Complete programs built on rustgrad: `python -m rustgrad.examples.cifar10` trains the PyTorch
blitz tutorial's LeNet on CIFAR-10 (or, without a download, on a built-in synthetic dataset)."""

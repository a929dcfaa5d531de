# The main job as a script: LeNet on CIFAR-10 (or the built-in synthetic images) with rustgrad.
# Same flags as `python -m rustgrad.examples.cifar10` and `rustgrad-cifar10`; try --help.
import sys

from rustgrad.examples.cifar10 import main

if __name__ == "__main__":
    sys.exit(main())

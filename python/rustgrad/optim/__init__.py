# rustgrad.optim, as torch.optim: the Optimizer base, one module per optimizer, the shared
# update rules (_functional) and learning-rate schedules (lr_scheduler).
from __future__ import annotations

from . import _functional, lr_scheduler
from .adagrad import Adagrad
from .adam import Adam
from .adamw import AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "SGD", "lr_scheduler"]

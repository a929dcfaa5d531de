"""Neural-network building blocks (``rustgrad.nn``)."""
from . import functional  # noqa: F401

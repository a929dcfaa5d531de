# ExceptionWrapper: an exception raised in a worker process, carried to the main process as its
# type and formatted traceback and re-raised there as the same type (PyTorch's message format).
import sys
import traceback


class KeyErrorMessage(str):
    """A str whose repr is itself, so a re-raised KeyError prints its traceback readably."""

    def __repr__(self):
        return self


class ExceptionWrapper:
    """Wraps an exception plus traceback to communicate across threads or processes."""

    def __init__(self, exc_info=None, where="in background"):
        # Keep the text only: the traceback object holds frames (and cannot be pickled).
        if exc_info is None:
            exc_info = sys.exc_info()
        self.exc_type = exc_info[0]
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where

    def reraise(self):
        """Re-raises the wrapped exception in the current thread."""
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            # KeyError repr()s its argument, which would print the traceback as one quoted line.
            msg = KeyErrorMessage(msg)
        elif getattr(self.exc_type, "message", None):
            # Some exception types take the message only as a keyword.
            raise self.exc_type(message=msg)
        try:
            exception = self.exc_type(msg)
        except Exception:
            # The type needs other constructor arguments: keep the text under a RuntimeError.
            raise RuntimeError(msg) from None
        raise exception

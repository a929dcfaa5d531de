# Internals of rustgrad.utils.data shared by the loader and its worker processes, as in
# torch.utils.data._utils: the poll interval for worker liveness and the interpreter-exit flag.
import atexit

MP_STATUS_CHECK_INTERVAL = 5.0
"""Seconds between liveness checks while a worker or the main process waits on a queue."""

python_exit_status = False
"""True once the interpreter is exiting: iterators then leave the workers to multiprocessing's
own exit handler (which terminates daemonic children) instead of talking to them."""


def _set_python_exit_flag():
    global python_exit_status
    python_exit_status = True


# Registered after `multiprocessing` installed its exit hook, so this one runs first.
atexit.register(_set_python_exit_flag)

# Imported last: worker.py reads the constants above.
from . import collate, exceptions, fetch, worker  # noqa: E402

__all__ = ["collate", "exceptions", "fetch", "worker", "MP_STATUS_CHECK_INTERVAL"]

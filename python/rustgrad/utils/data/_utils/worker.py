# The worker process side of the DataLoader: the loop that turns index messages into batches,
# per-worker seeding (rustgrad, `random`, NumPy) and `get_worker_info()`.
import os
import queue
import random
from dataclasses import dataclass

import numpy as np
# NumPy loads `numpy.random` on first use. Loading it here, in the parent, means a forked
# worker never imports it: an import in a child forked while another parent thread held an
# import lock failed with a KeyError inside importlib (or hung), about one run in four.
import numpy.random  # noqa: F401

import rustgrad
from . import MP_STATUS_CHECK_INTERVAL
from .exceptions import ExceptionWrapper
from .fetch import _DatasetKind

_worker_info = None


class ManagerWatchdog:
    """Tells a worker whether the process that started it is still alive (a dead parent
    reparents us, changing getppid), so orphaned workers exit instead of lingering."""

    def __init__(self):
        self.manager_pid = os.getppid()
        self.manager_dead = False

    def is_alive(self):
        if not self.manager_dead:
            self.manager_dead = os.getppid() != self.manager_pid
        return not self.manager_dead


@dataclass(frozen=True)
class WorkerInfo:
    """What `get_worker_info()` returns inside a worker process."""

    id: int
    num_workers: int
    seed: int
    dataset: object


def get_worker_info():
    """The WorkerInfo of this DataLoader worker process, or None in the main process.

    Each worker holds its own copy of the dataset (`.dataset`), so an IterableDataset can use
    `.id` and `.num_workers` to read its own shard, and `.seed` to seed other libraries."""
    return _worker_info


@dataclass(frozen=True)
class _IterableDatasetStopIteration:
    """A worker's iterable dataset is exhausted."""

    worker_id: int


@dataclass(frozen=True)
class _ResumeIteration:
    """Persistent workers: start a new epoch (fresh fetcher), acknowledged back to the loader."""

    seed: object = None


def _generate_state(base_seed, worker_id):
    """A 4-word NumPy seed from (base_seed, worker_id): PyTorch's port of NumPy's SeedSequence
    hashing, so NumPy streams of different workers (and epochs) do not overlap."""
    INIT_A, MULT_A = 0x43B0D7E5, 0x931E8875
    INIT_B, MULT_B = 0x8B51F9DD, 0x58F38DED
    MIX_MULT_L, MIX_MULT_R = 0xCA01F9DD, 0x4973F715
    XSHIFT = 4 * 8 // 2
    MASK32 = 0xFFFFFFFF

    entropy = [worker_id, base_seed & MASK32, base_seed >> 32, 0]
    pool = [0] * 4
    hash_const_a = INIT_A

    def hash(value):
        nonlocal hash_const_a
        value = (value ^ hash_const_a) & MASK32
        hash_const_a = (hash_const_a * MULT_A) & MASK32
        value = (value * hash_const_a) & MASK32
        return (value ^ (value >> XSHIFT)) & MASK32

    def mix(x, y):
        result = ((MIX_MULT_L * x) & MASK32) - ((MIX_MULT_R * y) & MASK32) & MASK32
        return (result ^ (result >> XSHIFT)) & MASK32

    for i in range(len(pool)):
        pool[i] = hash(entropy[i])
    for i_src in range(len(pool)):
        for i_dst in range(len(pool)):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hash(pool[i_src]))

    hash_const_b = INIT_B
    state = []
    for i_dst in range(4):
        data_val = (pool[i_dst] ^ hash_const_b) & MASK32
        hash_const_b = (hash_const_b * MULT_B) & MASK32
        data_val = (data_val * hash_const_b) & MASK32
        state.append((data_val ^ (data_val >> XSHIFT)) & MASK32)
    return state


def _worker_loop(dataset_kind, dataset, index_queue, data_queue, done_event, auto_collation,
                 collate_fn, drop_last, base_seed, init_fn, worker_id, num_workers):
    """Serves (send_idx, index) messages from `index_queue` with (send_idx, batch) on
    `data_queue` until it reads None. Exceptions travel back as ExceptionWrapper."""
    global _worker_info
    try:
        # One engine thread per worker: workers already use the cores in parallel, and a forked
        # child does not have the parent's pool threads.
        rustgrad.set_num_threads(1)
        seed = base_seed + worker_id
        random.seed(seed)
        rustgrad.manual_seed(seed)
        np.random.seed(_generate_state(base_seed, worker_id))
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed,
                                  dataset=dataset)

        init_exception = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = _DatasetKind.create_fetcher(dataset_kind, dataset, auto_collation,
                                                  collate_fn, drop_last)
        except Exception:
            # Reported with the first batch this worker is asked for.
            init_exception = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")

        iteration_end = False
        watchdog = ManagerWatchdog()
        while watchdog.is_alive():
            try:
                r = index_queue.get(timeout=MP_STATUS_CHECK_INTERVAL)
            except queue.Empty:
                if done_event.is_set():
                    break
                continue
            if isinstance(r, _ResumeIteration):
                data_queue.put((r, None))
                iteration_end = False
                fetcher = _DatasetKind.create_fetcher(dataset_kind, dataset, auto_collation,
                                                      collate_fn, drop_last)
                continue
            if r is None or done_event.is_set():
                break  # shutdown, or this worker's iterable dataset is exhausted
            if iteration_end:
                continue  # drain requests that no one will read
            idx, index = r
            if init_exception is not None:
                data, init_exception = init_exception, None
            else:
                try:
                    data = fetcher.fetch(index)
                except Exception as e:
                    if isinstance(e, StopIteration) and dataset_kind == _DatasetKind.Iterable:
                        data = _IterableDatasetStopIteration(worker_id)
                        iteration_end = True
                    else:
                        data = ExceptionWrapper(
                            where=f"in DataLoader worker process {worker_id}")
            data_queue.put((idx, data))
            del data, idx, index, r  # free the batch before blocking on the next request
    except KeyboardInterrupt:
        pass  # the main process handles Ctrl-C and shuts us down
    if done_event.is_set():
        # Exit without waiting for the queue's feeder thread to flush into a pipe no one reads.
        data_queue.cancel_join_thread()
        data_queue.close()

# The multi-process DataLoader iterator: worker processes with one index queue each and a
# shared result queue, prefetching, in-order delivery, failure detection and clean shutdown.
import itertools
import multiprocessing
import queue
import warnings
from multiprocessing import connection

from . import _utils
from ._iterators import _BaseDataLoaderIter
from ._utils.exceptions import ExceptionWrapper
from ._utils.fetch import _DatasetKind

# Batches cross the process boundary by pickling: a rustgrad Tensor pickles as one contiguous
# NumPy array (a single raw buffer, not element by element) and is rebuilt here with
# rustgrad.from_numpy, which adopts that buffer without another copy.


class _MultiProcessingDataLoaderIter(_BaseDataLoaderIter):
    """Iterates over batches made by `num_workers` worker processes.

    Index `send_idx` goes to the next active worker round-robin; at most
    `prefetch_factor * num_workers` tasks are outstanding. Results come back on one queue
    tagged with their `send_idx`; with in_order, early arrivals wait in `_task_info` until
    their turn. A worker's task info is `(worker_id,)` while pending and
    `(worker_id, data)` once its result arrived out of order."""

    def __init__(self, loader):
        super().__init__(loader)
        self._prefetch_factor = loader.prefetch_factor
        self._in_order = loader.in_order
        assert self._num_workers > 0
        assert self._prefetch_factor > 0
        ctx = loader.multiprocessing_context
        if ctx is None:
            ctx = multiprocessing  # the default start method
        self._worker_init_fn = loader.worker_init_fn
        self._shutdown = False
        self._workers = []
        self._index_queues = []
        self._workers_status = []
        self._worker_result_queue = ctx.Queue()
        self._workers_done_event = ctx.Event()
        for i in range(self._num_workers):
            index_queue = ctx.Queue()
            # Unread indices must not keep this process alive at exit.
            index_queue.cancel_join_thread()
            w = ctx.Process(
                target=_utils.worker._worker_loop,
                args=(self._dataset_kind, self._dataset, index_queue, self._worker_result_queue,
                      self._workers_done_event, self._auto_collation, self._collate_fn,
                      self._drop_last, self._base_seed, self._worker_init_fn, i,
                      self._num_workers))
            # Daemonic: multiprocessing terminates them at interpreter exit.
            w.daemon = True
            try:
                w.start()
            except Exception as err:
                self._shutdown_workers()
                if isinstance(err, (TypeError, AttributeError)) or "pickl" in str(err).lower():
                    warnings.warn("Got pickle error when attempting to start a worker Process. "
                                  "This might be because the worker Process arguments are not "
                                  "picklable.", stacklevel=2)
                raise
            self._index_queues.append(index_queue)
            self._workers.append(w)
            self._workers_status.append(True)
        self._data_queue = self._worker_result_queue
        self._reset(loader, first_iter=True)

    def _reset(self, loader, first_iter=False):
        super()._reset(loader, first_iter)
        self._send_idx = 0  # index of the next task to send to workers
        self._rcvd_idx = 0  # index of the next task to return from __next__
        self._task_info = {}
        self._tasks_outstanding = 0
        self._workers_status = [True for _ in range(self._num_workers)]
        self._workers_num_tasks = [0 for _ in range(self._num_workers)]
        self._worker_queue_idx_cycle = itertools.cycle(range(self._num_workers))
        if not first_iter:
            # Persistent workers: start a new epoch and wait until every worker has dropped
            # the previous one (results of the old epoch still in flight are discarded).
            for idx in range(self._num_workers):
                self._index_queues[idx].put(_utils.worker._ResumeIteration())
            resume_iteration_cnt = self._num_workers
            while resume_iteration_cnt > 0:
                return_idx, return_data = self._get_data()
                if isinstance(return_idx, _utils.worker._ResumeIteration):
                    assert return_data is None
                    resume_iteration_cnt -= 1
        for _ in range(self._prefetch_factor * self._num_workers):
            self._try_put_index()

    def _try_get_data(self, timeout=_utils.MP_STATUS_CHECK_INTERVAL):
        """(True, data) from the result queue, or (False, None) after `timeout` seconds.
        Raises RuntimeError as soon as an active worker has died."""
        # Waiting on the live workers' sentinels with the result pipe notices a dead worker
        # at once rather than one poll interval later.
        reader = self._data_queue._reader
        watched = [w.sentinel for i, w in enumerate(self._workers) if self._workers_status[i]]
        ready = connection.wait([reader, *watched], timeout)
        if reader in ready or not ready:
            try:
                return True, self._data_queue.get(timeout=0 if not ready else timeout)
            except queue.Empty as e:
                empty = e
        else:
            empty = queue.Empty()
        failed_workers = []
        for worker_id, w in enumerate(self._workers):
            # A ready sentinel means the process is exiting, even if it cannot be reaped yet.
            if self._workers_status[worker_id] and (w.sentinel in ready or not w.is_alive()):
                failed_workers.append(w)
                self._mark_worker_as_unavailable(worker_id)
        if failed_workers:
            pids_str = ", ".join(str(w.pid) for w in failed_workers)
            raise RuntimeError(f"DataLoader worker (pid(s) {pids_str}) exited unexpectedly") \
                from empty
        return False, None

    def _get_data(self):
        if self._timeout > 0:
            success, data = self._try_get_data(self._timeout)
            if success:
                return data
            raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")
        while True:
            success, data = self._try_get_data()
            if success:
                return data

    def _next_data(self):
        while True:
            # Skip tasks of workers that are gone (an exhausted IterableDataset shard); stop
            # when every task sent has been returned.
            while self._rcvd_idx < self._send_idx:
                info = self._task_info.get(self._rcvd_idx, None)
                if info:
                    worker_id = info[0]
                    if len(info) == 2 or self._workers_status[worker_id]:
                        break
                    del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
            else:
                if not self._persistent_workers:
                    self._shutdown_workers()
                raise StopIteration

            # The result for _rcvd_idx already arrived out of order.
            if len(self._task_info[self._rcvd_idx]) == 2:
                worker_id, data = self._task_info.pop(self._rcvd_idx)
                self._rcvd_idx += 1
                return self._process_data(data, worker_id)

            assert not self._shutdown and self._tasks_outstanding > 0
            idx, data = self._get_data()
            self._tasks_outstanding -= 1
            if self._dataset_kind == _DatasetKind.Iterable:
                if isinstance(data, _utils.worker._IterableDatasetStopIteration):
                    if self._persistent_workers:
                        self._workers_status[data.worker_id] = False
                    else:
                        self._mark_worker_as_unavailable(data.worker_id)
                    self._try_put_index()
                    continue

            if idx != self._rcvd_idx:
                if not self._in_order:
                    worker_id = self._task_info.pop(idx)[0]
                    return self._process_data(data, worker_id)
                self._task_info[idx] += (data,)  # keep it until its turn
            else:
                worker_id = self._task_info.pop(idx)[0]
                self._rcvd_idx += 1
                return self._process_data(data, worker_id)

    def _try_put_index(self):
        max_tasks = self._prefetch_factor * self._num_workers
        assert self._tasks_outstanding < max_tasks
        try:
            index = self._next_index()
        except StopIteration:
            return
        for _ in range(self._num_workers):  # find the next active worker, if any
            worker_queue_idx = next(self._worker_queue_idx_cycle)
            if self._workers_status[worker_queue_idx]:
                if self._in_order:
                    break
                # Out of order: do not pile tasks onto a slow worker.
                if self._workers_num_tasks[worker_queue_idx] < max_tasks // sum(
                        self._workers_status):
                    break
        else:
            return  # no active worker (e.g. every IterableDataset shard is exhausted)
        self._index_queues[worker_queue_idx].put((self._send_idx, index))
        self._task_info[self._send_idx] = (worker_queue_idx,)
        self._workers_num_tasks[worker_queue_idx] += 1
        self._tasks_outstanding += 1
        self._send_idx += 1

    def _process_data(self, data, worker_idx):
        self._workers_num_tasks[worker_idx] -= 1
        self._try_put_index()
        if isinstance(data, ExceptionWrapper):
            data.reraise()
        return data

    def _mark_worker_as_unavailable(self, worker_id, shutdown=False):
        # The worker exits when it reads None (it may already be dead).
        self._index_queues[worker_id].put(None)
        self._workers_status[worker_id] = False
        assert self._workers_done_event.is_set() == shutdown

    def _shutdown_workers(self):
        # At interpreter exit the modules may be half torn down; multiprocessing's own exit
        # hook terminates and reaps the daemonic workers then.
        if _utils is None or _utils.python_exit_status is True or _utils.python_exit_status is None:
            return
        if getattr(self, "_shutdown", True):
            return
        self._shutdown = True
        try:
            self._workers_done_event.set()
            for worker_id in range(len(self._workers)):
                # Persistent workers may be idle after an exhausted IterableDataset epoch and
                # still alive: they need the message too.
                if self._persistent_workers or self._workers_status[worker_id]:
                    self._mark_worker_as_unavailable(worker_id, shutdown=True)
            for w in self._workers:
                w.join(timeout=_utils.MP_STATUS_CHECK_INTERVAL)
            for q in self._index_queues:
                q.cancel_join_thread()
                q.close()
        finally:
            # Whatever went wrong above, leave no worker behind (join reaps it: no zombie).
            for w in self._workers:
                if w.is_alive():
                    w.terminate()
                    w.join(timeout=_utils.MP_STATUS_CHECK_INTERVAL)

    def __del__(self):
        self._shutdown_workers()

"""Where jobs run: a local pool of sandboxes (``--jobs N``) or an existing Dask cluster (``--scheduler ADDRESS``).

Both take a :class:`~.task.GradingTask` and give back a future of its :class:`~.task.Graded`: the run and its
judgment both happen where the task went (:func:`.worker.grade_task`), each judgment in a judge process of its own.
The grader collects the results in student order and alone writes the gradebook, so the outcome does not depend on
where or in what order the runs happened. A Dask task that loses its worker is rescheduled by Dask on another
worker; one that fails again is reported, never recorded twice.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from ...errors import LensError
from . import judge_process
from .jobs import release_warm, worker_problem
from .task import GradingTask
from .worker import grade_task

if TYPE_CHECKING:
    from distributed import Future as DaskFuture

    from .task import Graded


class LocalPool:
    """Sandboxes on this machine, jobs at a time (--jobs N); each slot's next sandbox warms up ahead unless
    ``warm=False``."""

    def __init__(self, jobs: int, warm: bool = True):
        self.slots, self.warm = jobs, warm
        self._pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="lensref-grade")

    def submit(self, task: GradingTask) -> Future[Graded]:
        """Run and judge ``task`` in one of the pool's slots; the runs at once share this machine's cores."""
        threads = max(1, (os.cpu_count() or 1) // self.slots)  # the runs at once share this machine's cores
        task = dataclasses.replace(task, job=dataclasses.replace(task.job, threads=threads))
        return self._pool.submit(grade_task, task, self.warm)

    def close(self, cancel: bool = False) -> None:
        """Wait for the runs in flight (or kill every sandbox: ``cancel=True``), then stop the warm sandboxes and judge
        processes."""
        from . import sandbox

        if cancel:
            sandbox.kill_all()
        self._pool.shutdown(wait=True, cancel_futures=cancel)
        release_warm()
        judge_process.release_all()

    def describe(self) -> str:
        """The pool in words, for the grading run's first line."""
        return f"{self.slots} local sandbox(es) at a time"


class DaskPool:
    """An existing Dask cluster (``--scheduler ADDRESS``), checked on connecting: it has workers and each can grade."""

    def __init__(self, address: str, connect_timeout: float = 10.0):
        try:
            from distributed import Client
        except ImportError:
            raise LensError("--scheduler needs dask's distributed package (pip install 'dask[distributed]')") from None
        try:
            self.client = Client(address, timeout=connect_timeout, set_as_default=False)  # type: ignore[no-untyped-call]  # distributed is unannotated
        except (OSError, TimeoutError) as exc:
            raise LensError(
                f"no Dask scheduler answers at {address} ({type(exc).__name__}); start one with "
                "`dask scheduler` and check the address"
            ) from None
        workers = self.client.scheduler_info().get("workers", {})
        if not workers:
            self.client.close()  # type: ignore[no-untyped-call]  # distributed is unannotated
            raise LensError(
                f"the Dask scheduler at {address} has no workers; start `dask worker {address}` on a "
                "machine with the course installed"
            )
        problems = {w: p for w, p in self.client.run(worker_problem).items() if p}
        if problems:
            worker, problem = sorted(problems.items())[0]
            self.client.close()  # type: ignore[no-untyped-call]  # distributed is unannotated
            raise LensError(
                f"Dask worker {worker} cannot grade: {problem}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
            )
        self.slots = sum(w.get("nthreads", 1) for w in workers.values())
        self.address = address

    def submit(self, task: GradingTask) -> DaskFuture[Graded]:
        """Send ``task`` to run and be judged on a worker; a task that fails is reported, never retried."""
        return self.client.submit(
            grade_task, task, pure=False, retries=0, key=f"lensref-grade-{task.student}-{os.urandom(4).hex()}"
        )

    def close(self, cancel: bool = False) -> None:
        """Disconnect from the cluster (its scheduler and workers keep running)."""
        self.client.close()  # type: ignore[no-untyped-call]  # distributed is unannotated

    def describe(self) -> str:
        """The cluster in words, for the grading run's first line."""
        return f"Dask cluster at {self.address} ({self.slots} worker thread(s))"


def open_pool(jobs: int | None, scheduler: str | None, warm: bool = True) -> LocalPool | DaskPool:
    """``warm=False`` starts every sandbox cold, when its job comes (the benchmark's "before")."""
    if scheduler:
        return DaskPool(scheduler)
    if jobs is not None and jobs < 1:
        raise LensError(f"--jobs must be at least 1, got {jobs}")
    return LocalPool(jobs or os.cpu_count() or 1, warm)

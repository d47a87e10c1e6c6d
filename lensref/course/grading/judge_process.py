"""Judge processes: every judgment runs in a process of its own that holds its own models, one at a time.

The references of some exercises hook a model's modules while they run. Hooks are global to a model: two judges
sharing one model in two threads would fire each other's hooks and corrupt each other's verdicts. So nothing
judges in a thread of the grader or of a Dask worker. Each thread that runs sandboxes (a local pool's slot, a Dask
worker's thread) has one judge process (:func:`for_this_thread`), started with the thread's first submission and
kept for the next ones: it loads the models it needs once, judges one run at a time, and starts each judgment from
the same state (torch on one thread; Python's, NumPy's and torch's random generators re-seeded), so a verdict is
the same whichever process, machine or order judged it.

While the sandbox runs, the judge process already computes the model passes the judgment will need
(:meth:`JudgeProcess.warm`). Messages are pickles over the process's stdin/stdout, between trusted processes only:
learner code never runs in either, and what the run left reaches the judge as bytes inside :class:`.jobs.JobResult`.
The cases cross as plain data (:func:`.cases.as_data`) and are rebuilt, and so validated, on the other side.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from dataclasses import replace
from typing import IO, Any

from . import cases
from .jobs import JobResult
from .plan import TestCell
from .task import Graded, JudgeSpec


class JudgeFailed(RuntimeError):
    """The judge process died, or the judgment raised: the submission is reported as failed, never half-judged."""


def _die_with_parent() -> None:
    from .processes import die_with_parent

    die_with_parent()


class JudgeProcess:
    """A judge process, as the thread that owns it sees it: warm it, have it judge a run, close it."""

    def __init__(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lensref.course.grading.judge_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            preexec_fn=_die_with_parent,
        )

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.proc.poll() is None

    def _send(self, message: tuple[Any, ...]) -> None:
        assert self.proc.stdin is not None
        pickle.dump(message, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self.proc.stdin.flush()

    def warm(self, spec: JudgeSpec) -> None:
        """Start computing the model passes ``spec``'s judgment needs (no answer is sent back). Only the test cells
        and their cases go: a few kilobytes, which fit the pipe, so this never waits for a judge process that is
        still starting."""
        try:
            self._send(("warm", spec.test_cells, cases.as_data(spec.cases)))
        except (BrokenPipeError, OSError):
            pass  # it died: judge() says so and a fresh process takes over

    def judge(self, spec: JudgeSpec, run: JobResult) -> Graded:
        """``run`` judged in the process, from the same start as every judgment; :class:`JudgeFailed` if the process
        stopped or the judgment raised."""
        assert self.proc.stdout is not None
        try:
            self._send(("judge", replace(spec, cases={}), cases.as_data(spec.cases), run))
            kind, value = pickle.load(self.proc.stdout)
        except (BrokenPipeError, EOFError, OSError, pickle.UnpicklingError) as exc:
            raise JudgeFailed(f"the judge process stopped ({type(exc).__name__}, exit {self.proc.poll()})") from None
        if kind != "graded":
            raise JudgeFailed(f"the judgment raised {value}")
        graded: Graded = value
        return graded

    def close(self) -> None:
        """End the process: its input closed, then killed if it has not exited within 10 s."""
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass  # already gone
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_local = threading.local()
_every: set[JudgeProcess] = set()
_every_lock = threading.Lock()


def for_this_thread() -> JudgeProcess:
    """This thread's judge process (a new one if it has none, or its last one died)."""
    judge = getattr(_local, "judge", None)
    if judge is None or not judge.alive():
        if judge is not None:
            _forget(judge)
        judge = JudgeProcess()
        _local.judge = judge
        with _every_lock:
            _every.add(judge)
    return judge


def _forget(judge: JudgeProcess) -> None:
    with _every_lock:
        _every.discard(judge)
    judge.close()


def judge(spec: JudgeSpec, run: JobResult) -> Graded:
    """Judge ``run`` in this thread's judge process; a process that dies is replaced once and the run judged again."""
    try:
        return for_this_thread().judge(spec, run)
    except JudgeFailed:
        crashed = getattr(_local, "judge", None)
        if crashed is None or crashed.alive():
            raise  # the judgment itself raised: judging again would raise again
        _forget(crashed)
        _local.judge = None
        return for_this_thread().judge(spec, run)


def release_all() -> None:
    """Stop every judge process of this process (the pool is closing)."""
    with _every_lock:
        judges = list(_every)
        _every.clear()
    for judge in judges:
        judge.close()


# --- inside the judge process ------------------------------------------------------------------------------


def _same_start() -> None:
    """Every judgment starts from the same random state, whatever this process judged before."""
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def _warm(cells: tuple[TestCell, ...], drawn: dict[cases.CellKey, cases.CellData]) -> None:
    from ..checks import EXERCISES

    for cell in cells:
        for call, call_cases in zip(cell.calls, drawn.get((cell.notebook, cell.grade_id), ())):
            for data in call_cases:
                try:
                    exercise = EXERCISES[call.exercise]
                    exercise.warm(exercise.case_from_data(data))
                except Exception as exc:  # the judgment meets the same problem and reports it
                    print(f"judge warm-up: {type(exc).__name__}: {exc}"[:300], file=sys.stderr)


def serve(inbox: IO[bytes], outbox: IO[bytes]) -> int:
    """The judge process's loop: warm or judge each message from ``inbox``, answering judgments on ``outbox``, until
    ``inbox`` ends (then 0, the exit status)."""
    import torch

    from ...models import quiet_transformers
    from .judging import judge_run

    quiet_transformers()
    torch.set_num_threads(1)
    while True:
        try:
            message = pickle.load(inbox)
        except EOFError:
            return 0
        if message[0] == "warm":
            _warm(message[1], message[2])
            continue
        _same_start()
        try:
            spec: JudgeSpec = message[1]
            spec = replace(spec, cases=cases.from_data(spec.test_cells, message[2]))
            reply: tuple[str, Any] = ("graded", judge_run(spec, message[3]))
        except Exception as exc:  # a bug in a judge: reported for this submission, the process serves the next
            reply = ("error", f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}")
        pickle.dump(reply, outbox, protocol=pickle.HIGHEST_PROTOCOL)
        outbox.flush()


def main() -> int:
    """``python -m lensref.course.grading.judge_process``: serve stdin, answer on a copy of stdout; anything printed
    goes to stderr."""
    outbox = os.fdopen(os.dup(1), "wb")  # the channel; anything printed goes to stderr instead
    os.dup2(2, 1)
    return serve(sys.stdin.buffer, outbox)


if __name__ == "__main__":
    sys.exit(main())

"""Runs a learner's notebooks cell by cell inside the sandbox: ``python -m lensref.course.grading.runner``.

It reads ``job.json`` from the working folder and runs ``run/<notebook>.ipynb`` in a fresh kernel, writing
``executed/<notebook>.ipynb`` (the outputs, for feedback) and ``executed/<notebook>.cells.json`` (what happened to
each cell); every path is named by :mod:`.layout`. A cell that runs past its time is interrupted; a kernel that
ignores the interrupt, or dies (a crash, the memory limit), is killed and started again, the cells that had worked
are run again silently, and the notebook goes on after the cell that failed, so the other exercises still earn
their points.

Started with ``--warm`` (a pre-started sandbox, see :mod:`.jobs`), it starts the kernel and imports the libraries
and the model code there before any submission exists, then waits for the grader to write ``job.json``: the
learner's notebook then runs in a kernel that has paid its start-up already. Only this trusted warm-up runs
before the learner's files arrive, and the sandbox still serves one submission only.

The home is capped (``Limits.disk_mb``): a learner who fills it is graded on what the notebook did. ``executed/`` and
``outputs/`` have room of their own, so the results are still written; a write that fails anyway (a learner who
filled those too) is one line in the log (the runner) or in the cell's output (the probe), never the end of the
run.

Nothing here judges anything: this process runs beside learner code and is trusted with nothing. The probe cells
write the learner's answers as data; the grader outside decides.
"""

from __future__ import annotations

import json
import queue
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import layout

if TYPE_CHECKING:
    from nbformat import NotebookNode

MAX_OUTPUT_CHARS = 20000  # per cell, for the feedback


@dataclass
class CellRun:
    """What happened to one code cell of the run: its status, its time, and how many earlier cells were replayed after
    the kernel was restarted for it."""

    index: int
    status: str  # ok, error, timeout, died, skipped
    seconds: float = 0.0
    replays: int = 0


class Kernel:
    """A fresh Python kernel in the working folder: :meth:`execute` runs a cell in it, :meth:`close` shuts it down."""

    def __init__(self, startup_timeout: float):
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(Path.cwd()))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=startup_timeout)

    def execute(self, code: str, timeout: float, grace: float, silent: bool = False) -> tuple[str, list[NotebookNode]]:
        """Run ``code``; returns (status, outputs). status: ok, error, timeout (kernel stuck: restart), died."""
        import nbformat

        msg_id = self.kc.execute(code, silent=silent, store_history=not silent, allow_stdin=False, stop_on_error=False)
        outputs: list[NotebookNode] = []
        chars = 0
        status = "ok"
        deadline = time.monotonic() + timeout
        interrupted_at = None
        while True:
            now = time.monotonic()
            if interrupted_at is None and now > deadline:
                self.km.interrupt_kernel()
                interrupted_at = now
                status = "timeout"
            if interrupted_at is not None and now > interrupted_at + grace:
                return "stuck", outputs
            try:
                msg = self.kc.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                if not self.km.is_alive():
                    return "died", outputs
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                break
            if kind == "clear_output":
                outputs.clear()
                continue
            if chars > MAX_OUTPUT_CHARS:
                continue
            if kind == "stream":
                text = content.get("text", "")[: MAX_OUTPUT_CHARS - chars]
                chars += len(text)
                outputs.append(
                    nbformat.v4.new_output("stream", name=content.get("name", "stdout"), text=text)  # type: ignore[no-untyped-call]  # nbformat is unannotated
                )
            elif kind in ("display_data", "execute_result"):
                chars += sum(len(str(v)) for v in content.get("data", {}).values())
                outputs.append(
                    nbformat.v4.new_output(  # type: ignore[no-untyped-call]  # nbformat is unannotated
                        "display_data", data=content.get("data", {}), metadata=content.get("metadata", {})
                    )
                )
            elif kind == "error":
                if status == "ok":
                    status = "error"
                outputs.append(
                    nbformat.v4.new_output(  # type: ignore[no-untyped-call]  # nbformat is unannotated
                        "error",
                        ename=str(content.get("ename", ""))[:200],
                        evalue=str(content.get("evalue", ""))[:2000],
                        traceback=[],
                    )
                )
        return status, outputs

    def close(self) -> None:
        """Stop the kernel and its channels (one already gone is fine)."""
        import zmq

        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
        # the kernel may be gone already: RuntimeError (no kernel to interrupt or signal, or no event loop for
        # jupyter_client's sync wrappers), OSError (signalling a dead process, removing its connection files),
        # zmq.ZMQError (closing sockets and the context of a kernel whose channels are broken)
        except (RuntimeError, OSError, zmq.ZMQError):
            pass


WARM_UP = """
def _lensref_warm_up():
    from lensref.models import quiet_transformers

    quiet_transformers()
    import torch
    import transformers
    import lensref
    import lensref.course.checks
    import lensref.course.examples
    from lensref.models import default_model_folder
    from transformers import AutoConfig, AutoTokenizer

    folder = default_model_folder()
    config = AutoConfig.from_pretrained(folder)
    transformers.AutoModelForCausalLM._model_mapping[type(config)]  # imports the model's modeling code
    AutoTokenizer.from_pretrained(folder)
    for weights in folder.glob("*.safetensors"):  # into the page cache: the learner's load reads from memory
        with open(weights, "rb") as f:
            while f.read(1 << 24):
                pass

_lensref_warm_up()
del _lensref_warm_up
"""


def warm_kernel(startup: float) -> Kernel:
    """A kernel with the libraries and the model's code imported (nothing left in its namespace, no weights held:
    the memory limit stays the learner's)."""
    kernel = Kernel(startup)
    kernel.execute(WARM_UP, timeout=300, grace=10, silent=True)  # a failure here costs only the head start
    Path(layout.WARM_MARK).touch()  # when the warm-up ended (its time, for the grader's timing report)
    return kernel


def wait_for_job(idle_s: float) -> layout.JobSpec | None:
    """The job the grader hands over (``job.json``, written last and atomically), or None after ``idle_s``."""
    deadline = time.monotonic() + idle_s
    path = Path(layout.JOB)
    while time.monotonic() < deadline:
        if path.is_file():
            return layout.JobSpec.from_bytes(path.read_bytes())
        time.sleep(0.05)
    return None


def one_line(exc: BaseException) -> str:
    """Why a write failed, in one line ("No space left on device")."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def write_whole(path: Path, data: bytes) -> str | None:
    """Write ``data`` to ``path`` (its folder made); None, or why not in one line, with no partial file left."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return None
    except OSError as exc:  # a full disk (the learner filled it): the rest of the results are still tried
        try:
            path.unlink(missing_ok=True)
        except OSError:  # the learner made it a folder: nothing partial of ours to remove
            pass
        return one_line(exc)


def write_results(name: str, nb: NotebookNode, runs: list[CellRun]) -> None:
    """Leave ``executed/<name>.cells.json`` and ``executed/<name>.ipynb``; what cannot be written (a full disk) is
    one line in the log, and the other file is still tried."""
    import nbformat

    records = json.dumps([asdict(r) for r in runs]).encode()
    for path, data in (
        (layout.executed_cells(name), records),
        (layout.executed_notebook(name), nbformat.writes(nb).encode()),  # type: ignore[no-untyped-call]  # nbformat is unannotated
    ):
        failed = write_whole(Path(path), data)
        if failed:
            print(f"runner: could not write {path}: {failed}", file=sys.stderr, flush=True)


def start_kernel(startup: float) -> Kernel | None:
    """A new kernel (for a notebook, or after a crash or a stuck cell), or None when none starts (a home the
    learner filled has no room for its connection file)."""
    try:
        return Kernel(startup)
    except (OSError, RuntimeError) as exc:  # jupyter_client: no room for its files, or the kernel never answered
        print(f"runner: could not restart the kernel: {one_line(exc)}", file=sys.stderr, flush=True)
        return None


def run_notebook(name: str, job: layout.JobSpec, kernel: Kernel | None = None) -> list[CellRun]:
    """Run ``run/<name>.ipynb`` cell by cell and leave what happened under ``executed/``."""
    import nbformat

    nb = nbformat.read(layout.run_notebook(name), as_version=4)  # type: ignore[no-untyped-call]  # nbformat is unannotated
    timeout, grace = job.cell_timeout, job.interrupt_grace
    startup = job.startup_timeout
    restarts_left = job.max_restarts
    runs: list[CellRun] = []
    done: list[int] = []  # cells that ran without error, replayed after a restart
    kernel = kernel or start_kernel(startup)
    if kernel is None:  # a later notebook, after the learner filled the home: none of its cells can run
        runs = [CellRun(index, "skipped") for index, cell in enumerate(nb.cells) if cell.cell_type == "code"]
        write_results(name, nb, runs)
        return runs
    try:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            start = time.monotonic()
            status, outputs = kernel.execute(cell.source, timeout, grace)
            cell.outputs = outputs
            record = CellRun(index, status, time.monotonic() - start)
            runs.append(record)
            if status == "ok":
                done.append(index)
            if status in ("stuck", "died"):
                cell.outputs.append(
                    nbformat.v4.new_output(  # type: ignore[no-untyped-call]  # nbformat is unannotated
                        "error",
                        ename="CellTimeoutError" if status == "stuck" else "KernelDied",
                        evalue=(
                            "the cell ran past its time limit and ignored the interrupt; the kernel was restarted"
                            if status == "stuck"
                            else "the kernel died (a crash or the memory limit); it was restarted"
                        ),
                        traceback=[],
                    )
                )
                kernel.close()
                fresh = start_kernel(startup) if restarts_left > 0 else None
                if fresh is None:
                    for rest in nb.cells[index + 1 :]:
                        if rest.cell_type == "code":
                            runs.append(CellRun(nb.cells.index(rest), "skipped"))
                    break
                restarts_left -= 1
                kernel = fresh
                for earlier in done:  # bring the namespace back; a cell that fails now simply stays failed
                    replay, _ = kernel.execute(nb.cells[earlier].source, timeout, grace)
                    record.replays += 1
                    if replay in ("stuck", "died"):
                        break
            elif status == "timeout":
                cell.outputs.append(
                    nbformat.v4.new_output(  # type: ignore[no-untyped-call]  # nbformat is unannotated
                        "error",
                        ename="CellTimeoutError",
                        evalue=f"the cell ran past its {timeout:g} s limit",
                        traceback=[],
                    )
                )
    finally:
        kernel.close()
    write_results(name, nb, runs)
    return runs


def main(argv: list[str] | None = None) -> int:
    """``python -m lensref.course.grading.runner``: run the job's notebooks, each in a kernel of its own. With
    ``--warm IDLE_S`` the first kernel starts before ``job.json`` comes (nothing is run if none comes in time)."""
    argv = sys.argv[1:] if argv is None else argv
    kernel = None
    if argv[:1] == ["--warm"]:
        kernel = warm_kernel(startup=120)
        job = wait_for_job(float(argv[1]) if len(argv) > 1 else 3600)
        if job is None:  # never used: the grader went away or had no more work
            kernel.close()
            return 0
    else:
        job = layout.JobSpec.from_bytes(Path(layout.JOB).read_bytes())
    for name in job.notebooks:
        run_notebook(name, job, kernel)
        kernel = None  # a second notebook gets a kernel of its own, as it would in Jupyter
    return 0


if __name__ == "__main__":
    sys.exit(main())

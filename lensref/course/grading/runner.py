"""Runs a learner's notebooks cell by cell inside the sandbox: ``python -m lensref.course.grading.runner``.

It reads ``job.json`` from the working folder and runs ``run/<notebook>.ipynb`` in a fresh kernel, writing
``executed/<notebook>.ipynb`` (the outputs, for feedback) and ``executed/<notebook>.cells.json`` (what happened to
each cell). A cell that runs past its time is interrupted; a kernel that ignores the interrupt, or dies (a crash,
the memory limit), is killed and started again, the cells that had worked are run again silently, and the notebook
goes on after the cell that failed, so the other exercises still earn their points.

Started with ``--warm`` (a pre-started sandbox, see :mod:`.jobs`), it starts the kernel and imports the libraries
and the model code there before any submission exists, then waits for the grader to write ``job.json``: the
learner's notebook then runs in a kernel that has paid its start-up already. Only this trusted warm-up runs
before the learner's files arrive, and the sandbox still serves one submission only.

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

MAX_OUTPUT_CHARS = 20000  # per cell, for the feedback


@dataclass
class CellRun:
    index: int
    status: str  # ok, error, timeout, died, skipped
    seconds: float = 0.0
    replays: int = 0


class Kernel:
    def __init__(self, startup_timeout: float):
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=str(Path.cwd()))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=startup_timeout)

    def execute(self, code: str, timeout: float, grace: float, silent: bool = False) -> tuple[str, list]:
        """Run ``code``; returns (status, outputs). status: ok, error, timeout (kernel stuck: restart), died."""
        import nbformat

        msg_id = self.kc.execute(code, silent=silent, store_history=not silent, allow_stdin=False, stop_on_error=False)
        outputs: list = []
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
                outputs.append(nbformat.v4.new_output("stream", name=content.get("name", "stdout"), text=text))
            elif kind in ("display_data", "execute_result"):
                chars += sum(len(str(v)) for v in content.get("data", {}).values())
                outputs.append(
                    nbformat.v4.new_output(
                        "display_data", data=content.get("data", {}), metadata=content.get("metadata", {})
                    )
                )
            elif kind == "error":
                if status == "ok":
                    status = "error"
                outputs.append(
                    nbformat.v4.new_output(
                        "error",
                        ename=str(content.get("ename", ""))[:200],
                        evalue=str(content.get("evalue", ""))[:2000],
                        traceback=[],
                    )
                )
        return status, outputs

    def close(self) -> None:
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
        except Exception:  # the kernel may be gone already
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
    Path(".warm").touch()  # when the warm-up ended (its time, for the grader's timing report)
    return kernel


def wait_for_job(idle_s: float) -> dict | None:
    """The job the grader hands over (``job.json``, written last and atomically), or None after ``idle_s``."""
    deadline = time.monotonic() + idle_s
    path = Path("job.json")
    while time.monotonic() < deadline:
        if path.is_file():
            return json.loads(path.read_text())
        time.sleep(0.05)
    return None


def run_notebook(path: Path, out: Path, job: dict, kernel: Kernel | None = None) -> list[CellRun]:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    timeout, grace = float(job["cell_timeout"]), float(job.get("interrupt_grace", 10))
    startup = float(job.get("startup_timeout", 120))
    restarts_left = int(job.get("max_restarts", 3))
    runs: list[CellRun] = []
    done: list[int] = []  # cells that ran without error, replayed after a restart
    kernel = kernel or Kernel(startup)
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
                    nbformat.v4.new_output(
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
                if restarts_left <= 0:
                    for rest in nb.cells[index + 1 :]:
                        if rest.cell_type == "code":
                            runs.append(CellRun(nb.cells.index(rest), "skipped"))
                    break
                restarts_left -= 1
                kernel = Kernel(startup)
                for earlier in done:  # bring the namespace back; a cell that fails now simply stays failed
                    replay, _ = kernel.execute(nb.cells[earlier].source, timeout, grace)
                    record.replays += 1
                    if replay in ("stuck", "died"):
                        break
            elif status == "timeout":
                cell.outputs.append(
                    nbformat.v4.new_output(
                        "error",
                        ename="CellTimeoutError",
                        evalue=f"the cell ran past its {timeout:g} s limit",
                        traceback=[],
                    )
                )
    finally:
        kernel.close()
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out / path.name)
    (out / f"{path.stem}.cells.json").write_text(json.dumps([asdict(r) for r in runs]))
    return runs


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    kernel = None
    if argv[:1] == ["--warm"]:
        kernel = warm_kernel(startup=120)
        job = wait_for_job(float(argv[1]) if len(argv) > 1 else 3600)
        if job is None:  # never used: the grader went away or had no more work
            kernel.close()
            return 0
    else:
        job = json.loads(Path("job.json").read_text())
    for name in job["notebooks"]:
        run_notebook(Path("run") / f"{name}.ipynb", Path("executed"), job, kernel)
        kernel = None  # a second notebook gets a kernel of its own, as it would in Jupyter
    return 0


if __name__ == "__main__":
    sys.exit(main())

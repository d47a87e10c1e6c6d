"""Judging one finished run: from the bytes the sandbox left to scores, verdicts and feedback pages.

This runs in a judge process (:mod:`.judge_process`), trusted and apart from learner code, and apart from every
other judgment in progress: the references it computes hook modules of models that only this process holds. What
the run left is untrusted and read as data: the recorded answers (:mod:`.wire`), the per-cell records and the
executed notebook (parsed, size-capped; a broken or forged one falls back to the notebook as it was run).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .. import cells
from . import layout
from .jobs import JobResult
from .judge import CellVerdict, judge_cell
from .static import inspect_code
from .task import Graded, JudgeSpec

if TYPE_CHECKING:
    from nbformat import NotebookNode

MAX_EXECUTED_BYTES = 64 * 2**20
MAX_CELL_RECORDS_BYTES = 2**20


def run_notes(spec: JudgeSpec, run: JobResult) -> list[str]:
    """What the feedback says about how the run ended."""
    notes = []
    if run.timed_out:
        notes.append(f"the whole run passed its {spec.wall_s:.0f} s limit and was stopped")
    if run.oom_kills:
        notes.append(f"the memory limit ({spec.memory_mb} MB) was hit {run.oom_kills} time(s)")
    if run.disk_full:
        notes.append("the run filled its disk space; what it wrote before was graded")
    if run.truncated:
        notes.append("the run wrote more than the grader reads back; some answers were dropped")
    return notes


def cell_statuses(files: Mapping[str, bytes], notebook: str, run_nb: NotebookNode) -> dict[str, str]:
    """grade_id -> how its probe cell ended (the runner's record: untrusted, used only for wording)."""
    try:
        runs = json.loads(files.get(layout.executed_cells(notebook), b"")[:MAX_CELL_RECORDS_BYTES])
    except (ValueError, UnicodeDecodeError):
        return {}
    out = {}
    for entry in runs if isinstance(runs, list) else []:
        try:
            gid = cells.grade_id(run_nb.cells[int(entry["index"])])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if gid:
            out[gid] = str(entry.get("status"))
    return out


def executed_notebook(files: Mapping[str, bytes], notebook: str, run_nb: NotebookNode) -> NotebookNode:
    """The run's notebook with its outputs, else the notebook as it was run (no outputs)."""
    import nbformat
    from nbformat.reader import NotJSONError
    from nbformat.validator import ValidationError

    data = files.get(layout.executed_notebook(notebook))
    if data is None or len(data) >= MAX_EXECUTED_BYTES:
        return run_nb
    try:
        nb: NotebookNode = nbformat.reads(data.decode("utf-8"), as_version=4)  # type: ignore[no-untyped-call]  # nbformat is unannotated
        return nb
    except (UnicodeDecodeError, NotJSONError, ValidationError, ValueError, KeyError, TypeError, AttributeError):
        return run_nb  # broken or forged: the feedback shows the cells without outputs


def judge_run(spec: JudgeSpec, run: JobResult) -> Graded:
    """Score every test cell of the run, and render its feedback pages."""
    import nbformat

    from . import feedback

    start = time.time()
    files = run.files
    notes = list(spec.notes) + run_notes(spec, run)
    code = inspect_code(spec.learner_code, spec.forbidden)
    for exercise, names_used in code.uses_reference.items():
        notes.append(f"{exercise} calls {', '.join(names_used)} (the reference): scored 0, please review")
    notes += [f"review: {line}" for line in code.review]
    points: dict[tuple[str, str], float] = {}
    verdicts: list[CellVerdict] = []
    executed: dict[str, bytes] = {}
    records: dict[str, bytes] = {}
    pages: dict[str, str] = {}
    for notebook, run_bytes in spec.run_notebooks.items():
        run_nb = nbformat.reads(run_bytes.decode("utf-8"), as_version=4)  # type: ignore[no-untyped-call]  # nbformat is unannotated
        statuses = cell_statuses(files, notebook, run_nb)
        mine: dict[str, CellVerdict] = {}
        for cell in (c for c in spec.test_cells if c.notebook == notebook):
            verdict = judge_cell(
                cell, spec.cases[(notebook, cell.grade_id)], files, statuses.get(cell.grade_id), code.uses_reference
            )
            mine[cell.grade_id] = verdict
            points[(notebook, cell.grade_id)] = verdict.points
        verdicts += mine.values()
        shown = executed_notebook(files, notebook, run_nb)
        executed[notebook] = nbformat.writes(shown).encode()  # type: ignore[no-untyped-call]  # nbformat is unannotated
        record = files.get(layout.executed_cells(notebook))
        if record is not None and len(record) < MAX_CELL_RECORDS_BYTES:
            records[notebook] = record
        source = nbformat.reads(spec.sources[notebook].decode("utf-8"), as_version=4)  # type: ignore[no-untyped-call]  # nbformat is unannotated
        title = f"{spec.assignment} / {notebook}: feedback for {spec.student}"
        pages[notebook] = feedback.render(title, shown, source, mine, notes)
    return Graded(
        spec.student,
        points,
        verdicts,
        notes,
        executed,
        records,
        pages,
        run.log,
        run.worker,
        {"sandbox": run.seconds, "judge": time.time() - start},
        run.warm_s,
    )

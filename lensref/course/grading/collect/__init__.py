"""``lensref collect``: learners' zips and LMS downloads into ``submitted/<student>/<assignment>/<notebook>.ipynb``,
trusting nothing that is in them.

``unzip`` restores the symlinks a zip stores: a zip whose notebook is a symlink to the instructor's solution would be
graded as the solution. Collection therefore never extracts: it reads each member it accepts, with a bounded read, into
a scratch file, checks it is one of the course's notebooks, and only then writes it into ``submitted/``.

Each argument is a ``.zip`` (written by ``lensref submit``: one learner's work; or a Moodle or Canvas bulk download),
an ``.ipynb`` or a folder holding them. One module a step:

- :mod:`.archives`: the inputs as members, nothing extracted; symlinks, hard links, special files, absolute and ``..``
  paths refused; hidden files, ``__MACOSX/`` and the like ignored (counted in the summary);
- :mod:`.reading`: a member into a scratch file by a bounded read (50 MB a notebook, 100 times its compressed size,
  2 GB a run): a compression bomb is never inflated;
- :mod:`.placing`: its student and assignment from the ``lensref submit`` layout or the name an LMS gave it
  (:mod:`.lms`), its notebook from its nbgrader cells; files that are not the course's notebooks and student names
  that are not safe folder names refused;
- :mod:`.scanning`: those steps for every member, in order;
- :mod:`.conflicts`: LMS learners' folders named; two hand-ins for one student and assignment in one run, or a zip of
  several students, refused (none of them collected);
- :mod:`.writing`: into ``submitted/``, never through a symlink; an existing submission refused unless ``force``, one
  already there byte for byte "unchanged";
- :mod:`.manifest`: ``submitted/collected.csv``, where each notebook came from (with the LMS's id and name).

Every refusal is one line naming the archive and the member, and the run goes on with the rest. A bad input — no such
archive, an unreadable zip, an unknown ``--assignment``, or an LMS download without ``--assignment`` — is a one-line
:class:`~lensref.errors.LensError` before anything is written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ....errors import LensError
from ..grader import assignments, course_root
from .archives import find_inputs
from .conflicts import conflicts, name_students
from .lms import LmsIdentity, lms_folders, slug
from .manifest import MANIFEST, write_manifest
from .placing import Candidate, Context
from .reading import Reader
from .results import Collected, CollectReport, Refused
from .scanning import Scan
from .text import count, exception_line
from .writing import Unchanged, Unsafe, open_submitted, write

__all__ = ["Collected", "CollectReport", "LmsIdentity", "Refused", "collect", "lms_folders", "slug"]


def collect(
    inputs: list[str | Path],
    assignment: str | None = None,
    submitted: str | Path | None = None,
    force: bool = False,
    root: Path | None = None,
) -> CollectReport:
    """Collect every notebook of ``inputs`` (zips, notebooks, folders) into ``submitted`` (default: ``submitted/`` of
    the course root); see the module docstring. Refusals are in the report; bad input is a :class:`LensError`."""
    root = root or course_root()
    known = assignments(root)
    if assignment is not None and assignment not in known:
        raise LensError(f"--assignment {assignment!r}: not one of the course's assignments ({', '.join(known)})")
    if not inputs:
        raise LensError("name at least one zip, notebook or folder to collect")
    submitted = Path(submitted) if submitted is not None else root / "submitted"
    report = CollectReport(submitted)
    items = find_inputs([Path(p) for p in inputs], submitted.resolve())
    with tempfile.TemporaryDirectory(prefix="lensref-collect-") as scratch:
        scan = Scan(Context(root, known, assignment), Reader(Path(scratch)), report)
        for item in items:
            scan.input(item)
        if not scan.candidates and not report.refused:
            raise LensError(_nothing_found(inputs, assignment, report))
        accepted = _refuse_conflicts(name_students(scan.candidates), report)
        if accepted:
            _write_all(accepted, submitted, force, report)
    return report


def _nothing_found(inputs: list[str | Path], assignment: str | None, report: CollectReport) -> str:
    where = ", ".join(str(p) for p in inputs)
    if report.left_out:
        return (
            f"found no notebook of {assignment} in {where} ({count(report.left_out, 'notebook')} of other assignments)"
        )
    return f"found no notebook to collect in {where}"


def _refuse_conflicts(candidates: list[Candidate], report: CollectReport) -> list[Candidate]:
    problems = conflicts(candidates)
    for i, problem in sorted(problems.items()):
        report.refused.append(Refused(candidates[i].archive, candidates[i].member, problem))
    return [c for i, c in enumerate(candidates) if i not in problems]


def _write_all(accepted: list[Candidate], submitted: Path, force: bool, report: CollectReport) -> None:
    submitted_fd = open_submitted(submitted)
    try:
        for c in sorted(accepted, key=lambda c: (c.student, c.course_notebook.relpath)):
            try:
                replaced = write(submitted_fd, submitted, c, force)
            except Unchanged:
                report.unchanged.append(_collected(c, replaced=False, unchanged=True))
                continue
            except Unsafe as exc:
                report.refused.append(Refused(c.archive, c.member, str(exc)))
                continue
            except OSError as exc:
                report.refused.append(Refused(c.archive, c.member, f"could not be written ({exception_line(exc)})"))
                continue
            report.collected.append(_collected(c, replaced))
    finally:
        os.close(submitted_fd)
    if report.collected:
        report.manifest = submitted / MANIFEST
        write_manifest(report.manifest, report.collected)


def _collected(c: Candidate, replaced: bool, unchanged: bool = False) -> Collected:
    nb = c.course_notebook
    identity = c.placement.identity
    return Collected(
        c.student,
        nb.assignment,
        nb.notebook,
        c.archive,
        c.member,
        c.placement.layout,
        identity,
        replaced,
        c.sha256,
        unchanged,
    )

"""The feedback pages (``feedback/<student>/<assignment>/<notebook>.html``, as the grader wrote them) in a zip that
an LMS's bulk upload files under each student.

- **Moodle** (assignment > Submissions > "Upload multiple feedback files in a zip"): each file sits in a folder named
  ``<full name>_<participant id>_assignfeedback_file_``; Moodle reads the participant id (the one its "Download all
  submissions" used) from the second ``_``-separated part and the feedback plugin from the third and fourth
  (moodle/moodle, ``mod/assign/feedback/file/importziplib.php``, ``is_valid_filename_for_import``). The name and id
  come from ``submitted/collected.csv``, so only students collected from that assignment's Moodle download match.
- **Canvas** (assignment > "Re-Upload Submissions"): Canvas takes the first two all-digit ``_``-separated parts of
  each file's name as the user id and the id of a file that user submitted, and adds the file as a comment on that
  submission (instructure/canvas-lms, ``app/models/assignment.rb``, ``infer_comment_context_from_filename``). Each
  page is named ``<name>_<user id>_<file id>_<notebook>-feedback.html`` from the notebook's name in Canvas's
  "Download Submissions" zip, kept in ``submitted/collected.csv``.

The pages are copied byte for byte: the same escaped HTML, with its script-forbidding Content-Security-Policy.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .collected import CollectedFrom

FEEDBACK_FORMATS = ("moodle", "canvas")
_MOODLE_FOLDER = "{name}_{participant}_assignfeedback_file_"


@dataclass(frozen=True)
class FeedbackPage:
    """One feedback page the grader wrote: its student, notebook and file."""

    student: str
    notebook: str
    path: Path


@dataclass(frozen=True)
class FeedbackPackage:
    """The zip's members (each page under the name the LMS files it by), and the students left out, with why."""

    members: dict[str, Path]  # name in the zip -> page
    unmatched: tuple[str, ...]  # "<student>: <why>", one per student left out


def feedback_pages(feedback_dir: Path, assignment: str) -> list[FeedbackPage]:
    """Every ``feedback/<student>/<assignment>/<notebook>.html``, in name order; links are not followed."""
    pages = []
    if feedback_dir.is_dir():
        for student_dir in sorted(feedback_dir.iterdir()):
            folder = student_dir / assignment
            if student_dir.is_symlink() or folder.is_symlink() or not folder.is_dir():
                continue
            for page in sorted(folder.glob("*.html")):
                if page.is_file() and not page.is_symlink():
                    pages.append(FeedbackPage(student_dir.name, page.stem, page))
    return pages


def _moodle_name(page: FeedbackPage, record: CollectedFrom) -> str:
    folder = _MOODLE_FOLDER.format(name=record.lms_name.replace("_", " "), participant=record.lms_id)
    return f"{folder}/{page.notebook}.html"


def _canvas_name(page: FeedbackPage, record: CollectedFrom) -> str | None:
    ids = [part for part in PurePosixPath(record.member).name.split("_") if re.fullmatch(r"\d+", part)]
    if len(ids) < 2 or ids[0] != record.lms_id:
        return None
    name = record.lms_name or "student"
    return f"{name}_{ids[0]}_{ids[1]}_{page.notebook}-feedback.html"


def package_feedback(
    lms: str, pages: list[FeedbackPage], collected: dict[tuple[str, str], CollectedFrom]
) -> FeedbackPackage:
    """The zip's members for ``lms``; a page whose student did not come from that LMS is left out and listed."""
    members: dict[str, Path] = {}
    unmatched = []
    for page in pages:
        record = collected.get((page.student, page.notebook))
        if record is None or record.lms != lms:
            source = "lensref collect never saw it" if record is None else f"collected from {record.lms}"
            unmatched.append(f"{page.student}: {page.notebook}.html has no {lms} identity ({source})")
            continue
        name = _moodle_name(page, record) if lms == "moodle" else _canvas_name(page, record)
        if name is None:
            unmatched.append(f"{page.student}: {record.member!r} does not name a Canvas user id and file id")
            continue
        members[name] = page.path
    return FeedbackPackage(members, tuple(unmatched))


def zip_bytes(package: FeedbackPackage) -> bytes:
    """The package as a zip's bytes, its members in name order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(package.members.items()):
            archive.writestr(name, path.read_bytes())
    return buffer.getvalue()

"""`lensref collect`: learners' zips and LMS downloads into submitted/, refusing every way a zip could abuse it.

Adversarial zips are built here with `zipfile` (a symlink member is `external_attr = 0o120777 << 16` with the link
target as its data); honest ones with `lensref submit` on the released notebook. Every test looks at the files actually
written under submitted/ (and that nothing was written anywhere else), at the printed lines (one per refusal) and,
through the CLI, at the exit status. No model, no sandbox: seconds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from lensref.cli import main
from lensref.course.grading.collect import LmsIdentity, archives, collect, lms_folders, reading, slug, writing
from lensref.course.submit import submit

ROOT = Path(__file__).resolve().parents[1]
RELEASED_01 = ROOT / "exercises" / "01-logit-lens" / "logit_lens.ipynb"
RELEASED_02 = ROOT / "exercises" / "02-reading-the-grid" / "reading_the_grid.ipynb"
RELEASED_03 = ROOT / "exercises" / "03-variants" / "variants.ipynb"
SOLUTION_01 = ROOT / "solutions" / "01-logit-lens" / "logit_lens.ipynb"
MB = 2**20
A01 = "01-logit-lens"


# --- helpers ---------------------------------------------------------------------------------------------------------


def honest_zip(folder: Path, student: str, *notebooks: Path) -> Path:
    """What ``lensref submit NOTEBOOK --student STUDENT`` writes (one zip per learner, one member per notebook)."""
    target = folder / f"submission-{student}.zip"
    for notebook in notebooks or (RELEASED_01,):
        submit(notebook, student, target)
    return target


def edited_notebook(folder: Path, note: str) -> Path:
    """The released notebook with a learner's markdown cell added: still recognised, other bytes."""
    nb = nbformat.read(RELEASED_01, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell(note))
    path = folder / f"work-{abs(hash(note))}.ipynb"
    nbformat.write(nb, path)
    return path


def crafted(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    """A zip with ``members`` as given (any name) and ``links`` as symlink members (name -> target)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            z.writestr(info, target)
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def run_collect(cwd: Path, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lensref", "collect", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


def tree(folder: Path) -> dict[str, str | bytes]:
    """Every file and link under ``folder``: its bytes, or ``-> target`` for a link (folders themselves left out)."""
    out: dict[str, str | bytes] = {}
    for top, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if (Path(top) / d).is_symlink()]:
            path = Path(top) / name
            rel = path.relative_to(folder).as_posix()
            out[rel] = f"-> {os.readlink(path)}" if path.is_symlink() else path.read_bytes()
    return out


def outside(snapshot: dict[str, str | bytes], after: dict[str, str | bytes]) -> dict[str, str | bytes]:
    """What changed in the test's folder apart from submitted/."""
    keys = {k for k in snapshot.keys() | after.keys() if not k.startswith("submitted/")}
    return {k: after.get(k, "(gone)") for k in keys if snapshot.get(k) != after.get(k)}


def manifest(submitted: Path) -> list[dict[str, str]]:
    with open(submitted / "collected.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def refusals(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("refused ")]


@pytest.fixture(scope="module")
def attack_zip(tmp_path_factory) -> Path:
    """One learner's crafted zip: a symlink to the instructor's solution, a member climbing out with '..', and a
    notebook that expands to 1 GB of zeros (about 1 MB compressed), built once for the module."""
    path = tmp_path_factory.mktemp("attack") / "submission-mallory.zip"
    crafted(
        path,
        {"mallory/../../../escaped.ipynb": RELEASED_01.read_bytes()},
        links={"mallory/01-logit-lens/logit_lens.ipynb": "../../../../solutions/01-logit-lens/logit_lens.ipynb"},
    )
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("mallory/02-reading-the-grid/reading_the_grid.ipynb", "w", force_zip64=True) as f:
            chunk = bytes(MB)
            for _ in range(1024):
                f.write(chunk)
    assert path.stat().st_size < 3 * MB
    return path


# --- the "done when" -----------------------------------------------------------------------------------------


def test_a_symlink_a_dotdot_member_and_a_1gb_member_are_three_refusals_and_the_honest_zips_are_collected(
    tmp_path, attack_zip
):
    shutil.copy(attack_zip, tmp_path / attack_zip.name)
    honest_zip(tmp_path, "ada")
    honest_zip(tmp_path, "ben")
    before = tree(tmp_path)
    proc = run_collect(
        tmp_path, "submission-ada.zip", attack_zip.name, "submission-ben.zip", "--submitted", "submitted"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = refusals(proc.stdout)
    assert len(lines) == 3, proc.stdout
    assert all(line.startswith("refused submission-mallory.zip: mallory/") for line in lines), lines
    by_member = {line.split(": ")[1]: line for line in lines}
    assert "symbolic link" in by_member["mallory/01-logit-lens/logit_lens.ipynb"]
    assert "'..'" in by_member["mallory/../../../escaped.ipynb"]
    assert "declares 1.0 GB" in by_member["mallory/02-reading-the-grid/reading_the_grid.ipynb"]
    written = tree(tmp_path / "submitted")
    assert sorted(written) == [
        "ada/01-logit-lens/logit_lens.ipynb",
        "ben/01-logit-lens/logit_lens.ipynb",
        "collected.csv",
    ]
    assert written["ada/01-logit-lens/logit_lens.ipynb"] == RELEASED_01.read_bytes()  # not the solution
    assert written["ben/01-logit-lens/logit_lens.ipynb"] == RELEASED_01.read_bytes()
    assert outside(before, tree(tmp_path)) == {}
    assert not (tmp_path.parent / "escaped.ipynb").exists() and not (tmp_path / "escaped.ipynb").exists()
    collected = [line for line in proc.stdout.splitlines() if line.startswith("collected ")]
    assert collected[:2] == [
        "collected ada/01-logit-lens/logit_lens.ipynb from submission-ada.zip: ada/01-logit-lens/logit_lens.ipynb",
        "collected ben/01-logit-lens/logit_lens.ipynb from submission-ben.zip: ben/01-logit-lens/logit_lens.ipynb",
    ]
    assert collected[2:] == [proc.stdout.splitlines()[-1]]  # the summary
    assert collected[2].startswith("collected 2 notebooks of 2 students, refused 3; manifest submitted/collected.csv")


def test_the_bomb_is_refused_without_inflating_it(tmp_path, attack_zip, monkeypatch):
    inflated = []
    real_read = zipfile.ZipExtFile.read

    def counting_read(self, n=-1):
        data = real_read(self, n)
        inflated.append(len(data))
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    report = collect([attack_zip], submitted=tmp_path / "submitted")
    assert len(report.refused) == 3 and not report.collected
    assert sum(inflated) < MB  # the 1 GB member is never read (a symlink's target is never read either)
    assert not (tmp_path / "submitted").exists()


# --- what is refused -------------------------------------------------------------------------------------------------


def test_a_member_that_expands_too_many_times_is_a_compression_bomb(tmp_path):
    bomb = tmp_path / "submission-eve.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("eve/01-logit-lens/logit_lens.ipynb", bytes(40 * MB))  # under the 50 MB cap, ~1000 times
    report = collect([bomb], submitted=tmp_path / "submitted")
    [refused] = report.refused
    assert refused.member == "eve/01-logit-lens/logit_lens.ipynb"
    assert refused.reason.startswith("expands 1") and "compression bomb" in refused.reason  # from the header alone
    assert report.exit_status == 1 and not (tmp_path / "submitted").exists()


def test_a_header_that_lies_about_the_size_is_caught(tmp_path):
    """The header says 1,000 bytes; the deflate stream holds 8 MB. The read stops at the declared size and the
    member is refused (its checksum does not match): it is never written."""
    path = tmp_path / "submission-eve.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("eve/01-logit-lens/logit_lens.ipynb", b'{"cells": []}' + bytes(8 * MB))
    data = bytearray(path.read_bytes())
    real = (13 + 8 * MB).to_bytes(4, "little")
    for at in (i for i in range(len(data) - 3) if data[i : i + 4] == real):
        data[at : at + 4] = (1000).to_bytes(4, "little")  # local header and central directory
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as z:
        assert z.getinfo("eve/01-logit-lens/logit_lens.ipynb").file_size == 1000
    report = collect([path], submitted=tmp_path / "submitted")
    [refused] = report.refused
    assert refused.reason.startswith("cannot be read") and not (tmp_path / "submitted").exists()


def test_the_bounded_read_stops_at_the_limit_whatever_the_stream_holds():
    class Endless(io.RawIOBase):
        given = 0

        def read(self, n=-1):
            self.given += n
            return bytes(n)

    stream = Endless()
    limits = reading.ReadLimits(declared=10 * MB, compressed=None, total_left=100 * MB)
    with pytest.raises(reading.TooBig, match="more than the 10 MB its header declares"):
        reading.copy_bounded(stream, io.BytesIO(), limits)
    assert stream.given <= 10 * MB + reading.CHUNK
    limits = reading.ReadLimits(declared=10**12, compressed=None, total_left=10**12)
    with pytest.raises(reading.TooBig, match="expands past 50 MB"):
        reading.copy_bounded(Endless(), io.BytesIO(), limits)
    limits = reading.ReadLimits(declared=10 * MB, compressed=20_000, total_left=10**12)
    with pytest.raises(reading.TooBig, match="more than 100 times its compressed size .read stopped"):
        reading.copy_bounded(stream := Endless(), io.BytesIO(), limits)
    assert stream.given <= 100 * 20_000 + 2 * reading.CHUNK  # stopped near 2 MB, not at the declared 10 MB
    limits = reading.ReadLimits(declared=10 * MB, compressed=None, total_left=3 * MB)
    with pytest.raises(reading.TooBig, match="past 2.0 GB of notebooks in all"):
        reading.copy_bounded(Endless(), io.BytesIO(), limits)


def test_a_file_that_gained_a_hard_link_is_not_opened(tmp_path):
    lone = tmp_path / "lone.ipynb"
    lone.write_bytes(b"{}")
    with archives.open_regular(lone) as f:
        assert f.read() == b"{}"
    os.link(lone, tmp_path / "twin.ipynb")
    with pytest.raises(OSError, match="other than a regular file"):
        archives.open_regular(lone)
    (tmp_path / "link.ipynb").symlink_to(tmp_path / "twin.ipynb")
    with pytest.raises(OSError):  # ELOOP: O_NOFOLLOW
        archives.open_regular(tmp_path / "link.ipynb")


def test_the_runs_total_is_capped(tmp_path, monkeypatch):
    ada, ben = honest_zip(tmp_path, "ada"), honest_zip(tmp_path, "ben")
    monkeypatch.setattr(reading, "MAX_TOTAL_BYTES", RELEASED_01.stat().st_size * 3 // 2)
    report = collect([ada, ben], submitted=tmp_path / "submitted")
    assert [c.student for c in report.collected] == ["ada"]
    [refused] = report.refused
    assert refused.archive == ben and refused.reason.startswith("takes this run past")
    assert "read stopped" not in refused.reason  # decided from the header, before reading
    assert sorted(tree(tmp_path / "submitted")) == ["ada/01-logit-lens/logit_lens.ipynb", "collected.csv"]


def test_an_absolute_path_and_control_characters_are_refused_on_one_line_each(tmp_path):
    zips = [
        crafted(tmp_path / "abs.zip", {"/tmp/ada/01-logit-lens/logit_lens.ipynb": RELEASED_01.read_bytes()}),
        crafted(tmp_path / "ctl.zip", {"ada/01-logit-lens/x\nrefused fake.ipynb": RELEASED_01.read_bytes()}),
        crafted(tmp_path / "win.zip", {"C:\\ada\\01-logit-lens\\logit_lens.ipynb": RELEASED_01.read_bytes()}),
        crafted(tmp_path / "back.zip", {"ada\\..\\..\\logit_lens.ipynb": RELEASED_01.read_bytes()}),
    ]
    proc = run_collect(tmp_path, *(z.name for z in zips), "--submitted", tmp_path / "submitted")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert len(lines) == 5 and lines[-1].startswith("collected 0 notebooks"), proc.stdout
    assert "abs.zip: /tmp/ada/01-logit-lens/logit_lens.ipynb: is an absolute path" in lines[0]
    assert lines[1] == "refused ctl.zip: ada/01-logit-lens/x\\nrefused fake.ipynb: has control characters in its name"
    assert "win.zip" in lines[2] and lines[2].endswith("is an absolute path")
    assert "back.zip" in lines[3] and lines[3].endswith("has a '..' component")
    assert not (tmp_path / "submitted").exists()


def test_files_that_are_not_the_courses_notebooks_are_refused(tmp_path):
    zips = [
        crafted(tmp_path / "submission-ada.zip", {"ada/01-logit-lens/logit_lens.py": b"print('hi')"}),
        crafted(tmp_path / "submission-ben.zip", {"ben/01-logit-lens/logit_lens.ipynb": b"not json at all"}),
        crafted(tmp_path / "submission-cy.zip", {"cy/01-logit-lens/logit_lens.ipynb": b'{"a": 1}'}),
        crafted(
            tmp_path / "submission-dee.zip",
            {"dee/01-logit-lens/logit_lens.ipynb": nbformat.writes(nbformat.v4.new_notebook()).encode()},
        ),
        crafted(tmp_path / "submission-eve.zip", {"eve/01-logit-lens/logit_lens.ipynb": RELEASED_02.read_bytes()}),
        crafted(tmp_path / "submission-fay.zip", {"fay/99-nope/logit_lens.ipynb": RELEASED_01.read_bytes()}),
        crafted(tmp_path / "submission-gus.zip", {"gus/01-logit-lens/inner.zip": b"PK"}),
    ]
    proc = run_collect(tmp_path, *(z.name for z in zips), "--submitted", tmp_path / "submitted")
    assert proc.returncode == 1
    reasons = {line.split(": ")[0].removeprefix("refused "): line for line in refusals(proc.stdout)}
    assert len(reasons) == len(zips) == len(refusals(proc.stdout)), proc.stdout
    assert reasons["submission-ada.zip"].endswith("is not a notebook (not .ipynb)")
    assert "is not valid JSON" in reasons["submission-ben.zip"]
    assert "is JSON but not a notebook" in reasons["submission-cy.zip"]
    assert "not one of the course's notebooks" in reasons["submission-dee.zip"]
    assert "is a copy of 02-reading-the-grid/reading_the_grid.ipynb" in reasons["submission-eve.zip"]
    assert "'99-nope', which is not one of the course's" in reasons["submission-fay.zip"]
    assert "zip inside an archive" in reasons["submission-gus.zip"]
    assert not (tmp_path / "submitted").exists()


def test_student_names_that_are_not_safe_folder_names_are_refused(tmp_path):
    names = ["bad name!", "-dash", "a" * 65, "collected.csv"]
    zips = [
        crafted(tmp_path / f"z{i}.zip", {f"{name}/01-logit-lens/logit_lens.ipynb": RELEASED_01.read_bytes()})
        for i, name in enumerate(names)
    ]
    report = collect(zips, submitted=tmp_path / "submitted")
    assert len(report.refused) == 4 and all("student" in r.reason for r in report.refused), report.refused
    assert not report.collected and not (tmp_path / "submitted").exists()


def test_two_zips_for_one_student_and_assignment_are_both_refused(tmp_path):
    first = honest_zip(tmp_path, "ada")
    again = tmp_path / "ada-again.zip"
    submit(edited_notebook(tmp_path, "my second try"), "ada", again)
    honest_zip(tmp_path, "ben")
    proc = run_collect(tmp_path, first.name, again.name, "submission-ben.zip", "--submitted", tmp_path / "submitted")
    assert proc.returncode == 1
    lines = refusals(proc.stdout)
    assert len(lines) == 2, proc.stdout
    assert lines[0].startswith("refused submission-ada.zip: ada/01-logit-lens/logit_lens.ipynb: ada/01-logit-lens is")
    assert lines[1].startswith("refused ada-again.zip: ada/01-logit-lens/logit_lens.ipynb: ada/01-logit-lens is")
    assert all("handed in 2 times" in line and "none collected" in line for line in lines)
    assert sorted(tree(tmp_path / "submitted")) == ["ben/01-logit-lens/logit_lens.ipynb", "collected.csv"]


def test_two_files_for_one_student_in_one_lms_download_are_both_refused(tmp_path):
    canvas = crafted(
        tmp_path / "submissions.zip",
        {
            "doejane_4242_900_logit_lens.ipynb": RELEASED_01.read_bytes(),
            "doejane_4242_901_logit_lens-1.ipynb": RELEASED_01.read_bytes(),
        },
    )
    report = collect([canvas], assignment=A01, submitted=tmp_path / "submitted")
    assert len(report.refused) == 2 and not report.collected
    assert all("doejane/01-logit-lens is handed in 2 times" in r.reason for r in report.refused)


def test_a_zip_holding_several_students_work_is_refused(tmp_path):
    zip_ = crafted(
        tmp_path / "submission-eve.zip",
        {
            "eve/01-logit-lens/logit_lens.ipynb": RELEASED_01.read_bytes(),
            "ada/01-logit-lens/logit_lens.ipynb": RELEASED_01.read_bytes(),  # eve hands in "for" ada
        },
    )
    report = collect([zip_], submitted=tmp_path / "submitted")
    assert len(report.refused) == 2 and all("several students (ada, eve)" in r.reason for r in report.refused)
    assert not (tmp_path / "submitted").exists()


# --- the destination -------------------------------------------------------------------------------------------------


def test_an_existing_submission_is_refused_without_force_and_replaced_with_it(tmp_path, monkeypatch, capsys):
    submitted = tmp_path / "submitted"
    first = honest_zip(tmp_path, "ada")
    proc = run_collect(tmp_path, first.name, "--submitted", "submitted")
    assert proc.returncode == 0 and proc.stdout.startswith("collected ada/01-logit-lens/logit_lens.ipynb from")
    target = submitted / "ada" / "01-logit-lens" / "logit_lens.ipynb"
    assert target.read_bytes() == RELEASED_01.read_bytes()

    monkeypatch.chdir(tmp_path)  # the next two runs in this process, the same command line
    assert main(["collect", first.name, "--submitted", "submitted"]) == 0  # the same bytes again: quiet
    assert capsys.readouterr().out.startswith("unchanged ada/01-logit-lens/logit_lens.ipynb")

    first.unlink()
    second = edited_notebook(tmp_path, "later work")
    honest_zip(tmp_path, "ada", second)
    assert main(["collect", first.name, "--submitted", "submitted"]) == 1
    assert refusals(capsys.readouterr().out) == [
        "refused submission-ada.zip: ada/01-logit-lens/logit_lens.ipynb: submitted/ada/01-logit-lens/ already "
        "holds logit_lens.ipynb: not replaced (give --force to replace it)"
    ]
    assert target.read_bytes() == RELEASED_01.read_bytes()

    proc = run_collect(tmp_path, first.name, "--submitted", "submitted", "--force")
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.startswith("collected ada/01-logit-lens/logit_lens.ipynb from submission-ada.zip")
    assert "(replaced)" in proc.stdout.splitlines()[0]
    assert target.read_bytes() == second.read_bytes()
    assert sorted(tree(submitted)) == ["ada/01-logit-lens/logit_lens.ipynb", "collected.csv"]  # no temp file left
    rows = manifest(submitted)  # the first collection and the replacement (nothing for "unchanged")
    assert [row["sha256"] for row in rows] == [
        hashlib.sha256(p.read_bytes()).hexdigest() for p in (RELEASED_01, second)
    ]


@pytest.mark.parametrize("link", ["ada", "ada/01-logit-lens", "ada/01-logit-lens/logit_lens.ipynb"])
def test_a_symlinked_destination_is_refused_and_nothing_is_written_through_it(tmp_path, link):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("instructor's file")
    submitted = tmp_path / "submitted"
    (submitted / link).parent.mkdir(parents=True, exist_ok=True)
    (submitted / link).symlink_to(elsewhere / "keep.txt" if link.endswith(".ipynb") else elsewhere)
    before = tree(elsewhere)
    zip_ = honest_zip(tmp_path, "ada")
    proc = run_collect(tmp_path, zip_.name, "--submitted", "submitted", "--force")
    assert proc.returncode == 1
    [line] = refusals(proc.stdout)
    assert line.startswith(f"refused submission-ada.zip: ada/01-logit-lens/logit_lens.ipynb: submitted/{link} is a")
    assert "symlink" in line
    assert tree(elsewhere) == before
    assert (submitted / link).is_symlink() and not (submitted / "collected.csv").exists()


def test_a_symlink_swapped_in_after_the_check_is_still_not_followed(tmp_path, monkeypatch):
    elsewhere, submitted = tmp_path / "elsewhere", tmp_path / "submitted"
    elsewhere.mkdir()
    submitted.mkdir()
    (submitted / "ada").symlink_to(elsewhere)
    real_stat = os.stat

    def stale_stat(path, *args, **kwargs):  # what the check saw just before the swap: a plain folder
        return real_stat(elsewhere) if path == "ada" else real_stat(path, *args, **kwargs)

    fd = os.open(submitted, os.O_RDONLY | os.O_DIRECTORY)
    try:
        monkeypatch.setattr(os, "stat", stale_stat)
        with pytest.raises(writing.Unsafe, match="is a symlink or not a folder: nothing written through it"):
            writing.open_folder(fd, "ada", "submitted/ada")
    finally:
        monkeypatch.undo()
        os.close(fd)
    assert list(elsewhere.iterdir()) == []


# --- LMS downloads ---------------------------------------------------------------------------------------------------


def test_a_moodle_download_is_collected_under_names_from_the_participants(tmp_path):
    moodle = crafted(
        tmp_path / "LENS-101-Assignment 1-12345.zip",
        {
            "Jane Doe_101_assignsubmission_file_/logit_lens.ipynb": RELEASED_01.read_bytes(),
            "Jane Doe_102_assignsubmission_file_logit_lens (1).ipynb": RELEASED_01.read_bytes(),  # flat, same name
            "Zoë O'Brien_103_assignsubmission_file_/my copy.ipynb": RELEASED_01.read_bytes(),
            "Иван Петров_104_assignsubmission_file_/logit_lens.ipynb": RELEASED_01.read_bytes(),
            "Bob Smith_105_assignsubmission_file_/notes.pdf": b"%PDF-1.4",
            # the learner names their file like someone else's hand-in: Moodle's own prefix comes first and wins
            "Mal Lory_106_assignsubmission_file_Jane Doe_101_assignsubmission_file_x.ipynb": RELEASED_01.read_bytes(),
        },
    )
    submitted = tmp_path / "submitted"
    proc = run_collect(tmp_path, moodle.name, "--submitted", submitted)  # no --assignment: bad input
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and "--assignment" in proc.stderr
    assert not submitted.exists()

    proc = run_collect(tmp_path, moodle.name, "--assignment", A01, "--submitted", submitted)
    assert proc.returncode == 1
    assert refusals(proc.stdout) == [
        f"refused {moodle.name}: Bob Smith_105_assignsubmission_file_/notes.pdf: is not a notebook (not .ipynb)"
    ]
    assert sorted(tree(submitted)) == [
        "collected.csv",
        "jane-doe-101/01-logit-lens/logit_lens.ipynb",
        "jane-doe-102/01-logit-lens/logit_lens.ipynb",
        "mal-lory/01-logit-lens/logit_lens.ipynb",
        "moodle-104/01-logit-lens/logit_lens.ipynb",
        "zoe-o-brien/01-logit-lens/logit_lens.ipynb",
    ]
    assert "collected zoe-o-brien/01-logit-lens/logit_lens.ipynb from" in proc.stdout
    assert "(Moodle participant 103, Zoë O'Brien)" in proc.stdout
    rows = {row["student"]: row for row in manifest(submitted)}
    assert (rows["moodle-104"]["lms"], rows["moodle-104"]["lms_id"], rows["moodle-104"]["lms_name"]) == (
        "moodle",
        "104",
        "Иван Петров",
    )
    assert rows["zoe-o-brien"]["member"] == "Zoë O'Brien_103_assignsubmission_file_/my copy.ipynb"
    assert rows["zoe-o-brien"]["archive"] == str(moodle)
    assert rows["mal-lory"]["lms_id"] == "106"


def test_a_canvas_download_is_collected_with_its_late_marker(tmp_path):
    canvas = crafted(
        tmp_path / "submissions.zip",
        {
            "doejane_LATE_4242_98765_logit_lens-1.ipynb": RELEASED_01.read_bytes(),
            "smithbob_4243_98766_logit_lens.ipynb": RELEASED_01.read_bytes(),
            "LATE_anon_Xy3Zq_98767_logit_lens.ipynb": RELEASED_01.read_bytes(),
            "leeann_4244_98768_reading_the_grid.ipynb": RELEASED_02.read_bytes(),  # the wrong assignment's notebook
        },
    )
    submitted = tmp_path / "submitted"
    proc = run_collect(tmp_path, canvas.name, "--assignment", A01, "--submitted", submitted)
    assert proc.returncode == 1
    [line] = refusals(proc.stdout)
    assert line.startswith("refused submissions.zip: leeann_4244_98768_reading_the_grid.ipynb: is a copy of 02-")
    assert sorted(tree(submitted)) == [
        "anon-Xy3Zq/01-logit-lens/logit_lens.ipynb",
        "collected.csv",
        "doejane/01-logit-lens/logit_lens.ipynb",
        "smithbob/01-logit-lens/logit_lens.ipynb",
    ]
    assert "(Canvas user 4242, doejane, LATE)" in proc.stdout
    rows = {row["student"]: row for row in manifest(submitted)}
    assert (rows["doejane"]["lms"], rows["doejane"]["lms_id"], rows["doejane"]["late"]) == ("canvas", "4242", "yes")
    assert (rows["smithbob"]["lms_id"], rows["smithbob"]["late"]) == ("4243", "")
    assert (rows["anon-Xy3Zq"]["lms_id"], rows["anon-Xy3Zq"]["late"]) == ("anon_Xy3Zq", "yes")


def test_manifest_cells_are_not_spreadsheet_formulas(tmp_path):
    moodle = crafted(
        tmp_path / "moodle.zip", {"=HYPERLINK(1)_107_assignsubmission_file_/logit_lens.ipynb": RELEASED_01.read_bytes()}
    )
    report = collect([moodle], assignment=A01, submitted=tmp_path / "submitted")
    assert [c.student for c in report.collected] == ["hyperlink-1"]
    [row] = manifest(tmp_path / "submitted")
    assert row["lms_name"] == "'=HYPERLINK(1)" and row["member"].startswith("'=HYPERLINK(1)_107_")


def test_lms_names_become_folder_names():
    assert slug("Zoë O'Brien") == "zoe-o-brien" and slug("doejane") == "doejane" and slug("Иван") == ""
    assert slug("Group A-Jane  Doe") == "group-a-jane-doe" and len(slug("x" * 100)) == 48
    identities = {
        LmsIdentity("moodle", "1", "Jane Doe"),
        LmsIdentity("moodle", "2", "Jane  Doe"),  # another person, the same slug
        LmsIdentity("moodle", "3", "Ada Lovelace"),
        LmsIdentity("moodle", "4", "李雷"),
        LmsIdentity("canvas", "anon_Ab3De", ""),
    }
    assert lms_folders(identities) == {
        ("moodle", "1"): "jane-doe-1",
        ("moodle", "2"): "jane-doe-2",
        ("moodle", "3"): "ada-lovelace",
        ("moodle", "4"): "moodle-4",
        ("canvas", "anon_Ab3De"): "anon-Ab3De",
    }


# --- folders, assignments, bad input ---------------------------------------------------------------------------------


def test_a_folder_of_zips_and_files_is_collected_and_its_links_refused(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    honest_zip(inbox, "ada")
    shutil.copy(RELEASED_01, inbox / "doejane_4242_98765_logit_lens.ipynb")  # from an extracted Canvas download
    (inbox / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (inbox / "__MACOSX").mkdir()
    (inbox / "__MACOSX" / "._submission-ada.zip").write_bytes(b"junk")
    (inbox / "ben" / A01).mkdir(parents=True)
    (inbox / "ben" / A01 / "logit_lens.ipynb").symlink_to(SOLUTION_01)
    (inbox / "cy" / A01).mkdir(parents=True)
    os.link(inbox / "doejane_4242_98765_logit_lens.ipynb", inbox / "cy" / A01 / "logit_lens.ipynb")
    (inbox / "dee").symlink_to(ROOT / "solutions")
    proc = run_collect(tmp_path, "inbox", "--assignment", A01, "--submitted", tmp_path / "submitted")
    assert proc.returncode == 1
    lines = refusals(proc.stdout)
    assert len(lines) == 4, proc.stdout  # the hard link's two names, the symlinked notebook and the symlinked folder
    assert "refused inbox: ben/01-logit-lens/logit_lens.ipynb: is a symbolic link" in proc.stdout
    assert "refused inbox: dee: is a symbolic link" in proc.stdout
    assert "refused inbox: cy/01-logit-lens/logit_lens.ipynb: is a hard link" in proc.stdout
    assert "refused inbox: doejane_4242_98765_logit_lens.ipynb: is a hard link" in proc.stdout
    assert "ignored 2 hidden or system files" in proc.stdout.splitlines()[-1]
    assert sorted(tree(tmp_path / "submitted")) == ["ada/01-logit-lens/logit_lens.ipynb", "collected.csv"]
    (inbox / "cy" / A01 / "logit_lens.ipynb").unlink()
    report = collect([inbox], assignment=A01, submitted=tmp_path / "submitted")
    assert [c.student for c in report.collected] == ["doejane"] and [u.student for u in report.unchanged] == ["ada"]


def test_other_assignments_notebooks_are_left_out_with_assignment(tmp_path):
    zip_ = honest_zip(tmp_path, "ada", RELEASED_01, RELEASED_03)
    proc = run_collect(tmp_path, zip_.name, "--assignment", A01, "--submitted", tmp_path / "submitted")
    assert proc.returncode == 0, proc.stdout
    assert "left out 1 notebook of other assignments" in proc.stdout.splitlines()[-1]
    assert sorted(tree(tmp_path / "submitted")) == ["ada/01-logit-lens/logit_lens.ipynb", "collected.csv"]
    proc = run_collect(tmp_path, zip_.name, "--submitted", tmp_path / "all")
    assert proc.returncode == 0 and "next: lensref grade 01-logit-lens, lensref grade 03-variants" in proc.stdout
    assert sorted(tree(tmp_path / "all")) == [
        "ada/01-logit-lens/logit_lens.ipynb",
        "ada/03-variants/variants.ipynb",
        "collected.csv",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submission-ada.zip", "missing.zip"], "missing.zip: no such archive, notebook or folder"),
        (["submission-ada.zip", "garbage.zip"], "garbage.zip: not a readable zip file"),
        (["submission-ada.zip", "notes.txt"], "notes.txt: not a .zip, an .ipynb or a folder"),
        (["submission-ada.zip", "--assignment", "99-nope"], "--assignment '99-nope': not one of the course's"),
        (["empty"], "found no notebook to collect in empty"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_status_2(tmp_path, args, message):
    """Nothing is written, not even the good zip beside the bad input."""
    honest_zip(tmp_path, "ada")
    (tmp_path / "garbage.zip").write_bytes(b"this is not a zip file")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    proc = run_collect(tmp_path, *args, "--submitted", tmp_path / "submitted")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == "" and proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"error: {message}")
    assert not (tmp_path / "submitted").exists()


def test_submit_tells_the_learner_the_instructor_collects_the_zip(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["submit", str(RELEASED_01), "--student", "ada"]) == 0
    out = capsys.readouterr().out
    assert "lensref collect submission-ada.zip" in out and "unzip" not in out

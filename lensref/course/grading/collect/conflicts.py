"""The run's hand-ins taken together: LMS learners named, and the hand-ins that cannot all be right refused.

- Two hand-ins (two archives, or two files) for one student and assignment in one run: none of them is collected
  (collect the right one alone).
- A ``lensref submit`` zip naming several students: one zip holds one learner's work, so it is refused as a whole.
- An LMS identity whose folder name would not be safe (an id too long for 64 characters).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

from .lms import lms_folders
from .placing import Candidate, student_problem
from .text import shown


def name_students(candidates: list[Candidate]) -> list[Candidate]:
    """The candidates, those from LMS downloads with their student folder set."""
    identities = {c.placement.identity for c in candidates if c.placement.identity is not None}
    folders = lms_folders(identities)
    named = []
    for c in candidates:
        identity = c.placement.identity
        named.append(c if identity is None else replace(c, student=folders[identity.lms, identity.lms_id]))
    return named


def conflicts(candidates: list[Candidate]) -> dict[int, str]:
    """Candidates (by index) that must not be collected, and why (the last reason found for one wins)."""
    return {**_handed_in_twice(candidates), **_several_students(candidates), **_unsafe_folders(candidates)}


def _unsafe_folders(candidates: list[Candidate]) -> dict[int, str]:
    """Candidates (by index) whose LMS identity gave no safe folder name (an id too long for 64 characters)."""
    out = {}
    for i, c in enumerate(candidates):
        if c.placement.identity is not None and (problem := student_problem(c.student)):
            out[i] = problem
    return out


def _several_students(candidates: list[Candidate]) -> dict[int, str]:
    """Candidates (by index) from ``lensref submit`` zips that name more than one student: one zip per learner."""
    students: dict[Path, set[str]] = defaultdict(set)
    for c in candidates:
        if c.from_zip and c.placement.layout == "submit":
            students[c.archive].add(c.student)
    out = {}
    for i, c in enumerate(candidates):
        if c.from_zip and c.placement.layout == "submit" and len(students[c.archive]) > 1:
            names = ", ".join(sorted(students[c.archive]))
            out[i] = f"this zip holds work of several students ({names}): one zip per learner, none collected"
    return out


def _handed_in_twice(candidates: list[Candidate]) -> dict[int, str]:
    """Candidates (by index) of a student and assignment handed in by two archives (or two files) in this run."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, c in enumerate(candidates):
        groups[c.key].append(i)
    out = {}
    for (student, assignment), indices in groups.items():
        group = [candidates[i] for i in indices]
        containers = {c.container for c in group}
        notebooks = Counter(c.course_notebook.notebook for c in group)
        if len(containers) == 1 and max(notebooks.values()) == 1:
            continue
        for i in indices:
            others = [f"{shown(str(o.archive))}: {shown(o.member)}" for o in group if o is not candidates[i]]
            out[i] = (
                f"{student}/{assignment} is handed in {len(group)} times in this run (also {'; '.join(others)}): "
                f"none collected; collect the right one alone"
            )
    return out

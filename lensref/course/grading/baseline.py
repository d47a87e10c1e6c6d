"""``--baseline``: a submission's notebooks run as the learner would run them (visible checks, no probes, no
judge), in the same sandbox, so that grading time can be compared with it."""

from __future__ import annotations

import time
from pathlib import Path

from . import layout
from .jobs import Job, execute
from .submissions import read_no_follow
from .task import GradingSetup


def run_alone(setup: GradingSetup, notebooks: dict[str, Path]) -> float:
    """Seconds to run ``notebooks`` plainly, one cold sandbox, no restarts."""
    files = layout.job_files(
        setup.spec(max_restarts=0), {name: read_no_follow(path) for name, path in notebooks.items()}
    )
    start = time.time()
    execute(Job("baseline", files, setup.limits, setup.wall_s, setup.sandboxed))
    return time.time() - start

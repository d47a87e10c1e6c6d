"""What a pool slot or a Dask worker does with one submission: run it in a sandbox, then judge it, both here.

:func:`grade_task` is the unit of work. The run happens in a sandbox (:mod:`.jobs`); the judgment in this
thread's judge process (:mod:`.judge_process`), which starts on the references while the sandbox runs. Only a
:class:`~.task.Graded` goes back to the instructor's machine, which records it.
"""

from __future__ import annotations

from . import judge_process
from .jobs import execute, execute_warm
from .task import Graded, GradingTask


def grade_task(task: GradingTask, warm: bool = True) -> Graded:
    """Run ``task`` (in this thread's warm sandbox, or a cold one) and judge it in this thread's judge process."""
    judge_process.for_this_thread().warm(task.judge)
    run = execute_warm(task.job) if warm else execute(task.job)
    return judge_process.judge(task.judge, run)

"""Trusted grading of a class (``lensref collect``, ``lensref grade``): learner code runs only in a sandbox, and
each verdict is computed outside it, in a judge process of its own.

On the instructor's machine:

- :mod:`.collect`: learners' zips and LMS downloads into ``submitted/``, never extracting, refusing links and bombs
- :mod:`.grader`: the class run (``grade()``): triage, the pool kept busy, results recorded in student order
- :mod:`.submissions`: finding a student's notebooks (links refused); the notebook the sandbox runs
- :mod:`.plan`, :mod:`.cases`: what each test cell checks, read from the instructor's notebooks; the seeded cases
- :mod:`.task`: the contract with the workers: a ``GradingTask`` goes out, a ``Graded`` comes back
- :mod:`.dispatch`: where tasks go: local sandboxes (``--jobs``) or a Dask cluster (``--scheduler``)
- :mod:`.record`, :mod:`.gradebook`, :mod:`.report`: writing what came back: nbgrader's gradebook, the pages, the CSV
- :mod:`.lock`, :mod:`.baseline`, :mod:`.status`: one grader per folder; ``--baseline``; how each submission ended

Where a task runs (a local pool slot, or a Dask worker):

- :mod:`.worker`: one task: run it in a sandbox, then judge it, both there
- :mod:`.jobs`: a run as data in, data out; warm sandboxes started ahead of their job
- :mod:`.sandbox`, :mod:`.limits`: bubblewrap, memory, process and disk limits, killing the whole tree
- :mod:`.bwrap`: the sandbox's bwrap command line: what a run may read, its tmpfs home, its environment
- :mod:`.launch`: starting a run, its files handed in while a launcher waits (or in a host folder: --no-sandbox)
- :mod:`.home`: a run's home through directory descriptors: the job's files in, its results read back, capped
- :mod:`.started`: a run in progress and how it ends: the whole tree killed, then its results read back
- :mod:`.processes`: the processes the grader starts: dying with it, registered, all killed on Ctrl-C
- :mod:`.output_tail`: the last characters of a run's output, kept in memory
- :mod:`.layout`: the sandbox's files, described once
- :mod:`.runner`, :mod:`.probe`: inside the sandbox: run the cells, record the learner's answers as data
- :mod:`.wire`: the data format that crosses the wall (JSON + safetensors, never pickle)
- :mod:`.judge_process`: judge processes, one per pool thread, each holding its own models, one judgment at a time
- :mod:`.judging`, :mod:`.judge`, :mod:`.static`, :mod:`.feedback`: the verdict of a run, of a cell, the reading
  of the learner's code for calls of the reference, the escaped feedback page

This package imports nothing heavy at import time: the runner inside the sandbox imports it too.
"""

"""Trusted grading of a class (``lensref grade``): learner code runs only in a sandbox, verdicts are computed outside.

- :mod:`.grader`: the class run (``grade()``), the CSV
- :mod:`.plan`: what each test cell checks, read from the instructor's source notebooks
- :mod:`.submissions`: finding and checking notebooks; the notebook the sandbox runs
- :mod:`.sandbox`, :mod:`.limits`: bubblewrap, memory and process limits, killing the whole tree
- :mod:`.bwrap`: the sandbox's bwrap command line: what a run may read, its tmpfs home, its environment
- :mod:`.launch`: starting a run, its files handed in while a launcher waits (or in a host folder: --no-sandbox)
- :mod:`.home`: a run's home through directory descriptors: the job's files in, its results read back, capped
- :mod:`.started`: a run in progress and how it ends: the whole tree killed, then its results read back
- :mod:`.processes`: the processes the grader starts: dying with it, registered, all killed on Ctrl-C
- :mod:`.output_tail`: the last characters of a run's output, kept in memory
- :mod:`.runner`, :mod:`.probe`: inside the sandbox: run the cells, record the learner's answers as data
- :mod:`.wire`: the data format that crosses the wall (JSON + safetensors, never pickle)
- :mod:`.judge`, :mod:`.static`: the verdict, and reading the code for calls of the reference
- :mod:`.gradebook`, :mod:`.feedback`: nbgrader's gradebook, escaped feedback pages

This package imports nothing heavy at import time: the runner inside the sandbox imports it too.
"""

"""The course wing: everything that teaches and grades, beside the lens library (which never imports it).

- :mod:`.checks`: the instant one-line checks of the exercise notebooks, one module per assignment
- :mod:`.quiz`: the end-of-lesson quiz (bank, scoring, class grading, exports, the online page)
- :mod:`.autograde`: ``lensref grade``, grading a class into nbgrader's gradebook
- :mod:`.examples`: the prompts the lesson, the notebooks and the tests share
"""

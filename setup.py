"""The wheel carries the released exercise notebooks and the quiz bank, so that `pip install` then `lensref lab`
(and `lensref quiz take`) need no course folder.

pyproject.toml holds every setting; this file only adds a build step: after the usual build_py, the released
notebooks (exercises/<assignment>/*.ipynb, nbgrader's release of solutions/) are copied into the build as
lensref/course/notebooks/<assignment>/<notebook>.ipynb, and the quiz bank (quizzes/*.yaml) as
lensref/course/quiz/banks/*.yaml. Nothing is copied in the source tree, so exercises/ and quizzes/ stay their one
copy; an editable install (`pip install -e .`, the course folder's .venv) reads them where they are.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# (folder of the course, the files taken from it, where they go in the build): lensref.course.release.PACKAGED
# and lensref.course.quiz.bank.PACKAGED_BANK read them there
PACKAGE_DATA = (
    ("exercises", "*/*.ipynb", ("lensref", "course", "notebooks")),
    ("quizzes", "*.yaml", ("lensref", "course", "quiz", "banks")),
)


class BuildWithCourseData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for folder, pattern, packaged in PACKAGE_DATA:
            files = sorted((HERE / folder).glob(pattern))
            if not files:
                raise SystemExit(f"{HERE / folder}: no {pattern} files to put in the wheel")
            for source in files:
                inner = source.relative_to(HERE / folder)
                target = Path(self.build_lib, *packaged, inner)
                self.mkpath(str(target.parent))
                self.copy_file(str(source), str(target), preserve_mode=False)


setup(cmdclass={"build_py": BuildWithCourseData})

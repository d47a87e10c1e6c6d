"""The wheel carries the released exercise notebooks, so that `pip install` then `lensref lab` needs no course folder.

pyproject.toml holds every setting; this file only adds a build step: after the usual build_py, the released
notebooks (exercises/<assignment>/*.ipynb, nbgrader's release of solutions/) are copied into the build as
lensref/course/notebooks/<assignment>/<notebook>.ipynb. Nothing is copied in the source tree, so exercises/ stays
their one copy; an editable install (`pip install -e .`, the course folder's .venv) reads exercises/ itself.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

RELEASE = Path(__file__).resolve().parent / "exercises"
PACKAGED = ("lensref", "course", "notebooks")  # lensref.course.release.PACKAGED, inside the build


class BuildWithNotebooks(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        notebooks = sorted(RELEASE.glob("*/*.ipynb"))
        if not notebooks:
            raise SystemExit(f"{RELEASE}: no released notebooks (exercises/<assignment>/*.ipynb) to put in the wheel")
        for source in notebooks:
            target = Path(self.build_lib, *PACKAGED, source.parent.name, source.name)
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target), preserve_mode=False)


setup(cmdclass={"build_py": BuildWithNotebooks})

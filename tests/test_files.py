"""lensref.files: a reader never sees half a file or half a folder."""

import json
import os

import pytest

from lensref import LensError
from lensref.files import new_folder, replacing, write_atomically, write_json


def test_write_json_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    write_json(path, {"token": "␣Paris", "p": 0.5})
    assert json.loads(path.read_text(encoding="utf-8")) == {"token": "␣Paris", "p": 0.5}
    assert "␣Paris" in path.read_text(encoding="utf-8")  # kept as text, not \u escapes
    assert os.listdir(tmp_path) == ["out.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "figure.png"
    path.write_bytes(b"old figure")
    with pytest.raises(KeyboardInterrupt), replacing(path) as tmp:
        tmp.write_bytes(b"half a fig")
        raise KeyboardInterrupt
    assert path.read_bytes() == b"old figure"
    assert os.listdir(tmp_path) == ["figure.png"]


def test_a_missing_folder_is_one_line(tmp_path):
    with pytest.raises(LensError, match=r"cannot write .*out.json: folder .*nowhere does not exist"):
        write_atomically(tmp_path / "nowhere" / "out.json", "x")


def test_new_folder_appears_whole_or_not_at_all(tmp_path):
    folder = tmp_path / "lens"
    with pytest.raises(RuntimeError), new_folder(folder) as tmp:
        (tmp / "weights").write_text("half")
        raise RuntimeError("crash")
    assert os.listdir(tmp_path) == []
    with new_folder(folder) as tmp:
        (tmp / "weights").write_text("complete")
    assert os.listdir(tmp_path) == ["lens"] and (folder / "weights").read_text() == "complete"


def test_new_folder_replaces_only_when_asked(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "who").write_text("first")
    with new_folder(folder) as tmp:  # another process finished first: its copy stays
        (tmp / "who").write_text("second")
    assert (folder / "who").read_text() == "first"
    with new_folder(folder, replace=True) as tmp:
        (tmp / "who").write_text("third")
    assert (folder / "who").read_text() == "third"
    assert os.listdir(tmp_path) == ["cache"]

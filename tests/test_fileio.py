"""squeezebert_paddle.fileio: atomic files and directories, the JSON encoder, cleanup after a kill."""
import json
from pathlib import Path

import numpy as np
import pytest

from squeezebert_paddle import fileio


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_atomic_write_json_encodes_numpy_and_paths(tmp_path):
    path = tmp_path / "out" / "result.json"
    fileio.atomic_write_json(path, {"accuracy": np.float32(0.5), "n": np.int64(3), "ids": np.arange(2),
                                    "where": tmp_path / "x"})
    assert json.loads(path.read_text()) == {"accuracy": 0.5, "n": 3, "ids": [0, 1], "where": str(tmp_path / "x")}
    assert path.read_text().endswith("}\n")
    # A failure mid-write leaves the previous file intact and no temp file behind.
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        fileio.atomic_write_json(path, {"first": [1] * 1000, "bad": object()})
    assert json.loads(path.read_text())["n"] == 3
    assert names(path.parent) == ["result.json"]


def test_atomic_write_replaces_a_planted_symlink_instead_of_following_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "args.json"
    target.symlink_to(victim)
    # A predictable temporary name, planted as a link too: the writer must not write through it.
    (tmp_path / ".args.json.tmp").symlink_to(victim)
    fileio.atomic_write_text(target, "new")
    assert victim.read_text() == "keep me"
    assert not target.is_symlink() and target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == fileio.FILE_MODE


def test_atomic_directory_replaces_whole_or_not_at_all(tmp_path):
    final = tmp_path / "best"
    fileio.atomic_directory(final, lambda d: (d / "a.txt").write_text("first"))
    assert names(final) == ["a.txt"] and final.stat().st_mode & 0o777 == fileio.DIR_MODE

    def dies_half_way(d: Path) -> None:
        (d / "b.txt").write_text("second")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_directory(final, dies_half_way)
    assert names(final) == ["a.txt"] and names(tmp_path) == ["best"]
    fileio.atomic_directory(final, lambda d: (d / "b.txt").write_text("second"))
    assert names(final) == ["b.txt"] and names(tmp_path) == ["best"]


def test_clean_interrupted_writes_restores_and_removes(tmp_path):
    # Killed between the two renames of a replacement: "final" is gone, its old copy is there.
    (tmp_path / ".old-final-k3x_9q2a").mkdir()
    (tmp_path / ".old-final-k3x_9q2a" / "model.txt").write_text("old")
    # Killed while filling checkpoint-4 and while writing a file; a complete checkpoint-2 whose
    # leftover old copy must go.
    (tmp_path / ".tmp-checkpoint-4-abc123").mkdir()
    (tmp_path / ".args.json.x1y2z3.tmp").write_text("{")
    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / ".old-checkpoint-2-999").mkdir()
    fileio.clean_interrupted_writes(tmp_path)
    assert names(tmp_path) == ["checkpoint-2", "final"]
    assert (tmp_path / "final" / "model.txt").read_text() == "old"


def test_json_text_refuses_unknown_objects():
    assert json.loads(fileio.json_text([np.float64(1.5), np.bool_(True), np.zeros((2, 1))])) == [
        1.5, True, [[0.0], [0.0]]]
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        fileio.json_text({"x": {1, 2}})



def test_remove_atomically_leaves_nothing_half_removed(tmp_path, monkeypatch):
    (tmp_path / "checkpoint-2").mkdir()
    (tmp_path / "checkpoint-2" / "model.txt").write_text("w")
    (tmp_path / "args.json").write_text("{}")
    fileio.remove_atomically(tmp_path / "args.json")
    # Killed after the rename, before the tree is gone: only a temporary the cleanup removes is left.
    monkeypatch.setattr(fileio.shutil, "rmtree", lambda path, ignore_errors=False: None)
    fileio.remove_atomically(tmp_path / "checkpoint-2")
    left = names(tmp_path)
    assert len(left) == 1 and left[0].startswith(".tmp-checkpoint-2-")
    monkeypatch.undo()
    fileio.clean_interrupted_writes(tmp_path)
    assert names(tmp_path) == []


def test_unwritable_reason_names_the_first_existing_ancestor(tmp_path):
    (tmp_path / "afile").write_text("x")
    assert fileio.unwritable_reason(tmp_path / "new" / "deeper") is None
    in_a_file = f"{tmp_path / 'afile'} is a file, not a directory"
    assert fileio.unwritable_reason(tmp_path / "afile" / "sub" / "x") == in_a_file
    assert fileio.unwritable_file_reason(tmp_path / "afile" / "r.json") == in_a_file
    assert fileio.unwritable_file_reason(tmp_path) == f"{tmp_path} is a directory"
    assert fileio.unwritable_file_reason(tmp_path / "new" / "r.json") is None
    assert not (tmp_path / "new").exists()                   # nothing created

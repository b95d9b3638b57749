"""neumat.fileio.staged_folder: a folder is replaced whole or not at all (finished finetunes,
generated videos)."""

from __future__ import annotations

import pytest

from neumat.fileio import staged_folder


def test01_a_finished_folder_replaces_the_old_one_whole(tmp_path):
    target = tmp_path / "runs" / "final"
    with staged_folder(target) as tmp:
        (tmp / "a.txt").write_text("one")
    with staged_folder(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".final.")
        assert (target / "a.txt").read_text() == "one"  # readers still see the old folder
        (tmp / "b.txt").write_text("two")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["final"]  # no temporary or .old left
    assert target.stat().st_mode & 0o777 == 0o755


def test02_a_failed_fill_leaves_the_old_folder_and_nothing_else(tmp_path):
    target = tmp_path / "video"
    with staged_folder(target) as tmp:
        (tmp / "frame_000.png").write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with staged_folder(target) as tmp:
            (tmp / "frame_000.png").write_bytes(b"new")
            raise RuntimeError("disk full")
    assert (target / "frame_000.png").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["video"]

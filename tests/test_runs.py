"""Run directories: atomic writes, status, and which runs count."""

from __future__ import annotations

import json

from hf_project import runs


def test_only_complete_runs_are_found(tmp_path):
    for model, status in (("a", "complete"), ("b", "running"), ("c", "failed")):
        run_dir = runs.new_run_dir(tmp_path, "data", model, 2023)
        runs.set_status(run_dir, status)
    (tmp_path / "data" / "d" / "no-status").mkdir(parents=True)
    assert [p.parent.name for p in runs.find_runs(tmp_path)] == ["a"]
    assert len(runs.find_runs(tmp_path, complete_only=False)) == 3


def test_new_run_dirs_never_collide(tmp_path):
    dirs = {runs.new_run_dir(tmp_path, "data", "m", 1) for _ in range(5)}
    assert len(dirs) == 5 and all(d.name.endswith("-s1") for d in dirs)


def test_atomic_writes_leave_no_temp_files(tmp_path):
    runs.write_json(tmp_path / "x.json", {"a": 1})
    runs.write_json(tmp_path / "x.json", {"a": 2})
    runs.write_csv(tmp_path / "x.csv", [{"k": 1, "v": "z"}])
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 2}
    assert (tmp_path / "x.csv").read_text().splitlines() == ["k,v", "1,z"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv", "x.json"]


def test_copy_dir_atomic_replaces_the_old_copy(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("new")
    dst = tmp_path / "out" / "dst"
    dst.mkdir(parents=True)
    (dst / "stale").write_text("old")
    runs.copy_dir_atomic(src, dst)
    assert sorted(p.name for p in dst.iterdir()) == ["f"]
    assert sorted(p.name for p in dst.parent.iterdir()) == ["dst"]

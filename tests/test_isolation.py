"""A run in a process of its own: results, one-line errors and a killed process come back to the caller."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from hf_project.errors import UserError
from hf_project.isolation import run_in_own_process

HERE = Path(__file__).resolve().parent


def threads_and_pid(x: int) -> dict:
    return {"x": x, "threads": torch.get_num_threads(), "pid": os.getpid()}


def user_error() -> dict:
    raise UserError("label column 'y' not found: pass --label_column")


def bug() -> dict:
    raise ValueError("a bug, not bad input")


def killed() -> dict:
    os.kill(os.getpid(), signal.SIGKILL)
    return {}


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(HERE))  # the child finds these functions by module name


def test_the_result_comes_back_from_another_process_with_the_callers_threads():
    out = run_in_own_process(threads_and_pid, 7)
    assert out["x"] == 7 and out["pid"] != os.getpid() and out["threads"] == torch.get_num_threads()


def test_errors_come_back_as_they_were():
    with pytest.raises(UserError, match=r"^label column 'y' not found: pass --label_column$"):
        run_in_own_process(user_error)
    with pytest.raises(RuntimeError, match="ValueError: a bug, not bad input"):
        run_in_own_process(bug)


def test_a_killed_process_is_a_one_line_error_that_says_so():
    with pytest.raises(UserError, match="killed .SIGKILL: most often the system running out of memory.") as err:
        run_in_own_process(killed)
    assert "\n" not in str(err.value) and "--resume last" in str(err.value)

"""A small subset of benchmarks/faults.py's rows (issue 33), so the table in docs/reliability.md cannot rot:
each row runs the real CLI in a subprocess on tiny random models and must be handled (no traceback, no
silent success on garbage)."""

import importlib.util
import sys
from pathlib import Path

import pytest

from regionedit.world.tiny import save_tiny_models

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("faults", ROOT / "benchmarks" / "faults.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["faults"] = mod  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


faults = _load()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_models(tmp_path_factory.mktemp("tiny"), region_bias=3.0)


def _check(r):
    assert r.handled, r.row()
    assert "|" in r.row() and r.outcome != "traceback"


@pytest.mark.parametrize("kind", ["truncated PNG", "RGBA PNG"])
def test_file_rows(tiny, tmp_path, kind):
    r = faults.file_row(tiny, tmp_path, kind)
    _check(r)
    assert r.outcome == ("edited" if kind == "RGBA PNG" else "error")


def test_cli_value_row(tiny, tmp_path):
    r = faults.cli_row(tiny, tmp_path, "--steps -3")
    _check(r)
    assert r.outcome == "usage error" and "--steps" in r.message


def test_batch_rows(tiny, tmp_path):
    cases = ["malformed JSON", '`"seed": null`', "unwritable output", "valid job after the bad ones"]
    rs = faults.batch_rows(tiny, tmp_path, cases)
    for r in rs:
        _check(r)
    assert [r.outcome for r in rs] == ["error", "error", "error", "edited"]


def test_a_garbage_success_is_flagged(tmp_path):
    """The classifier itself: a traceback in stderr is never 'handled', whatever the exit code."""
    import subprocess

    proc = subprocess.CompletedProcess([], 0, stdout='{"status": "edited"}\n',
                                       stderr="Traceback (most recent call last):\n  ...\nValueError: boom\n")
    outcome, code, msg = faults.classify(proc)
    assert outcome == "traceback" and msg == "ValueError: boom"
    table = faults.table([faults.Result("file", "x", outcome, code, msg, False)])
    assert "NOT HANDLED" in table

"""Checks the seed-method trainer tests share (imported by tests/test_adaptedit.py and tests/test_fireedit.py)."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def check_trains_and_resumes(main, args: list[str], out: Path, batch: int = 2) -> None:
    """``regionedit train <method> ... --max-steps 2`` then ``--max-steps 3``: the second run resumes at step 2 (the
    log holds steps 1, 2, 3 once each), the checkpoint holds the data position, the export's record the steps."""
    assert main(args + ["--max-steps", "2"]) == 0
    assert main(args + ["--max-steps", "3"]) == 0  # resumes at step 2
    assert [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    state = torch.load(out / "state.pt", map_location="cpu", weights_only=True)
    assert state["step"] == 3 and json.loads(state["data_states"]) == [{"used": 3 * batch}]
    card = json.loads((out / "export" / "config.json").read_text())
    assert card["training"]["steps"] == 3 and card["training"]["samples_seen"] == 3 * batch

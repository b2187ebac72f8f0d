"""The offline grammar on the held-out realistic instructions (benchmarks/data/describe_heldout.jsonl: 194
instructions, 74 quoted from public edit datasets and demos, written and labelled blind to the grammar; first scored
at 5019c80: operation 0.948, target 0.928, content 0.861). Issue 29's bar: operation >= 0.90, target and content
>= 0.85. This is a regression bar: do not tune the grammar on this set's misses (tune on tests/data/describe_dev.jsonl
and write a fresh held-out set to measure)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_grammar_meets_the_bar_on_held_out_instructions():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "describe.py"), "--json"], capture_output=True,
                         text=True, cwd=ROOT, timeout=300, check=True).stdout
    figures = json.loads(out)
    assert figures["n"] >= 190 and figures["errors"] == 0
    assert figures["operation_accuracy"] >= 0.90, figures
    assert figures["target_accuracy"] >= 0.85, figures
    assert figures["content_accuracy"] >= 0.85, figures

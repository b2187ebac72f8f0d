"""Checkpoints never run code, and a training run never exports into the installed package (issue 33).

A crafted ``state.pt`` (a pickle whose object's ``__reduce__`` creates a marker file) is planted where the
trainers and the recipe read their checkpoints: every load is refused with an error naming the file, and the
marker is never created. Real checkpoints load safely and a resumed run continues the same data order.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from regionedit.models import bundled_dir
from regionedit.training.common import CheckpointError, Run, load_checkpoint, train_loop
from regionedit.world.training import recipe, world_models

ROOT = Path(__file__).resolve().parents[1]


class Payload:
    """Unpickling this runs ``exec``: it creates ``marker`` (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def plant(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"step": 7, "seconds": 1.0, "model": {}, "x": Payload(marker)}, path)
    return path


def test_the_payload_runs_code_when_loaded_unsafely(tmp_path):
    """The planted file is a real attack: an unrestricted unpickling creates the marker."""
    marker = tmp_path / "pwned"
    ckpt = plant(tmp_path / "state.pt", marker)
    torch.load(ckpt, map_location="cpu", weights_only=False)  # what the trainers did before issue 33
    assert marker.exists()


def test_run_load_refuses_a_planted_payload(tmp_path):
    marker = tmp_path / "pwned"
    run = Run(tmp_path / "clip")
    plant(run.state_path, marker)
    with pytest.raises(CheckpointError, match=re.escape(str(run.state_path)) + r".*refused.*delete it"):
        run.load()
    assert not marker.exists()


def test_training_resume_refuses_a_planted_payload(tmp_path):
    """train_loop resumes through Run.load: the run stops with the error, nothing trained, no code run."""
    marker = tmp_path / "pwned"
    run = Run(tmp_path / "run")
    plant(run.state_path, marker)
    model = torch.nn.Linear(2, 1)
    with pytest.raises(SystemExit, match=re.escape(str(run.state_path))):
        train_loop(run, model, torch.optim.SGD(model.parameters(), lr=0.1), lambda step, gen: {}, 1.0, 2, 0)
    assert not marker.exists()


def test_recipe_step_counter_refuses_a_planted_payload(tmp_path):
    marker = tmp_path / "pwned"
    phase = next(ph for ph in recipe.PHASES if ph.name == "clip")
    ckpt = plant(tmp_path / "out" / "clip" / "clip" / "state.pt", marker)
    with pytest.raises(CheckpointError, match=re.escape(str(ckpt))):
        recipe._steps_done(phase, tmp_path / "out", None)
    assert not marker.exists()


def test_recipe_list_on_the_command_line_refuses_a_planted_payload(tmp_path):
    """`regionedit train recipe --list` reads each phase's checkpoint for its step count."""
    marker = tmp_path / "pwned"
    out = tmp_path / "out"
    ckpt = plant(out / "clip" / "clip" / "state.pt", marker)
    proc = subprocess.run([sys.executable, "-m", "regionedit.cli.main", "train", "recipe", "--out", str(out), "--list"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert str(ckpt) in proc.stderr and "delete it" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not marker.exists()


def test_a_truncated_checkpoint_is_a_clear_error(tmp_path):
    ckpt = tmp_path / "state.pt"
    ckpt.write_bytes(b"PK\x03\x04 not a checkpoint")
    with pytest.raises(CheckpointError, match=re.escape(str(ckpt)) + r".*not a readable checkpoint"):
        load_checkpoint(ckpt)


def test_resume_keeps_the_data_order_and_state_loads_with_weights_only(tmp_path):
    """A run of 2 + 2 steps (checkpoint, safe load, resume) draws the same data as one run of 4 steps."""

    def train(out: Path, steps: int, draws: list) -> Run:
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        run = Run(out)

        def step_fn(step, gen):
            x = torch.rand(4, 3, generator=gen)
            draws.append(x)
            loss = model(x).pow(2).mean()
            loss.backward()
            return {"loss": loss.item()}

        train_loop(run, model, opt, step_fn, 1.0, steps, seed=5, extra_state=lambda: {"counter": 3, "cfg": {"a": (1, 2)}})
        return run

    straight, resumed = [], []
    train(tmp_path / "a", 4, straight)
    train(tmp_path / "b", 2, resumed)
    run = train(tmp_path / "b", 4, resumed)
    assert len(resumed) == 4 and all(torch.equal(a, b) for a, b in zip(straight, resumed))
    state = torch.load(run.state_path, map_location="cpu", weights_only=True)  # plain data only
    assert state["step"] == 4 and state["counter"] == 3 and isinstance(state["generator"], torch.Tensor)


def test_no_unsafe_torch_load_anywhere():
    """Every torch.load in src/, benchmarks/ and tests/ is weights_only=True (this file excepted: it plants)."""
    this = Path(__file__).resolve()
    bad = []
    for top in ("src", "benchmarks", "tests"):
        for f in (ROOT / top).rglob("*.py"):
            if f.resolve() == this:
                continue
            for i, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
                if "weights_only=False" in line or ("torch.load(" in line and "weights_only=True" not in line):
                    bad.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not bad, "unsafe checkpoint loads:\n" + "\n".join(bad)


# --- exports never default into the package -------------------------------------------------------------


def test_world_models_export_defaults_to_the_run_folder_never_the_package(tmp_path):
    args = world_models.build_parser().parse_args(["--out", str(tmp_path / "run")])
    export = world_models.resolve_export(args.out, args.export, args.overwrite_bundled)
    assert export == tmp_path / "run" / "export"
    bundled = bundled_dir().resolve()
    assert bundled.parent not in export.resolve().parents and export.resolve() != bundled
    assert "<out>/export" in world_models.build_parser().format_help().replace("\n", " ").replace("  ", " ")


@pytest.mark.parametrize("inside", [".", "unet", "../"])
def test_world_models_refuse_an_export_inside_the_bundled_weights(tmp_path, inside):
    target = bundled_dir() / inside
    before = sorted(p.name for p in bundled_dir().parent.iterdir())
    with pytest.raises(SystemExit, match="--overwrite-bundled"):
        world_models.main(["--only", "clip", "--out", str(tmp_path / "run"), "--export", str(target), "--max-steps", "0"])
    assert not (tmp_path / "run").exists()  # refused before anything was written
    assert sorted(p.name for p in bundled_dir().parent.iterdir()) == before
    # an explicit, deliberate overwrite is the maintainer's choice
    assert world_models.resolve_export(tmp_path, target, overwrite_bundled=True) == target


def test_recipe_refuses_an_export_inside_the_bundled_weights(tmp_path):
    with pytest.raises(SystemExit, match="bundled folder"):
        recipe.main(["--out", str(tmp_path / "out"), "--export", str(bundled_dir() / "x"), "--list"])
    assert not (bundled_dir() / "x").exists()

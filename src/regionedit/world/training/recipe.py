"""``regionedit train recipe``: every bundled shapes-64 model from scratch, in one resumable command.

    regionedit train recipe --out runs/repro --minutes 120     # rerun the same command to continue

The shipped weights grew over many sessions (a component continued from its own earlier weights, some on
frozen models that were later replaced; see each model card). This is the clean reproduction: the
phases below, in dependency order, each with the step budget of the shipped component (the sum of its
recorded trainings; unet_inpaint fewer, 5225 of 7670, where it meets both bars near the shipped card,
DEVELOPERS.md) and today's code for its objective, all on freshly generated world data, into a new
model folder (``--export``, default ``<out>/export``; never the package's). Every phase is a run of
``regionedit train world-models`` or ``regionedit train region`` in ``<out>/<phase>``, so a killed run
resumes where it stopped; a phase that reached its steps is marked done (``<out>/<phase>/DONE``) and
skipped. ``--minutes`` is the wall-clock budget of this invocation, shared by the phases it reaches.
``--scale`` multiplies every step budget (0.01 for a smoke test). The last phase trains nothing: it chooses
the region predictor's decision thresholds on calibration scenes (60 edits per category, seeds 15000+; the
rule of ``benchmarks/region.py --write-card``) and stores them in ``<export>/region_predictor/config.json``,
so the export edits as the shipped folder does. When all phases are done, compare the folder with the
shipped cards:

    python benchmarks/world_models.py --model runs/repro/export --n 100 --compare shapes-64
    python benchmarks/region.py --model runs/repro/export --n-per-category 40 --calibration-n 60

At the CPU speeds of the shipped runs (2 cores) the whole recipe is about 10 CPU-hours (and about one more for the
diffusion transformer, phase ``dit``), longer than one
session of a machine whose ``runs/`` does not survive it. So a later phase can be reproduced on its own:

    regionedit train recipe --out runs/repro-inpaint --start-at unet_inpaint --inputs shapes-64

copies what the phases before ``--start-at`` produce (their component folders) from ``--inputs`` (a bundled
model name or a model folder, e.g. an earlier recipe export) and trains from that phase on, from scratch as
in the full run. The copied phases are marked ``DONE`` with ``"copied_from"``, never as trained.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

# the shipped DiT's steps (dit/transformer/training_state.json); update when it is retrained
DIT_RECIPE_STEPS = 3596


@dataclasses.dataclass(frozen=True)
class Phase:
    name: str  # run folder under --out, and the DONE marker's place
    trainer: str  # "world-models", "region", or "calibrate" (no training: the region thresholds, calibrate_export)
    steps: int | None  # step budget (None: a phase without steps, the tokenizer)
    argv: tuple[str, ...] = ()  # the trainer's other arguments
    note: str = ""
    produces: tuple[str, ...] = ()  # the export's component folders this phase writes (what --start-at copies)


# step budgets: the shipped components' recorded trainings (training_state.json in each model folder), summed
PHASES: tuple[Phase, ...] = (
    Phase("tokenizer", "world-models", None, ("--only", "tokenizer"), "BPE on world text", ("tokenizer",)),
    Phase("clip", "world-models", 707, ("--only", "clip", "--clip-shape-aux", "0", "--batch", "128"),
          "contrastive image-caption, captions only", ("clip", "text_encoder")),
    Phase("clip_shape", "world-models", 1724, ("--only", "clip", "--batch", "64"),
          "fine-tune of both towers with the dense shape loss; exports CLIP's text tower as text_encoder",
          ("clip", "text_encoder")),
    Phase("vae", "world-models", 2174, ("--only", "vae", "--batch", "32"), "", ("vae",)),
    Phase("vae_decoder", "world-models", 2419 + 8875, ("--only", "vae_decoder"), "decoder only, edge-weighted", ("vae",)),
    Phase("instruction_encoder", "world-models", 233, ("--only", "instruction_encoder", "--batch", "64"), "",
          ("instruction_encoder",)),
    Phase("unet", "world-models", 132 + 200 + 3901 + 3396, ("--only", "unet", "--batch", "64"), "", ("unet",)),
    # unet_inpaint: fewer steps than the shipped component's 499 + 1141 + 81 + 3023 + 2926 = 7670. At 5225 steps
    # the recipe's UNet meets both bars near the shipped card (DEVELOPERS.md, "Reproduction from scratch"), and the
    # full 7670 (3.4-6 CPU-hours on these machines) never fitted one session of a machine that keeps runs/.
    Phase("unet_inpaint", "world-models", 5225, ("--only", "unet_inpaint", "--batch", "64"),
          "initialised from the text-to-image UNet; budget below the shipped 7670 steps", ("unet_inpaint",)),
    # unet_ip2p: the shipped run went 1579 steps at lr 1e-4, then resumed the same run at 3e-5 to step 3349; here the
    # second phase continues from the first one's export (a fresh optimizer and EMA)
    Phase("unet_ip2p", "world-models", 1579, ("--only", "unet_ip2p", "--batch", "32", "--ip2p-init", "unet_inpaint",
                                             "--ip2p-region-weight", "5", "--lr", "1e-4"),
          "from the inpainting UNet told to keep every pixel; edited latent cells weigh 5x", ("unet_ip2p",)),
    Phase("unet_ip2p_low_lr", "world-models", 3349 - 1579, ("--only", "unet_ip2p", "--batch", "32", "--ip2p-init", "auto",
                                                          "--ip2p-region-weight", "5", "--lr", "3e-5"),
          "continues the export of phase unet_ip2p at a lower learning rate", ("unet_ip2p",)),
    Phase("dit", "world-models", DIT_RECIPE_STEPS, ("--only", "dit", "--batch", "32"),
          "diffusion transformer, a StableDiffusion3Pipeline folder on the text encoder and VAE", ("dit",)),
    Phase("region", "region", 2101 + 1341, ("--batch", "16"), "seed 001 region predictor, text-image pairs only",
          ("region_predictor",)),
    Phase("region_presence", "region", 713,
          ("--presence-only", "--absent-prob", "0.35", "--batch", "64", "--lr", "1e-3"), "the presence head alone",
          ("region_predictor",)),
    Phase("region_thresholds", "calibrate", None, ("--calibration-n", "60"),
          "the editor's thresholds, chosen on calibration scenes, into region_predictor/config.json"),
)


def phase_argv(phase: Phase, out: Path, export: Path, minutes: float, scale: float, seed: int, threads: int) -> list[str]:
    """The trainer's command line for one phase (without the trainer's name)."""
    argv = list(phase.argv) + ["--out", str(out / phase.name), "--export", str(export), "--minutes", f"{minutes:.2f}",
                               "--seed", str(seed), "--threads", str(threads)]
    if phase.steps is not None:
        argv += ["--max-steps", str(max(1, math.ceil(phase.steps * scale)))]
    if phase.trainer == "region":
        argv += ["--model", str(export)]
    return argv


def _steps_done(phase: Phase, out: Path, result: dict | None) -> int | None:
    """Steps a phase has taken (from its trainer's result, else its checkpoint)."""
    if phase.steps is None:
        return None
    if result and "step" in result:
        return int(result["step"])
    state = out / phase.name / ("region" if phase.trainer == "region" else phase.argv[1]) / "state.pt"
    if state.exists():
        from regionedit.training.common import load_checkpoint

        return int(load_checkpoint(state)["step"])
    return None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="run folder: one sub-folder per phase (keep it out of git)")
    p.add_argument("--export", type=Path, default=None, help="the model folder it builds (default: <out>/export)")
    p.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget of this invocation")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every step budget (e.g. 0.01: a smoke test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--list", action="store_true", help="print the phases and their state, train nothing")
    p.add_argument("--start-at", default=None, choices=[ph.name for ph in PHASES],
                   help="reproduce from this phase on: copy what the phases before it produce from --inputs")
    p.add_argument("--inputs", default=None,
                   help="with --start-at: the model the earlier phases' components come from (a bundled name such as "
                        "shapes-64, or a model folder)")


def _inputs_dir(name: str) -> Path:
    """``--inputs``: a bundled model name or an existing folder (``models.loading.resolve``), never a hub id."""
    from regionedit.models.loading import resolve

    location, local = resolve(name)
    if not local:
        raise SystemExit(f"--inputs {name!r} is neither a folder nor a bundled model: give shapes-64 or a model folder")
    return Path(location)


def copy_earlier_phases(start_at: str, inputs: Path, out: Path, export: Path) -> list[str]:
    """Copy into ``export`` what the phases before ``start_at`` produce, from ``inputs``, and mark those phases
    done (``DONE`` holds ``copied_from``). Phases already done are left alone. Returns the phases copied."""
    names = [ph.name for ph in PHASES]
    earlier = PHASES[: names.index(start_at)]
    first = PHASES[names.index(start_at)]
    continued = [ph for ph in earlier if set(ph.produces) & set(first.produces)]
    if continued:  # its components' copies would be the finished ones: it would not start from scratch
        raise SystemExit(f"--start-at {start_at} continues what {continued[-1].name} trains "
                         f"({', '.join(first.produces)}): start at {continued[0].name}")
    missing = sorted({c for ph in earlier for c in ph.produces if not (inputs / c).is_dir()})
    if missing:
        raise SystemExit(f"--inputs {inputs} lacks {', '.join(missing)}, which the phases before {start_at} produce: "
                         "give a complete model folder (e.g. shapes-64)")
    copied = []
    export.mkdir(parents=True, exist_ok=True)
    if (inputs / "scheduler").is_dir() and not (export / "scheduler").exists():  # the pipeline's other parts
        shutil.copytree(inputs / "scheduler", export / "scheduler")
    for name in ("model_index.json", "regionedit.json"):
        if (inputs / name).is_file() and not (export / name).exists():
            shutil.copy2(inputs / name, export / name)
    for ph in earlier:
        done = out / ph.name / "DONE"
        if done.exists():
            continue
        for comp in ph.produces:
            tmp = export / f"{comp}.tmp"
            if tmp.exists():
                shutil.rmtree(tmp)
            shutil.copytree(inputs / comp, tmp)
            if (export / comp).exists():
                shutil.rmtree(export / comp)
            tmp.rename(export / comp)
        done.parent.mkdir(parents=True, exist_ok=True)
        done.write_text(json.dumps({"steps": None, "copied_from": str(inputs), "components": list(ph.produces),
                                    "finished": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
        copied.append(ph.name)
    return copied


def calibrate_export(export: Path, n: int, threads: int = 2) -> dict:
    """Choose the thresholds of ``export``'s region predictor on ``n`` calibration edits per category and store
    them in its config.json (:mod:`regionedit.evaluation.region_thresholds`, the rule ``benchmarks/region.py
    --write-card`` uses). Returns the record the phase's ``DONE`` keeps: the thresholds and their calibration row."""
    import torch

    from regionedit.evaluation.region_thresholds import calibrate, store_thresholds
    from regionedit.pipeline import Editor

    if not (Path(export) / "region_predictor" / "config.json").is_file():
        raise SystemExit(f"{export} has no region_predictor to calibrate: the region phases come first")
    torch.set_num_threads(threads)
    editor = Editor.from_pretrained(export)
    best, table = calibrate(editor, n)
    store_thresholds(Path(export) / "region_predictor", best)
    # and for the learned parts alone (an Editor without the world's priors): their own region/presence thresholds
    learned = Editor.from_pretrained(export, priors=False)
    best_l, table_l = calibrate(learned, n)
    store_thresholds(Path(export) / "region_predictor", best_l, learned_only=True)
    return {"threshold": best[0], "presence_threshold": best[1], "verify_threshold": best[2], "calibration_n": n,
            "calibration": table[best], "learned_thresholds": {"threshold": best_l[0], "presence_threshold": best_l[1]},
            "learned_calibration": table_l[best_l]}


def _has_thresholds(export: Path) -> bool:
    cfg = Path(export) / "region_predictor" / "config.json"
    return cfg.is_file() and "threshold" in json.loads(cfg.read_text())


def run(args) -> int:
    from regionedit.models.bundled import bundled_dir
    from regionedit.training import region as region_trainer
    from regionedit.world.training import world_models
    from regionedit.world.training.region_data import WorldRegionData

    out = Path(args.out)
    export = Path(args.export or out / "export")
    if world_models.inside_bundled(export):
        raise SystemExit(f"--export {export} is inside the package's bundled folder of weights ({bundled_dir().parent}): "
                         "the recipe builds a new model folder; give another folder (default <out>/export)")
    out.mkdir(parents=True, exist_ok=True)
    if (args.start_at is None) != (args.inputs is None):
        raise SystemExit("--start-at and --inputs go together: --start-at PHASE --inputs shapes-64 (or a model folder)")
    if args.start_at is not None and not args.list:
        copied = copy_earlier_phases(args.start_at, _inputs_dir(args.inputs), out, export)
        if copied:
            print(f"[recipe] copied from {args.inputs}, not trained: {', '.join(copied)}", flush=True)
    deadline = time.time() + args.minutes * 60
    for ph in PHASES:
        done = out / ph.name / "DONE"
        budget = None if ph.steps is None else max(1, math.ceil(ph.steps * args.scale))
        if args.list:
            if done.exists() and not (ph.trainer == "calibrate" and not _has_thresholds(export)):
                state = "copied" if "copied_from" in json.loads(done.read_text()) else "done"
            else:
                state = "to do" if ph.steps is None else f"{_steps_done(ph, out, None) or 0} steps"
            print(f"{ph.name:20s} {ph.trainer:13s} {budget if budget else '-':>6} steps  {state:12s} {ph.note}")
            continue
        if done.exists() and ph.trainer == "calibrate" and not _has_thresholds(export):
            done.unlink()  # the region predictor was exported again after its calibration (without thresholds)
        if done.exists():
            continue
        left = (deadline - time.time()) / 60
        if left <= 0.05:
            print(f"[recipe] out of time before {ph.name}: rerun the same command to continue", flush=True)
            return 0
        if ph.trainer == "calibrate":
            n = max(1, math.ceil(int(ph.argv[1]) * args.scale))
            print(f"[recipe] {ph.name}: choosing the region predictor's thresholds on {n} calibration edits per "
                  f"category (evaluation.region_thresholds)", flush=True)
            record = calibrate_export(export, n, args.threads)
            done.parent.mkdir(parents=True, exist_ok=True)
            done.write_text(json.dumps({**record, "finished": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
            print(f"[recipe] {ph.name} done: region {record['threshold']}, presence {record['presence_threshold']}, "
                  f"CLIP referent check {record['verify_threshold']}", flush=True)
            continue
        argv = phase_argv(ph, out, export, left, args.scale, args.seed, args.threads)
        print(f"[recipe] {ph.name}: regionedit train {ph.trainer} {' '.join(argv)}", flush=True)
        if ph.trainer == "world-models":
            results = world_models.run_components(world_models.build_parser().parse_args(argv))
            result = results.get(ph.argv[1], {})
        else:
            region_trainer.run(region_trainer.build_parser().parse_args(argv), data=WorldRegionData)
            result = None
        steps = _steps_done(ph, out, result)
        if budget is None or (steps is not None and steps >= budget):
            done.parent.mkdir(parents=True, exist_ok=True)
            done.write_text(json.dumps({"steps": steps, "budget": budget, "finished": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")
            print(f"[recipe] {ph.name} done ({steps} steps)", flush=True)
        else:
            print(f"[recipe] {ph.name} stopped at {steps} of {budget} steps: rerun the same command to continue", flush=True)
            return 0
    if not args.list:
        print(f"[recipe] every phase done: the models are in {export}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="regionedit train recipe", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))

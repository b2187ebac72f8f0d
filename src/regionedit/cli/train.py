"""``regionedit train ...``: training entry points (resumable; see each --help)."""

from __future__ import annotations

import argparse
from pathlib import Path

# (sub-command, module, help): each module has add_arguments(parser) and run(args)
TRAINERS = (
    ("world-models", "regionedit.world.training.world_models", "train the bundled miniature CLIP, instruction encoder, VAE and UNets on the shapes world"),
    ("region", "regionedit.training.region", "train the seed-001 region predictor on text-image pairs (the shapes world, or --data: captions, edit pairs, WebDataset shards; several processes with accelerate)"),
    ("recipe", "regionedit.world.training.recipe", "every bundled model from scratch, with the shipped step budgets, into a new folder (resumable)"),
)

# (sub-command, help): methods whose trainers take their data from the app (wired below, not through TRAINERS)
METHOD_TRAINERS = (
    ("descriptive", "train the Attention Bridges of DescriptiveEdit (seed 004) on edit pairs (the shapes world's, or --data); "
                    "exports <out>/export"),
    ("region_in_context", "train Region in Context (seed 000) on edit pairs (the shapes world's, or --data); exports "
                          "<out>/export"),
    ("adaptedit", "train AdaptEdit (seed 002): adapters, SpatialGates and MaskPredictor on the frozen DiT, on edit pairs "
                  "(the shapes world's, or --data); exports <out>/export"),
    ("fireedit", "train FireEdit (seed 003): VL encoder with region tokens, TATI and HVCA on the frozen InstructPix2Pix "
                 "UNet, on edit pairs (the shapes world's, or --data); exports <out>/export"),
)

WORLD_DATA_SEED = 20_260_000  # base seed of the default training stream (the evaluation protocols use other seeds)


class WorldEditStream:
    """The default training data of the method trainers: the shapes world's edit samples
    ``sample_edit(seed=base + i // per_seed, index=i % per_seed)`` in that order, ``"absent"`` edits (target =
    source) skipped. Deterministic and re-iterable (every ``iter`` starts over), so a resumed run replays the same
    stream up to where its checkpoint was."""

    def __init__(self, base: int = WORLD_DATA_SEED, per_seed: int = 1000):
        self.base, self.per_seed = int(base), int(per_seed)

    def __iter__(self):
        import itertools

        import numpy as np

        from regionedit.world import sample_edit

        for i in itertools.count():
            s = sample_edit(seed=self.base + i // self.per_seed, index=i % self.per_seed)
            if s.category == "absent" or s.target is None or np.array_equal(s.target, s.source):
                continue
            yield s


class DatasetEditStream:
    """``--data``: the edit pairs of :func:`regionedit.data.open_dataset` as record dicts (``source``, ``target``,
    ``mask`` (the given one, else where target and source differ), ``instruction``, ``target_caption``); samples
    without a target image, or without the fields in ``require``, are skipped. Re-iterable (each pass re-opens the
    data in its stored order)."""

    def __init__(self, path_or_id: str, split: str | None = None, require: tuple[str, ...] = ("target_caption",)):
        from regionedit.data import open_dataset

        self.path_or_id, self.split, self.require = path_or_id, split, tuple(require)
        self.dataset = open_dataset(path_or_id, split)

    def __iter__(self):
        for s in self.dataset:
            if s.target is None:
                continue
            rec = s.to_record()
            rec["mask"] = s.region()
            if all(rec.get(k) for k in self.require):
                yield rec


def _method_data(args, require: tuple[str, ...]):
    """(data, name) of a method trainer: ``--data`` or the shapes world's stream."""
    if getattr(args, "data", None):
        return DatasetEditStream(args.data, args.split, require), f"{args.data} (split {args.split})"
    return WorldEditStream(), f"shapes world edit samples (seeds {WORLD_DATA_SEED}+, absent edits skipped)"


def add_descriptive_arguments(p) -> None:
    from regionedit.training.common import add_checkpoint_arguments, add_export_arguments

    p.add_argument("--out", type=Path, required=True, help="run folder (state.pt, log.jsonl); resumes when it has one")
    p.add_argument("--model", default="shapes-64", help="base model folder or name (its text-to-image unet/) (default shapes-64)")
    p.add_argument("--steps", "--max-steps", dest="steps", type=int, default=2000,
                   help="train until this many steps in all (default 2000)")
    p.add_argument("--minutes", type=float, default=None, help="stop this call after this many minutes (default: no limit)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    add_checkpoint_arguments(p)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=False, help="tqdm bar (default: a "
                                                                                           "JSON line per step)")
    p.add_argument("--data", default=None, help="a dataset regionedit.data.open_dataset reads (samples with a target image "
                                                "and a target caption); default: the shapes world's edit samples")
    p.add_argument("--split", default=None, help="split of --data")
    add_export_arguments(p, "folder receiving the trained bridges (bridges.safetensors, config.json, README.md)")
    p.add_argument("--fp16-export", action="store_true", help="export the bridges in fp16 (a bundle's copy; rerun a "
                                                              "finished run with it to re-export)")


def run_descriptive(args) -> int:
    """``regionedit train descriptive``: :func:`regionedit.training.descriptive.train_descriptive` on ``--data`` or
    the shapes world's edit samples; exports into ``<out>/export`` (copy it to ``<model>/descriptive_edit`` for
    ``regionedit eval --methods descriptive``)."""
    import json

    import torch

    from regionedit.training.common import resolve_export
    from regionedit.training.descriptive import DescriptiveTrainConfig, train_descriptive

    export = resolve_export(args.out, args.export, args.overwrite_bundled)
    data, name = _method_data(args, ("target_caption",))
    tc = DescriptiveTrainConfig(batch_size=args.batch, lr=args.lr, seed=args.seed)
    res = train_descriptive(args.model, data, args.out, args.steps, train_config=tc, export=export, minutes=args.minutes,
                            data_name=name, export_dtype=torch.float16 if args.fp16_export else torch.float32,
                            checkpoint_steps=args.checkpoint_steps, checkpoint_minutes=args.checkpoint_minutes,
                            progress=args.progress)
    print(json.dumps({"export": str(res["export"]), "step": res["step"], "resumed_from": res["resumed_from"]}), flush=True)
    return 0


def run_region(args) -> int:
    """``regionedit train region``: the general region trainer (:mod:`regionedit.training.region`, which imports
    no world) on

    - ``--data PATH_OR_ID``: any dataset :func:`regionedit.data.open_dataset` reads
      (:class:`~regionedit.training.data_sources.DatasetRegionData`); edits of captions are written by the shapes
      world's language rules when a caption is one of that world's, else by the generic English rules;
    - else the bundled shapes world's data source
      (:class:`~regionedit.world.training.region_data.WorldRegionData`): pairs rendered on the fly, or the
      ``--pairs`` shards, with each edit written from the caption text by the world's language rules.

    Under ``accelerate launch --num_processes N`` on a machine without GPUs (whose default launcher starts one
    process), the N processes are started with torchrun (:func:`regionedit.training.distributed.relaunch_under_torchrun`)."""
    from regionedit.training import region
    from regionedit.training.distributed import relaunch_under_torchrun

    relaunched = relaunch_under_torchrun()
    if relaunched is not None:
        return relaunched
    if getattr(args, "data", None):
        return region.run(args, data=region.dataset_data(args, captions=world_or_generic_captions))
    from regionedit.world.training.region_data import WorldRegionData

    return region.run(args, data=WorldRegionData)


def world_or_generic_captions(caption, rng, absent_prob, h, w):
    """A caption writer (:data:`regionedit.training.data_sources.CaptionWriter`): the shapes world's rules for its
    captions ("a red circle ... on a white background"), the generic English rules for any other caption."""
    from regionedit.training.data_sources import generic_caption_example
    from regionedit.world.training.region_data import example_from_caption, to_region_example

    try:
        ex = example_from_caption(caption, rng, absent_prob)
    except ValueError:  # not a shapes-world caption
        return generic_caption_example(caption, rng, absent_prob, h, w)
    return None if ex is None else to_region_example(ex, caption, h, w)


def edit_pair_trainer(module: str, require: tuple[str, ...] = ("instruction",)):
    """``(add_arguments, run)`` of a seed-method trainer module on edit pairs with the fields ``require``
    (``adaptedit``, ``fireedit``: an instruction; ``region_in_context``: also a target caption): its options, and its
    ``run(args, data, name)`` on ``--data`` or the shapes world's edit samples. The export goes to ``<out>/export``
    (copy it to ``<model>/<method>`` for ``regionedit eval --methods <method>``)."""
    import importlib

    def add(p) -> None:
        importlib.import_module(module).add_arguments(p)

    def run(args) -> int:
        data, name = _method_data(args, require)
        return importlib.import_module(module).run(args, data, name)

    return add, run


# sub-command -> the run(args) the app wires in instead of its module's own (which needs what the app selects)
RUNNERS = {"region": run_region}

METHOD_RUNNERS = {"descriptive": (add_descriptive_arguments, run_descriptive),
                  "region_in_context": edit_pair_trainer("regionedit.training.region_in_context",
                                                         ("instruction", "target_caption")),
                  "adaptedit": edit_pair_trainer("regionedit.training.adaptedit"),
                  "fireedit": edit_pair_trainer("regionedit.training.fireedit")}


def add_parser(sub) -> None:
    import importlib

    p = sub.add_parser("train", help="train the bundled world models, the region predictor or an editing method (resumable)",
                       description="Train models. Every trainer checkpoints into --out and resumes when rerun.")
    tsub = p.add_subparsers(dest="train_command", metavar="<what>")
    for name, module, help_ in TRAINERS:
        mod = importlib.import_module(module)
        tp = tsub.add_parser(name, help=help_, description=mod.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(tp)
        tp.set_defaults(func=RUNNERS.get(name, mod.run))
    for name, help_ in METHOD_TRAINERS:
        add, run = METHOD_RUNNERS[name]
        tp = tsub.add_parser(name, help=help_, description=run.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        add(tp)
        tp.set_defaults(func=run)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


if __name__ == "__main__":  # python -m regionedit.cli.train region ...  (= regionedit train region ...)
    import sys

    from regionedit.cli.main import main

    sys.argv = [sys.argv[0], "train", *sys.argv[1:]]  # what a relaunch under torchrun passes on
    sys.exit(main(sys.argv[1:]))

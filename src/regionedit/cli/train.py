"""``regionedit train ...``: training entry points (resumable; see each --help)."""

from __future__ import annotations

import argparse

# (sub-command, module, help): each module has add_arguments(parser) and run(args)
TRAINERS = (
    ("world-models", "regionedit.world.training.world_models", "train the bundled miniature CLIP, instruction encoder, VAE and UNets on the shapes world"),
    ("region", "regionedit.training.region", "train the seed-001 region predictor on text-image pairs (no edit pairs, no masks)"),
    ("recipe", "regionedit.world.training.recipe", "every bundled model from scratch, with the shipped step budgets, into a new folder (resumable)"),
)


def run_region(args) -> int:
    """``regionedit train region``: the general region trainer (:mod:`regionedit.training.region`, which imports
    no world) on the bundled shapes world's data source
    (:class:`~regionedit.world.training.region_data.WorldRegionData`): pairs rendered on the fly, or the
    ``--pairs`` shards, with each edit written from the caption text by the world's language rules."""
    from regionedit.training import region
    from regionedit.world.training.region_data import WorldRegionData

    return region.run(args, data=WorldRegionData)


# sub-command -> the run(args) the app wires in instead of its module's own (which needs what the app selects)
RUNNERS = {"region": run_region}


def add_parser(sub) -> None:
    import importlib

    p = sub.add_parser("train", help="train the bundled world models or the region predictor (resumable)",
                       description="Train models. Every trainer checkpoints into --out and resumes when rerun.")
    tsub = p.add_subparsers(dest="train_command", metavar="<what>")
    for name, module, help_ in TRAINERS:
        mod = importlib.import_module(module)
        tp = tsub.add_parser(name, help=help_, description=mod.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(tp)
        tp.set_defaults(func=RUNNERS.get(name, mod.run))
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

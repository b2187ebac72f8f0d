"""``regionedit train ...``: training entry points (resumable; see each --help)."""

from __future__ import annotations

import argparse

# (sub-command, module, help): each module has add_arguments(parser) and run(args)
TRAINERS = (
    ("world-models", "regionedit.world.training.world_models", "train the bundled miniature CLIP, instruction encoder, VAE and UNets on the shapes world"),
    ("region", "regionedit.training.region", "train the seed-001 region predictor on text-image pairs (the shapes world, or --data: captions, edit pairs, WebDataset shards; several processes with accelerate)"),
    ("recipe", "regionedit.world.training.recipe", "every bundled model from scratch, with the shipped step budgets, into a new folder (resumable)"),
)


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


if __name__ == "__main__":  # python -m regionedit.cli.train region ...  (= regionedit train region ...)
    import sys

    from regionedit.cli.main import main

    sys.argv = [sys.argv[0], "train", *sys.argv[1:]]  # what a relaunch under torchrun passes on
    sys.exit(main(sys.argv[1:]))

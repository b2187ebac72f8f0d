"""``regionedit train ...``: training entry points (resumable; see each --help)."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train the bundled world models or the region predictor (resumable)",
                       description="Train models. Every trainer checkpoints into --out and resumes when rerun.")
    tsub = p.add_subparsers(dest="train_command", metavar="<what>")
    from regionedit.training import world_models

    wm = tsub.add_parser(
        "world-models",
        help="train the bundled miniature CLIP, instruction encoder, VAE and UNets on the shapes world",
        description=world_models.__doc__,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    world_models.add_arguments(wm)
    wm.set_defaults(func=world_models.run)
    from regionedit.training import region

    rp = tsub.add_parser(
        "region",
        help="train the seed-001 region predictor on text-image pairs (no edit pairs, no masks)",
        description=region.__doc__,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    region.add_arguments(rp)
    rp.set_defaults(func=region.run)
    from regionedit.training import recipe

    rc = tsub.add_parser(
        "recipe",
        help="every bundled model from scratch, with the shipped step budgets, into a new folder (resumable)",
        description=recipe.__doc__,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    recipe.add_arguments(rc)
    rc.set_defaults(func=recipe.run)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

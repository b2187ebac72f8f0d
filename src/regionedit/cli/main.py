"""``regionedit`` console script: ``regionedit <command> [options]``.

Each subcommand lives in its own module of this package and exposes ``add_parser(subparsers)``,
which registers its options and sets ``func`` (called with the parsed namespace, returns an exit code).
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import math
import signal
import sys

# command name -> module in regionedit.cli that implements it
COMMANDS = {
    "world": "regionedit.cli.world",
    "demo": "regionedit.cli.demo",
    "describe": "regionedit.cli.describe",
    "edit": "regionedit.cli.edit",
    "eval": "regionedit.cli.eval",
    "serve": "regionedit.cli.serve",
    "train": "regionedit.cli.train",
}


def positive_int(text: str) -> int:
    """argparse ``type``: an integer >= 1, or an error that says so."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


SEED_LIMIT = 2**63
"""Seeds are 0 <= seed < 2**63: torch.Generator.manual_seed takes up to 2**64 - 1 and an edit also uses
seed + k * CANDIDATE_STRIDE for its candidates (and seed + k for the k-th of several edits)."""


def seed_int(text: str) -> int:
    """argparse ``type``: a seed, a whole number 0 <= seed < 2**63."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number 0 <= seed < 2**63, got {text!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(
            f"expected a whole number 0 <= seed < 2**63 (= {SEED_LIMIT}), got {value}")
    return value


def non_negative_float(text: str) -> float:
    """argparse ``type``: a finite number >= 0 (no nan, no inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def unit_float(text: str) -> float:
    """argparse ``type``: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0 <= value <= 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regionedit",
        description=(
            "Mask-free, region-aware, instruction-based image editing. "
            "Run `regionedit <command> --help` for each command's options."
        ),
    )
    from regionedit import __version__

    parser.add_argument("--version", action="version", version=f"regionedit {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="keep transformers' / diffusers' loading progress bars and warnings (quiet by default)")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, module in COMMANDS.items():
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    if not args.verbose:
        _quiet_libraries()
    _register_stack_dump()
    return int(args.func(args) or 0)


def _register_stack_dump() -> None:
    """``kill -USR1 <pid>`` prints every thread's stack to the process's stderr (where a run hangs). Needs a real
    file descriptor: skipped when stderr has none (an embedding app, a test capturing it)."""
    if not hasattr(signal, "SIGUSR1"):
        return
    try:
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    except (AttributeError, ValueError, OSError):  # io.UnsupportedOperation is an OSError and a ValueError
        pass


def _quiet_libraries() -> None:
    """The app's choice (the library leaves logging alone): no per-load progress bars or notices from the
    model libraries on stderr, where our own errors and progress go; errors still show."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    for lib in (tlog, dlog):
        lib.set_verbosity_error()
        lib.disable_progress_bar()


if __name__ == "__main__":
    sys.exit(main())

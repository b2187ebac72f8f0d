"""The evaluation harness: protocols x methods -> per-sample metrics -> ``results.json`` / ``.md``.

Published editing numbers are often not comparable because the protocol hides choices (which CLIP,
which DINO, which resolution, global or local captions, GT target or source as reference). Here a
run is fully determined by its :class:`EvalConfig`, and ``results.json`` states every choice: the
protocol, seed, N, steps, guidance, the images' and methods' resolutions, the prompts each method
got, the feature extractors by name with their preprocessing (``FeatureExtractor.name`` /
``.config``), the definition of every metric, and the metrics or methods that could not run, with
the reason.

    from regionedit.evaluation.harness import EvalConfig, run_evaluation
    results = run_evaluation(EvalConfig(protocol="shapes", methods=["oracle", "sdedit"], n=100, out="runs/eval"))

Protocols (:data:`PROTOCOLS`)
-----------------------------
``shapes``
    held-out shapes-world samples ``sample_edit(seed, i, size)`` for ``i < n`` (default seed 20000:
    training never uses seeds >= 20000). Exact ground truth: region IoU, leakage, preservation, edit
    success (measured objects vs the target scene graph), absent accuracy; plus L1/L2/CLIP-I/DINO
    against the GT target, CLIP-T against the target caption and CLIP-dir.
``magicbrush``
    a MagicBrush-layout folder (``regionedit world make --format magicbrush`` or the real
    MagicBrush parquet / release folder): L1, L2, CLIP-I and DINO of the edited image against the GT
    target, CLIP-T against the turn's global caption (``CLIP-T(global)``) and against its local
    description (``CLIP-T(local)``, MagicBrush's published CLIP-T) when the data has them, in two
    settings as MagicBrush's ``image_eval.py``: ``single-turn`` (every turn edited from its GT input,
    all turns averaged) and ``multi-turn`` (turns of a session chained in ``turn_index`` order, each turn's
    output being the next turn's input; the final turn's output is compared with the final GT
    target, one value per session). Only sessions whose every turn is among the first N records
    are chained.
``emu``
    an Emu-Edit-layout folder (``regionedit world make --format emu`` or the real Emu Edit test
    set): the edited image against the *input* and the captions, per task: CLIP-I(source, edited),
    L1(source, edited), CLIP-T(edited, output_caption), CLIP-dir and DINO(source, edited).

Output folder
-------------
``samples.jsonl`` (one line per (setting, method, sample) as soon as it is computed; a rerun with
the same configuration skips the samples already there, so runs resume), ``eval_config.json`` (what
the records were computed with; a rerun with a different configuration into the same folder is
refused), ``results.json``, ``results.md`` (:mod:`regionedit.evaluation.report`),
``grid_<setting>.png`` (source | GT target | each method's output with its region outlined, first
K samples) and ``outputs/<setting>/<method>/<index>.png`` (the outputs the grids and the multi-turn
chains need).

Modules
-------
:mod:`.config` (protocols, metric keys, :class:`EvalConfig`), :mod:`.protocols` (samples and data
sources), :mod:`.scoring` (feature extractors, per-sample metrics), :mod:`.records` (the output
folder's records and PNGs), :mod:`.grids`, :mod:`.results` (aggregation, ``results.json``) and
:mod:`.run` (:func:`run_evaluation`); every name is importable from here as before.
"""

from __future__ import annotations

from .config import (
    CATEGORY_METRICS,
    CLIP_KEYS,
    DEFAULT_SEED,
    DINO_KEYS,
    MB_RESIZE,
    METRICS,
    PROTOCOL_METRICS,
    PROTOCOLS,
    EvalConfig,
    _canonical_command,
)
from .grids import make_grid
from .protocols import EmuProtocol, EvalSample, MagicBrushProtocol, ShapesProtocol, make_protocol
from .records import CONFIG_FILE, SAMPLES_FILE, output_path, read_records
from .results import aggregate, build_results, machine_info
from .run import model_fingerprint, run_evaluation
from .scoring import CachedExtractor, build_extractors, sample_metrics

__all__ = [
    "PROTOCOLS",
    "DEFAULT_SEED",
    "MB_RESIZE",
    "METRICS",
    "PROTOCOL_METRICS",
    "CATEGORY_METRICS",
    "CLIP_KEYS",
    "DINO_KEYS",
    "EvalConfig",
    "EvalSample",
    "ShapesProtocol",
    "MagicBrushProtocol",
    "EmuProtocol",
    "make_protocol",
    "CachedExtractor",
    "build_extractors",
    "sample_metrics",
    "SAMPLES_FILE",
    "CONFIG_FILE",
    "read_records",
    "output_path",
    "make_grid",
    "aggregate",
    "machine_info",
    "build_results",
    "model_fingerprint",
    "run_evaluation",
]
# Not in __all__ but importable as before: _canonical_command (used by the CLI).

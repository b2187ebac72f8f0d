"""Render an evaluation's ``results.json`` as Markdown tables (``results.md``).

One table per setting (``shapes``, ``emu``, MagicBrush ``single-turn`` / ``multi-turn``) with a row
per method and a column per metric (arrow = which direction is better), then per-category
sub-tables, preceded by what the numbers depend on: the command, seed, N, steps, the machine
(``platform.processor()`` / ``platform.machine()``, torch version), the feature extractors with
their preprocessing, and the methods and metrics that were skipped, with the reason.

    python -m regionedit.evaluation.report runs/eval/results.json [-o results.md]
    python -m regionedit.evaluation.report runs/eval-a/results.json runs/eval-b/results.json   # one table

Several results files (runs of the same protocol, seed, N, steps and guidance, e.g. methods added later) render
as one side-by-side table per setting with each run's command listed under it (:func:`render_combined`); runs
that are not comparable are refused with the settings that differ.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

NA = "n/a"


def _fmt(value: Any, key: str) -> str:
    if value is None:
        return NA
    if key == "seconds":
        return f"{value:.2f}"
    return f"{value:.3f}"


def _header(key: str, labels: dict) -> str:
    info = labels.get(key, {})
    label = info.get("label", key)
    better = info.get("higher_is_better")
    return label + (" ↑" if better is True else " ↓" if better is False else "")


def _table(rows: list[tuple[str, dict]], keys: list[str], labels: dict) -> list[str]:
    """Markdown table: rows of (method, summary) with ``summary["n"]`` and ``summary["metrics"]``."""
    present = [k for k in keys if any(k in (s.get("metrics") or {}) for _, s in rows)]
    lines = ["| method | n | " + " | ".join(_header(k, labels) for k in present) + " |",
             "|---|---:|" + "---:|" * len(present)]
    for name, s in rows:
        n = str(s.get("n", 0)) + (f" ({s['n_errors']} errors)" if s.get("n_errors") else "")
        cells = [_fmt((s.get("metrics") or {}).get(k), k) for k in present]
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return lines


def render_markdown(results: dict) -> str:
    """The Markdown report of a results dict (as written to ``results.json``)."""
    cfg = results.get("config", {})
    mach = results.get("machine", {})
    labels = results.get("metric_labels", {})
    cols = results.get("metric_columns", {})
    out: list[str] = [f"# Evaluation: {cfg.get('protocol')} protocol", ""]
    out += [
        f"- command: `{results.get('command')}`",
        f"- seed: {cfg.get('seed')}, N: {cfg.get('n')}, steps: {cfg.get('steps')}, guidance: {cfg.get('guidance')}, "
        f"model: `{cfg.get('model')}`",
        f"- data: {cfg.get('data', {}).get('data')}",
        f"- machine: {mach.get('processor') or NA} / {mach.get('machine')} ({mach.get('platform')}), "
        f"torch {mach.get('torch')}, diffusers {mach.get('diffusers')}, transformers {mach.get('transformers')}, "
        f"{mach.get('torch_threads')} torch thread(s), regionedit {mach.get('regionedit')}",
        f"- created: {results.get('created')}",
    ]
    res = cfg.get("resolution", {})
    if res:
        out.append(f"- image sizes: {', '.join(res.get('images', [])) or NA}; methods: "
                   + ", ".join(f"{m} {r}" for m, r in (res.get("methods") or {}).items()))
    exts = results.get("feature_extractors", {})
    for key, e in exts.items():
        c = e.get("config", {})
        out.append(f"- {key} features: `{e.get('name')}` (model {c.get('model')}, resize {c.get('resize')}, "
                   f"center crop {c.get('center_crop')}, {c.get('interpolation')}, mean {c.get('mean')}, std {c.get('std')})")
    for key, why in (results.get("unavailable_metrics") or {}).items():
        out.append(f"- unavailable ({key}): {why}")
    for name, why in (results.get("skipped_methods") or {}).items():
        out.append(f"- skipped method **{name}**: {why}")
    prompts = cfg.get("prompts") or {}
    if prompts:
        out.append(f"- prompts: {prompts.get('baselines')}; {prompts.get('editor')}")
    out.append("")

    for setting, block in (results.get("settings") or {}).items():
        methods = block.get("methods") or {}
        title = f"## {setting}"
        out += [title, ""]
        if block.get("note"):
            out += [f"{block['note']}; N = {block.get('n_samples')}.", ""]
        else:
            out += [f"N = {block.get('n_samples')}.", ""]
        if not methods:
            out += ["No method ran.", ""]
            continue
        out += _table(list(methods.items()), cols.get("overall", []), labels)
        out.append("")
        for m, errs in (block.get("errors") or {}).items():
            out.append(f"- errors of {m}: " + "; ".join(errs))
        cats = sorted({c for s in methods.values() for c in (s.get("categories") or {})})
        if cats:
            out += [f"### {setting}: per category", ""]
            for c in cats:
                rows = [(m, s["categories"][c]) for m, s in methods.items() if c in (s.get("categories") or {})]
                out += [f"#### {c}", ""] + _table(rows, cols.get("category", []), labels) + [""]
    defs = results.get("metric_definitions") or {}
    if defs:
        out += ["## Metric definitions", ""]
        out += [f"- **{_header(k, labels)}** (`{k}`): {d}" for k, d in defs.items()]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# what runs must share for their rows to sit in one table
COMPARABLE = ("protocol", "seed", "n", "steps", "guidance", "data", "resolution")


def render_combined(runs: list[dict]) -> str:
    """One overall table per setting with the rows of every run in ``runs`` (results dicts, in order; a method
    measured by several runs keeps its place and shows its last run's row: list a re-measurement after the run it
    replaces), then the commands. ``ValueError`` when the runs differ in any of :data:`COMPARABLE` (their rows would
    not be comparable)."""
    if not runs:
        raise ValueError("no results to combine")
    def setting(cfg: dict, key: str):
        v = cfg.get(key)
        if key == "resolution" and isinstance(v, dict):  # the images and metric features, not each method's own
            return {k: x for k, x in v.items() if k != "methods"}
        return v

    first = runs[0].get("config", {})
    for r in runs[1:]:
        cfg = r.get("config", {})
        diff = [k for k in COMPARABLE if setting(cfg, k) != setting(first, k)]
        if diff:
            raise ValueError(f"results of {r.get('command')!r} differ from {runs[0].get('command')!r} in {diff}; "
                             "only runs of the same protocol, seed, N, steps and guidance share a table")
    labels: dict = {}
    for r in runs:
        labels.update(r.get("metric_labels", {}))
    overall = list(dict.fromkeys(k for r in runs for k in r.get("metric_columns", {}).get("overall", [])))
    settings = list(dict.fromkeys(s for r in runs for s in r.get("settings", {})))
    out: list[str] = []
    for setting in settings:
        rows: dict[str, dict] = {}
        for r in runs:
            for name, summary in r.get("settings", {}).get(setting, {}).get("methods", {}).items():
                rows[name] = summary  # a later run's measurement replaces an earlier one, in the earlier place
        n = max((s.get("n", 0) for s in rows.values()), default=0)
        out += [f"### {setting} (N = {n}, seed {first.get('seed')}, {first.get('steps')} steps, guidance "
                f"{first.get('guidance')})", ""]
        out += _table(list(rows.items()), overall, labels) + [""]
    out += ["Commands:", ""] + [f"    {r.get('command')}" for r in runs] + [""]
    return "\n".join(out)


def write_markdown(results: dict, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_markdown(results))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Render an evaluation's results.json as Markdown (several: one "
                                            "side-by-side table).")
    p.add_argument("results", nargs="+", help="results.json written by `regionedit eval`")
    p.add_argument("-o", "--output", help="Markdown file to write (default: print)")
    args = p.parse_args(argv)
    runs = [json.loads(Path(f).read_text()) for f in args.results]
    try:
        text = render_markdown(runs[0]) if len(runs) == 1 else render_combined(runs)
    except ValueError as e:
        p.error(str(e))
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

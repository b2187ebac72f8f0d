"""Instruction parsing on a held-out set: does the describer get the operation, target and content right?

    python benchmarks/describe.py [--describer ID_OR_FOLDER] [--data benchmarks/data/describe_heldout.jsonl]
                                  [--show-misses] [--json]

The data is one JSON object a line: {"instruction", "operation", "target", "content", "source"}; operation is
one of add, remove, replace, recolor, resize, move, attribute, background, global; target / content are short
noun phrases or null. The set was written blind to the grammar it tests (real instructions quoted from public
edit datasets and demos, the source named in "source", and the rest written in the same styles).

The describer is loaded through the library's public API: ``regionedit.describe.TemplateDescriber()`` by
default, or ``regionedit.describe.LMDescriber.from_pretrained(ID_OR_FOLDER)`` with --describer. Each
instruction is passed to ``d(instruction)``; the result's ``.operation``, ``.target`` and ``.content`` are
scored (``.error`` is reported with the misses). An exception counts as a miss on all three fields.

Matching rule for target and content (kept simple and strict):

1. Normalise: lowercase; drop a possessive "'s"; turn every other non-alphanumeric character into a space;
   split into words; drop the determiners / possessives a, an, the, some, this, that, these, those, his, her,
   its, their, my, your, our (unless that would leave nothing, e.g. the pronoun "her" alone); lemmatise each
   word with ``lemminflect.getLemma(word, upos="NOUN")`` (first lemma), falling back to the word itself.
   An empty string counts as null. For the background operation a target that normalises to exactly
   "background" counts as null (the schema allows either).
2. null matches only null.
3. Otherwise the two word sequences match when they are equal, or when the shorter one (>= 1 word) is the
   head noun phrase of the longer one: the longer one starts with the shorter one and continues with a
   preposition / relative word (in, on, at, of, from, to, with, near, next, behind, ...), e.g. "the yacht"
   matches "the yacht in the image". Nothing else matches (no synonyms, no dropped adjectives).

Operation accuracy is exact string equality. Prints overall accuracies, all-three-correct accuracy,
per-operation accuracies, a confusion table (gold rows, predicted columns) and, with --show-misses, every
instruction with at least one wrong field. --json prints the figures as one JSON object instead.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict

from lemminflect import getLemma

OPERATIONS = ("add", "remove", "replace", "recolor", "resize", "move", "attribute", "background", "global")
DETERMINERS = frozenset("a an the some this that these those his her its their my your our".split())
HEAD_BREAKS = frozenset(
    "in on at of from to with near next behind under over above below beside between by for into onto "
    "inside outside around across along against toward towards that which who where".split()
)


def normalise(text):
    """Word tuple for ``text`` per the module docstring, or None for null / empty."""
    if text is None:
        return None
    s = str(text).lower()
    s = re.sub(r"['\u2019]s\b", "", s)
    s = re.sub(r"[^0-9a-z]+", " ", s)
    words = s.split()
    if not words:
        return None
    kept = [w for w in words if w not in DETERMINERS] or words
    out = []
    for w in kept:
        lemmas = getLemma(w, upos="NOUN")
        out.append(lemmas[0] if lemmas else w)
    return tuple(out)


def phrases_match(gold, pred, background_target=False):
    g, p = normalise(gold), normalise(pred)
    if background_target:
        g = None if g == ("background",) else g
        p = None if p == ("background",) else p
    if g is None or p is None:
        return g is None and p is None
    if g == p:
        return True
    short, long_ = (g, p) if len(g) < len(p) else (p, g)
    return len(short) >= 1 and long_[: len(short)] == short and long_[len(short)] in HEAD_BREAKS


def load_rows(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            row = json.loads(line)
            if row.get("operation") not in OPERATIONS:
                raise SystemExit(f"{path}:{n}: unknown operation {row.get('operation')!r}")
            rows.append(row)
    return rows


def load_describer(ident):
    if ident is None:
        from regionedit.describe import TemplateDescriber

        return TemplateDescriber(), "TemplateDescriber"
    try:
        from regionedit.describe import LMDescriber  # only when asked for: it may not exist yet
    except ImportError as e:
        raise SystemExit(f"--describer needs regionedit.describe.LMDescriber, which cannot be imported: {e}")
    return LMDescriber.from_pretrained(ident), f"LMDescriber({ident})"


def evaluate(describer, rows):
    results = []
    for row in rows:
        try:
            d = describer(row["instruction"])
            pred = {"operation": getattr(d, "operation", None), "target": getattr(d, "target", None),
                    "content": getattr(d, "content", None), "error": getattr(d, "error", None)}
        except Exception as e:  # noqa: BLE001 -- a crash is a miss, reported with the misses
            pred = {"operation": None, "target": None, "content": None, "error": f"{type(e).__name__}: {e}"}
        op_ok = pred["operation"] == row["operation"]
        results.append({
            "row": row,
            "pred": pred,
            "operation": op_ok,
            "target": phrases_match(row["target"], pred["target"], background_target=row["operation"] == "background"),
            "content": phrases_match(row["content"], pred["content"]),
        })
    return results


def summarise(results, name, data):
    n = len(results)
    acc = lambda rs, k: (sum(r[k] for r in rs) / len(rs)) if rs else 0.0  # noqa: E731
    by_op = defaultdict(list)
    for r in results:
        by_op[r["row"]["operation"]].append(r)
    confusion = {op: dict(Counter(str(r["pred"]["operation"]) for r in by_op[op])) for op in OPERATIONS}
    return {
        "describer": name,
        "data": data,
        "n": n,
        "operation_accuracy": acc(results, "operation"),
        "target_accuracy": acc(results, "target"),
        "content_accuracy": acc(results, "content"),
        "all_three_accuracy": (sum(r["operation"] and r["target"] and r["content"] for r in results) / n) if n else 0.0,
        "errors": sum(1 for r in results if r["pred"]["error"]),
        "per_operation": {
            op: {"n": len(by_op[op]), "operation": acc(by_op[op], "operation"),
                 "target": acc(by_op[op], "target"), "content": acc(by_op[op], "content")}
            for op in OPERATIONS
        },
        "confusion": confusion,
    }


def misses(results):
    out = []
    for r in results:
        if r["operation"] and r["target"] and r["content"]:
            continue
        row, pred = r["row"], r["pred"]
        out.append({
            "instruction": row["instruction"],
            "wrong": [k for k in ("operation", "target", "content") if not r[k]],
            "gold": {k: row[k] for k in ("operation", "target", "content")},
            "pred": pred,
        })
    return out


def print_text(s, miss_list):
    print(f"describer: {s['describer']}   data: {s['data']}   n={s['n']}   errors={s['errors']}")
    print(f"operation accuracy  {s['operation_accuracy']:.3f}")
    print(f"target accuracy     {s['target_accuracy']:.3f}")
    print(f"content accuracy    {s['content_accuracy']:.3f}")
    print(f"all three correct   {s['all_three_accuracy']:.3f}")
    print()
    print(f"{'operation':<11}{'n':>4}{'op':>8}{'target':>8}{'content':>9}")
    for op, v in s["per_operation"].items():
        print(f"{op:<11}{v['n']:>4}{v['operation']:>8.2f}{v['target']:>8.2f}{v['content']:>9.2f}")
    print()
    cols = list(OPERATIONS) + sorted({p for row in s["confusion"].values() for p in row} - set(OPERATIONS))
    short = {c: c[:6] for c in cols}
    print("confusion (rows gold, columns predicted)")
    print(f"{'':<11}" + "".join(f"{short[c]:>7}" for c in cols))
    for op in OPERATIONS:
        row = s["confusion"][op]
        print(f"{op:<11}" + "".join(f"{row.get(c, 0) or '.':>7}" for c in cols))
    if miss_list is not None:
        print()
        print(f"misses ({len(miss_list)})")
        for m in miss_list:
            g, p = m["gold"], m["pred"]
            print(f"- {m['instruction']!r}  [{', '.join(m['wrong'])}]")
            print(f"    gold: {g['operation']} | {g['target']!r} | {g['content']!r}")
            err = f"   error: {p['error']}" if p["error"] else ""
            print(f"    pred: {p['operation']} | {p['target']!r} | {p['content']!r}{err}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--describer", default=None, help="LMDescriber id or folder (default: TemplateDescriber)")
    p.add_argument("--data", default="benchmarks/data/describe_heldout.jsonl")
    p.add_argument("--show-misses", action="store_true", help="list every instruction with a wrong field")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    a = p.parse_args(argv)

    rows = load_rows(a.data)
    describer, name = load_describer(a.describer)
    results = evaluate(describer, rows)
    s = summarise(results, name, a.data)
    miss_list = misses(results) if a.show_misses else None
    if a.json:
        if miss_list is not None:
            s["misses"] = miss_list
        json.dump(s, sys.stdout)
        print()
    else:
        print_text(s, miss_list)


if __name__ == "__main__":
    main()

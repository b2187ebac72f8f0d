"""The README's results table is a copy of docs/results.md (written by `regionedit eval`): they must agree."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _first_table_after(text: str, heading: str) -> list[dict]:
    """Rows of the first markdown table after ``heading``, as {column header: cell}."""
    lines = text[text.index(heading):].splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("|"))
    rows = []
    for l in lines[start:]:
        if not l.startswith("|"):
            break
        rows.append([c.strip() for c in l.strip().strip("|").split("|")])
    header, body = rows[0], [r for r in rows[2:]]
    return [dict(zip(header, r)) for r in body]


def test_readme_results_table_matches_docs_results():
    readme = _first_table_after((ROOT / "README.md").read_text(), "### Results on the shapes protocol")
    text = (ROOT / "docs" / "results.md").read_text()
    docs = {r["method"]: r for r in _first_table_after(text, "## shapes")}
    for r in _first_table_after(text, "## Seeds side by side"):  # the seed methods' rows (one table of several runs)
        docs.setdefault(r["method"], r)
    assert len(readme) >= 5
    for row in readme:
        method = row["method"].split()[0]
        assert method in docs, f"README row {row['method']!r} has no method {method!r} in docs/results.md"
        shared = [c for c in row if c != "method" and c in docs[method]]
        assert len(shared) >= 8
        for c in shared:
            assert row[c] == docs[method][c], f"{method} {c}: README {row[c]} != docs/results.md {docs[method][c]}"


def _readme_commands() -> list[str]:
    """Every `regionedit ...` command in the README's bash blocks (continuation lines joined, comments cut)."""
    import re

    text = (ROOT / "README.md").read_text()
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" # ")[0].strip()
            if line.startswith("regionedit "):
                cmds.append(line)
    return cmds


def test_readme_commands_parse():
    """Each README command is accepted by the CLI's own parser (flags and values exist), without running it."""
    import shlex

    from regionedit.cli.main import build_parser

    cmds = _readme_commands()
    assert any("--generator" in c and "--localizer clipseg:" in c for c in cmds)  # the real-model example
    parser = build_parser()
    for cmd in cmds:
        try:
            parser.parse_args(shlex.split(cmd)[1:])
        except SystemExit as e:  # argparse's error exit
            raise AssertionError(f"README command does not parse: {cmd}") from e

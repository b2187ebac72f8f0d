"""``regionedit eval --write-cards`` (regionedit.evaluation.cards): measured rows go into the trained methods'
weights folders (quality.json + the card's "Measured quality" section), merged across runs, never repeated, never
into the package's bundled weights by accident. And ``python -m regionedit.evaluation.report`` of several runs: one
side-by-side table of comparable runs only."""

from __future__ import annotations

import json

import pytest

from regionedit.evaluation.cards import QUALITY_FILE, SECTION, write_cards


def _results(folder, rows: dict[str, float], command: str) -> dict:
    return {"command": command, "created": "2026-12-03T00:00:00+0000",
            "metric_labels": {"region_iou": {"label": "IoU"}, "edit_success": {"label": "success"}},
            "methods": {name: {"weights": str(folder), "steps": 12} for name in rows} | {"oracle": {"steps": 12}},
            "settings": {"shapes": {"methods": {
                **{name: {"n": 200, "metrics": {"region_iou": iou, "edit_success": iou / 2, "dino": None}}
                   for name, iou in rows.items()},
                "oracle": {"n": 200, "metrics": {"region_iou": 1.0}}}}}}


def test_rows_recorded_merged_and_replaced(tmp_path):
    folder = tmp_path / "adaptedit"
    folder.mkdir()
    (folder / "README.md").write_text("# AdaptEdit\n\n## Training\n\n- steps: 3\n")
    (folder / "config.json").write_text('{"a": 1}\n')
    assert write_cards(_results(folder, {"adaptedit": 0.4, "adaptedit-compose": 0.41}, "eval A")) == [folder]
    assert write_cards(_results(folder, {"adaptedit-no_gate": 0.3}, "eval B")) == [folder]
    assert write_cards(_results(folder, {"adaptedit": 0.5}, "eval C")) == [folder]  # measured again: replaced
    q = json.loads((folder / QUALITY_FILE).read_text())
    assert q["rows"]["adaptedit"]["shapes"] == {"region_iou": 0.5, "edit_success": 0.25, "n": 200}
    assert set(q["rows"]) == {"adaptedit", "adaptedit-compose", "adaptedit-no_gate"}
    assert q["commands"] == {"adaptedit/shapes": "eval C", "adaptedit-compose/shapes": "eval A",
                             "adaptedit-no_gate/shapes": "eval B"}
    other = _results(folder, {"adaptedit": 0.2}, "eval MB")  # another protocol's setting: kept beside shapes
    other["settings"] = {"single-turn": other["settings"]["shapes"]}
    write_cards(other)
    q = json.loads((folder / QUALITY_FILE).read_text())
    assert set(q["rows"]["adaptedit"]) == {"shapes", "single-turn"} and q["rows"]["adaptedit"]["shapes"]["region_iou"] == 0.5
    assert q["commands"]["adaptedit/single-turn"] == "eval MB" and q["commands"]["adaptedit/shapes"] == "eval C"
    card = (folder / "README.md").read_text()
    assert card.count(SECTION) == 1 and card.startswith("# AdaptEdit") and "- steps: 3" in card
    assert "| adaptedit | shapes | 200 | 0.500 | 0.250 |" in card and "| adaptedit-no_gate | shapes | 200 | 0.300" in card
    assert "| adaptedit | single-turn | 200 | 0.200 |" in card
    assert "    eval A" in card and "    eval C" in card and "    eval MB" in card
    assert (folder / "config.json").read_text() == '{"a": 1}\n'  # the method's own config is left alone
    assert not list(folder.glob("*.tmp"))


def test_a_world_models_own_measured_section_is_kept(tmp_path):
    """unet_ip2p's card has the world benchmark's "## Measured quality (held-out world data)"; the eval's section
    goes beside it, and a second write replaces only the eval's."""
    folder = tmp_path / "unet_ip2p"
    folder.mkdir()
    world = "## Measured quality (held-out world data)\n\n| metric | value |\n|---|---|\n| `edit_success` | 0 |\n"
    (folder / "README.md").write_text("# unet_ip2p\n\n" + world + "\n## Later\n\ntext\n")
    write_cards(_results(folder, {"instructpix2pix": 0.2}, "eval A"))
    write_cards(_results(folder, {"instructpix2pix": 0.6}, "eval B"))
    card = (folder / "README.md").read_text()
    assert world in card and "## Later\n\ntext" in card
    assert card.count(SECTION + "\n") == 1 and "| instructpix2pix | shapes | 200 | 0.600 |" in card and "0.200" not in card


def test_rows_without_weights_write_nothing(tmp_path):
    r = _results(tmp_path, {}, "eval")
    assert write_cards(r) == []


def test_refuses_the_bundled_weights_and_missing_folders(tmp_path):
    from regionedit.training.common import _bundled_dir

    bundled = _bundled_dir() / "no_such_method"  # a folder inside the bundle (refused before it is looked for)
    with pytest.raises(ValueError, match="--overwrite-bundled"):
        write_cards(_results(bundled, {"adaptedit": 0.4}, "eval"))
    with pytest.raises(FileNotFoundError, match="not a folder"):
        write_cards(_results(tmp_path / "gone", {"adaptedit": 0.4}, "eval"))
    assert not (bundled / QUALITY_FILE).exists()


def _run(command: str, rows: dict[str, float], seed: int = 20000, methods_res: str = "64") -> dict:
    return {"command": command, "config": {"protocol": "shapes", "seed": seed, "n": 200, "steps": 12, "guidance": 4.0,
                                           "data": {"images": "64x64"},
                                           "resolution": {"images": ["64x64"], "methods": {m: methods_res for m in rows}}},
            "metric_labels": {"region_iou": {"label": "IoU", "higher_is_better": True}},
            "metric_columns": {"overall": ["region_iou"]},
            "settings": {"shapes": {"methods": {m: {"n": 200, "metrics": {"region_iou": v}} for m, v in rows.items()}}}}


def test_report_combines_comparable_runs_and_refuses_others():
    from regionedit.evaluation.report import render_combined

    text = render_combined([_run("eval A", {"region": 0.8, "sdedit": None}),
                            _run("eval B", {"fireedit": 0.47, "region": 0.1}, methods_res="Lanczos")])
    lines = text.splitlines()
    assert lines[0] == "### shapes (N = 200, seed 20000, 12 steps, guidance 4.0)"
    assert [ln.split(" | ")[0] for ln in lines if ln.startswith("| ") and "---" not in ln][1:] == \
        ["| region", "| sdedit", "| fireedit"]  # run order; a method measured twice keeps its first place
    assert "| region | 200 | 0.100 |" in text and "0.800" not in text  # ... and shows its last measurement
    assert "| sdedit | 200 | n/a |" in text
    assert "    eval A" in text and "    eval B" in text
    with pytest.raises(ValueError, match=r"\['seed'\]"):
        render_combined([_run("eval A", {"region": 0.8}), _run("eval C", {"x": 0.1}, seed=1)])
    with pytest.raises(ValueError, match="no results"):
        render_combined([])


def test_report_command_line_combines(tmp_path, capsys):
    from regionedit.evaluation.report import main

    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    a.write_text(json.dumps(_run("eval A", {"region": 0.8})))
    b.write_text(json.dumps(_run("eval B", {"fireedit": 0.47})))
    c.write_text(json.dumps(_run("eval C", {"x": 0.1}, seed=1)))
    assert main([str(a), str(b), "-o", str(tmp_path / "t.md")]) == 0
    assert "| fireedit | 200 | 0.470 |" in (tmp_path / "t.md").read_text()
    with pytest.raises(SystemExit) as e:
        main([str(a), str(c)])
    assert e.value.code == 2 and "differ" in capsys.readouterr().err


def test_commands_of_an_older_quality_file_move_under_their_settings(tmp_path):
    folder = tmp_path / "fireedit"
    folder.mkdir()
    (folder / QUALITY_FILE).write_text(json.dumps({"rows": {"fireedit": {"shapes": {"edit_success": 0.01, "n": 200}}},
                                                   "commands": {"fireedit": "eval OLD"}, "created": "x"}))
    res = _results(folder, {"fireedit-compose": 0.4}, "eval NEW")
    write_cards(res)
    q = json.loads((folder / QUALITY_FILE).read_text())
    assert q["commands"] == {"fireedit/shapes": "eval OLD", "fireedit-compose/shapes": "eval NEW"}
    assert q["rows"]["fireedit"]["shapes"]["edit_success"] == 0.01

"""``regionedit eval --write-cards`` (regionedit.evaluation.cards): measured rows go into the trained methods'
weights folders (quality.json + the card's "Measured quality" section), merged across runs, never repeated, never
into the package's bundled weights by accident."""

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
    assert q["commands"] == {"adaptedit": "eval C", "adaptedit-compose": "eval A", "adaptedit-no_gate": "eval B"}
    card = (folder / "README.md").read_text()
    assert card.count(SECTION) == 1 and card.startswith("# AdaptEdit") and "- steps: 3" in card
    assert "| adaptedit | shapes | 200 | 0.500 | 0.250 |" in card and "| adaptedit-no_gate | shapes | 200 | 0.300" in card
    assert "    eval A" in card and "    eval C" in card
    assert (folder / "config.json").read_text() == '{"a": 1}\n'  # the method's own config is left alone
    assert not list(folder.glob("*.tmp"))


def test_rows_without_weights_write_nothing(tmp_path):
    r = _results(tmp_path, {}, "eval")
    assert write_cards(r) == []


def test_refuses_the_bundled_weights_and_missing_folders(tmp_path):
    from regionedit.training.common import _bundled_dir

    bundled = _bundled_dir() / "adaptedit"
    with pytest.raises(ValueError, match="--overwrite-bundled"):
        write_cards(_results(bundled, {"adaptedit": 0.4}, "eval"))
    with pytest.raises(FileNotFoundError, match="not a folder"):
        write_cards(_results(tmp_path / "gone", {"adaptedit": 0.4}, "eval"))
    assert not (bundled / QUALITY_FILE).exists()

"""MagicBrush's local descriptions: ``local_descriptions.json`` read into the records' ``local_caption`` (release
folder and parquet), written by the world's magicbrush export in the release's shape, and scored by the harness
as ``clip_t_local`` (MagicBrush's published CLIP-T) only on the samples that have one, beside ``clip_t``."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from regionedit.data import RECORD_KEYS, DataError, load_dataset, open_dataset
from regionedit.evaluation.harness import EvalConfig, EvalSample, aggregate, run_evaluation, sample_metrics
from regionedit.evaluation.metrics import FeatureExtractor
from regionedit.world import export as export_mod
from regionedit.world import sample_edit
from regionedit.world.export import export_dataset
from regionedit.world.language import background_phrase
from regionedit.world.tiny import save_tiny_models

torch.set_num_threads(1)

# ------------------------------------------------------------------------------------------------
# loader: the original release folder


def _write_release(root, local: dict | None):
    """Two sessions in MagicBrush's release layout: 139 with two turns, 30 with one (8x8 PNGs via PIL)."""
    rng = np.random.default_rng(0)
    sessions, captions = {}, {}
    for img_id, turns in (("139", 2), ("30", 1)):
        folder = root / "images" / img_id
        folder.mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"{img_id}-input.png")
        captions[img_id] = {f"{img_id}-input.png": f"global {img_id} input"}
        prev, sessions[img_id] = f"{img_id}-input.png", []
        for t in range(1, turns + 1):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"{img_id}-output{t}.png")
            Image.fromarray(((rng.random((8, 8)) < 0.5) * 255).astype(np.uint8)).save(folder / f"{img_id}-mask{t}.png")
            sessions[img_id].append({"input": prev, "output": f"{img_id}-output{t}.png", "mask": f"{img_id}-mask{t}.png",
                                     "instruction": f"edit {img_id} turn {t}"})
            captions[img_id][f"{img_id}-output{t}.png"] = f"global {img_id} output {t}"
            prev = f"{img_id}-output{t}.png"
    (root / "edit_sessions.json").write_text(json.dumps(sessions))
    (root / "global_descriptions.json").write_text(json.dumps(captions))
    if local is not None:
        (root / "local_descriptions.json").write_text(json.dumps(local))
    return root


LOCAL = {"139": {"139-output1.png": "a red umbrella", "139-output2.png": "a dog wearing a hat"},
         "30": {"30-output1.png": "a slice of pizza"}}


def test_release_folder_records_carry_the_local_description_of_each_turns_output(tmp_path):
    root = _write_release(tmp_path / "mb", LOCAL)
    ds = load_dataset(root)
    assert ds.layout == "folder" and len(ds) == 3
    recs = list(ds)
    assert all(tuple(r) == RECORD_KEYS for r in recs)
    assert [r["id"] for r in recs] == ["139-1", "139-2", "30-1"]
    assert [r["local_caption"] for r in recs] == ["a red umbrella", "a dog wearing a hat", "a slice of pizza"]
    # the global descriptions are still the captions, unchanged
    assert [r["target_caption"] for r in recs] == ["global 139 output 1", "global 139 output 2", "global 30 output 1"]
    assert ds[1]["source_caption"] == "global 139 output 1"
    # the training data layer's samples of the release folder carry it too
    assert [s.local_caption for s in open_dataset(root)] == ["a red umbrella", "a dog wearing a hat", "a slice of pizza"]


def test_release_folder_without_the_file_or_an_entry_gives_none(tmp_path):
    root = _write_release(tmp_path / "none", None)
    assert [r["local_caption"] for r in load_dataset(root)] == [None, None, None]
    assert [r["target_caption"] for r in load_dataset(root)][2] == "global 30 output 1"
    partial = {"139": {"139-output2.png": "a dog wearing a hat"}}  # no entry for 139 turn 1 nor for 30
    root = _write_release(tmp_path / "partial", partial)
    assert [r["local_caption"] for r in load_dataset(root)] == [None, "a dog wearing a hat", None]


@pytest.mark.parametrize("content, says", [
    ("[1, 2]", "must map img_id"),
    ('{"139": ["a red umbrella"]}', "img_id '139'"),
    ('{"139": {"139-output1.png": 3}}', "'139' / '139-output1.png' must be a string"),
    ("{not json", "not valid JSON"),
])
def test_malformed_local_descriptions_name_the_file_and_the_fix(tmp_path, content, says):
    root = _write_release(tmp_path / "bad", None)
    (root / "local_descriptions.json").write_text(content)
    with pytest.raises(DataError) as e:
        load_dataset(root)
    msg = str(e.value)
    assert says in msg and str(root / "local_descriptions.json") in msg and "remove it" in msg


# ------------------------------------------------------------------------------------------------
# exporter: the world's magicbrush export writes the release's shape


SEED, N = 11, 8  # categories: remove, add, absent, absent, add, remove, add, color


def test_world_export_writes_local_descriptions_for_every_edited_turn(tmp_path):
    samples = [sample_edit(SEED, i) for i in range(N)]
    assert [s.category for s in samples] == ["remove", "add", "absent", "absent", "add", "remove", "add", "color"]
    out = export_dataset(tmp_path / "mb", N, SEED, "magicbrush", progress=False, chunk_size=3)
    local = json.loads((out / "local_descriptions.json").read_text())
    expected = {f"{SEED}_{i:09d}": {f"{SEED}_{i:09d}-output1.png": s.local_description()}
                for i, s in enumerate(samples) if s.category != "absent"}
    assert local == expected and len(local) == 6  # the two absent referents have no entry
    assert not (out / "_local_descriptions").exists()
    info = json.loads((out / "dataset_info.json").read_text())
    assert len(info["files"]) == 3 and "local_descriptions.json" in info["local_descriptions"]
    # the ground truth's wording: the removed object's place shows the target background; a recoloured
    # object is named with its new colour, its shape and size unchanged
    assert samples[0].local_description() == background_phrase(samples[0].target_scene.background)
    color = samples[7]
    (old,) = [o for o in color.source_scene.objects if o not in color.target_scene.objects]
    new = color.edit["color"]
    assert color.local_description() == ("an " if new[0] in "aeiou" else "a ") + f"{old.size} {new} {old.shape}"
    assert samples[2].local_description() is None
    # the loader reads them back for the parquet rows ("<img_id>-output<turn_index>.png")
    recs = list(load_dataset(out))
    assert [r["local_caption"] for r in recs] == [s.local_description() for s in samples]
    assert [r["local_caption"] is None for r in recs] == [False, False, True, True, False, False, False, False]


def test_interrupted_export_resumes_with_every_chunks_descriptions(tmp_path, monkeypatch):
    whole = export_dataset(tmp_path / "whole", N, SEED, "magicbrush", progress=False, chunk_size=3)
    real, calls = export_mod._write_parquet_chunk, []

    def dies_on_the_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(export_mod, "_write_parquet_chunk", dies_on_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        export_dataset(tmp_path / "resumed", N, SEED, "magicbrush", progress=False, chunk_size=3)
    assert not (tmp_path / "resumed").exists()
    monkeypatch.setattr(export_mod, "_write_parquet_chunk", real)
    calls.clear()
    resumed = export_dataset(tmp_path / "resumed", N, SEED, "magicbrush", progress=False, chunk_size=3)
    assert (resumed / "local_descriptions.json").read_text() == (whole / "local_descriptions.json").read_text()


# ------------------------------------------------------------------------------------------------
# harness: clip_t_local only where there is a local description


def _colour_ext() -> FeatureExtractor:
    """Image embedding = mean RGB in [0, 1]; colour words -> unit axes (hand-checkable cosines)."""
    table = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "yellow": (1.0, 1.0, 0.0)}
    return FeatureExtractor("mean-rgb", embed_images=lambda x: x.mean(dim=(2, 3)),
                            embed_texts=lambda texts: torch.tensor([table[t] for t in texts]))


def _solid(rgb) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (4, 4, 3)).copy()


def _eval_sample(i: int, target_caption: str, local_caption: str | None) -> EvalSample:
    red = _solid((255, 0, 0))
    return EvalSample(i, f"s{i}", red, red, None, "edit", None, "yellow", target_caption, "yellow", target_caption,
                      {}, local_caption=local_caption)


def test_clip_t_local_scores_only_samples_with_a_local_caption():
    ext = _colour_ext()
    red = _solid((255, 0, 0))
    samples = [_eval_sample(0, "yellow", "red"), _eval_sample(1, "red", "green"), _eval_sample(2, "green", None)]
    mets = [sample_metrics("magicbrush", s, red, None, "edited", {"clip": ext}) for s in samples]
    # red image: cos with "red" = 1, with "green" = 0, with "yellow" = 1/sqrt(2)
    assert [m["clip_t_local"] for m in mets[:2]] == pytest.approx([1.0, 0.0], abs=1e-7)
    assert mets[2]["clip_t_local"] is None
    assert [m["clip_t"] for m in mets] == pytest.approx([2 ** -0.5, 1.0, 0.0], abs=1e-7)
    # the other protocols do not report it
    assert "clip_t_local" not in sample_metrics("emu", samples[0], red, None, "edited", {"clip": ext})
    # aggregation: the sample without a local caption is not counted (0.5 over 2, not 1/3 over 3)
    recs = [{"method": "m", "status": "edited", "metrics": m, "seconds": 1.0, "category": None} for m in mets]
    summary = aggregate(recs, "magicbrush", ["m"])["m"]
    assert summary["n"] == 3
    assert summary["metrics"]["clip_t_local"] == pytest.approx(0.5) and summary["counts"]["clip_t_local"] == 2
    assert summary["metrics"]["clip_t"] == pytest.approx((2 ** -0.5 + 1.0) / 3) and summary["counts"]["clip_t"] == 3


def test_magicbrush_run_reports_global_and_local_clip_t_labelled(tmp_path):
    tiny = save_tiny_models(tmp_path / "tiny", region_bias=3.0)
    data = export_dataset(tmp_path / "mb", 4, 4, "magicbrush", progress=False)  # absent, absent, size, size
    out = tmp_path / "eval"
    res = run_evaluation(EvalConfig(protocol="magicbrush", data=data, out=out, methods=["oracle"], n=4, steps=2,
                                    model=str(tiny), dino=None), progress=False)
    for setting in ("single-turn", "multi-turn"):
        m = res["settings"][setting]["methods"]["oracle"]
        assert m["n"] == 4 and m["counts"]["clip_t"] == 4 and m["counts"]["clip_t_local"] == 2
        absent = m["categories"]["absent"]
        assert absent["counts"]["clip_t"] == 2 and "clip_t_local" not in absent["metrics"]
        assert m["categories"]["size"]["counts"]["clip_t_local"] == 2
    assert res["metric_columns"]["overall"] == ["l1", "l2", "clip_i", "dino", "clip_t", "clip_t_local", "seconds"]
    assert res["metric_labels"]["clip_t"]["label"] == "CLIP-T(global)"
    assert res["metric_labels"]["clip_t_local"]["label"] == "CLIP-T(local)"
    assert "not MagicBrush's published CLIP-T" in res["metric_definitions"]["clip_t"]
    assert "local_descriptions.json" in res["metric_definitions"]["clip_t_local"]
    md = (out / "results.md").read_text()
    assert "| CLIP-T(global) ↑ | CLIP-T(local) ↑ |" in md

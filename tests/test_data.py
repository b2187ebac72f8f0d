"""Exporting the shapes world and loading datasets back (ours and the published layouts)."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image

import regionedit.world.export as export_mod
from regionedit.cli.main import main
from regionedit.data import RECORD_KEYS, decode_mask, detect_format, load_dataset
from regionedit.world.export import EMU_TASKS, export_dataset
from regionedit.world import sample_edit

N, SEED = 12, 3


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _random_image(rng: np.random.Generator, h: int = 16, w: int = 16) -> np.ndarray:
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def samples():
    return [sample_edit(SEED, i) for i in range(N)]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    return {
        fmt: export_dataset(root / fmt, N, SEED, fmt, progress=False, chunk_size=5)
        for fmt in ("magicbrush", "emu", "pairs")
    }


# ------------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize("fmt", ["magicbrush", "emu", "pairs"])
def test_round_trip(fmt, exports, samples):
    out = exports[fmt]
    assert detect_format(out) == fmt
    info = json.loads((out / "dataset_info.json").read_text())
    assert (info["format"], info["n"], info["seed"], info["size"]) == (fmt, N, SEED, 64)
    assert info["generator"]["package"] == "regionedit" and info["command"]
    assert all((out / f).is_file() for f in info["files"]) and len(info["files"]) == 3  # 5 + 5 + 2
    assert not list(out.parent.glob(f".{fmt}.*")), "temporary folders left behind"

    ds = load_dataset(out)
    assert ds.fmt == fmt and len(ds) == N and ds.info == info
    records = list(ds)
    assert len(records) == N
    for i, (rec, s) in enumerate(zip(records, samples)):
        assert tuple(rec) == RECORD_KEYS
        assert rec["source"].dtype == np.uint8 and np.array_equal(rec["source"], s.source)
        assert rec["source_caption"] == s.source_caption
        if fmt == "pairs":
            assert rec["id"] == f"{i:09d}"
            assert rec["target"] is None and rec["mask"] is None and rec["instruction"] is None
            assert rec["metadata"]["scene"] == s.source_scene.to_dict()
            continue
        assert np.array_equal(rec["target"], s.target)
        assert rec["mask"].dtype == bool and np.array_equal(rec["mask"], s.mask)
        assert rec["instruction"] == s.instruction and rec["category"] == s.category
        assert rec["target_caption"] == s.target_caption
        meta = rec["metadata"]
        assert meta["source_scene"] == s.source_scene.to_dict()
        assert meta["target_scene"] == s.target_scene.to_dict()
        assert meta["edit"] == json.loads(json.dumps(s.edit))
        assert (meta["seed"], meta["index"], meta["size"]) == (SEED, i, 64)
        assert rec["id"] == (f"{SEED}_{i:09d}-1" if fmt == "magicbrush" else str(i))

    # random access agrees with iteration, across chunk and row-group boundaries
    for i in (0, 4, 5, 11, -1):
        assert np.array_equal(ds[i]["source"], records[i]["source"])
        assert ds[i]["id"] == records[i]["id"]
    assert [r["id"] for r in ds[3:7]] == [r["id"] for r in records[3:7]]
    with pytest.raises(IndexError):
        ds[N]


def test_magicbrush_columns_and_hf_loading(exports, samples, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    mb = datasets.load_dataset(str(exports["magicbrush"]), cache_dir=str(tmp_path / "cache"))["train"]
    assert mb.column_names == [
        "img_id", "turn_index", "source_img", "mask_img", "instruction", "target_img", "metadata"
    ]
    assert isinstance(mb.features["source_img"], datasets.Image)
    row = mb[2]
    assert row["turn_index"] == 1 and row["instruction"] == samples[2].instruction
    assert np.array_equal(np.asarray(row["source_img"]), samples[2].source)
    mask = np.asarray(row["mask_img"])
    assert mask.shape == (64, 64, 3) and set(np.unique(mask)) <= {0, 255}  # RGB white = edit
    assert np.array_equal(mask[..., 0] == 255, samples[2].mask)

    emu = datasets.load_dataset(str(exports["emu"]), cache_dir=str(tmp_path / "cache"))["test"]
    for name in ("idx", "image", "instruction", "task", "hash", "input_caption", "output_caption"):
        assert name in emu.column_names
    row = emu[4]
    assert row["idx"] == 4 and row["task"] == EMU_TASKS[samples[4].category]
    assert row["hash"] == hashlib.sha256(samples[4].source.tobytes()).hexdigest()
    assert row["input_caption"] == samples[4].source_caption


def test_pairs_shards_read_with_webdataset(exports, samples):
    import webdataset as wds

    shards = sorted(str(p) for p in exports["pairs"].glob("pairs-*.tar"))
    assert [p.rsplit("/", 1)[1] for p in shards] == ["pairs-000000.tar", "pairs-000001.tar", "pairs-000002.tar"]
    items = list(wds.WebDataset(shards, shardshuffle=False, empty_check=False).decode("rgb8"))
    assert [x["__key__"] for x in items] == [f"{i:09d}" for i in range(N)]
    assert np.array_equal(items[6]["png"], samples[6].source)
    assert items[6]["txt"] == samples[6].source_caption


# ------------------------------------------------------------------------------------------------
# safety: overwrite, atomicity, resume, bad arguments


def test_refuses_to_overwrite(tmp_path):
    out = tmp_path / "ds"
    export_dataset(out, 3, 0, "pairs", progress=False)
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_dataset(out, 3, 1, "pairs", progress=False)
    assert json.loads((out / "dataset_info.json").read_text())["seed"] == 0  # untouched
    export_dataset(out, 4, 1, "pairs", progress=False, overwrite=True)
    assert json.loads((out / "dataset_info.json").read_text())["seed"] == 1 and len(load_dataset(out)) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        export_dataset(other, 3, 0, "emu", progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    export_dataset(empty, 2, 0, "emu", progress=False)  # an empty folder is fine
    assert len(load_dataset(empty)) == 2


def test_interrupted_export_leaves_nothing_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    real = export_mod.sample_edit
    calls: list[int] = []

    def failing(seed, index, size=64):
        if index == 7:
            raise RuntimeError("interrupted")
        return real(seed, index, size)

    monkeypatch.setattr(export_mod, "sample_edit", failing)
    with pytest.raises(RuntimeError, match="interrupted"):
        export_dataset(out, 12, SEED, "magicbrush", progress=False, chunk_size=5)
    assert not out.exists()
    partial = tmp_path / ".ds.partial"
    assert (partial / "data" / "train-00000-of-00003.parquet").is_file()

    def counting(seed, index, size=64):
        calls.append(index)
        return real(seed, index, size)

    monkeypatch.setattr(export_mod, "sample_edit", counting)
    export_dataset(out, 12, SEED, "magicbrush", progress=False, chunk_size=5)
    assert calls == list(range(5, 12)), "the finished first chunk was not reused"
    assert not partial.exists()
    ds = load_dataset(out)
    assert [r["instruction"] for r in ds] == [sample_edit(SEED, i).instruction for i in range(12)]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown export format"):
        export_dataset(tmp_path / "a", 3, 0, "coco", progress=False)
    with pytest.raises(ValueError, match="positive integer"):
        export_dataset(tmp_path / "a", 0, 0, "emu", progress=False)
    with pytest.raises(ValueError, match="cannot tell the format"):
        detect_format(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown dataset format"):
        load_dataset(tmp_path, fmt="coco")


# ------------------------------------------------------------------------------------------------
# command line


def test_cli_make_and_show(tmp_path, capsys):
    out = tmp_path / "emu"
    argv = ["world", "make", "--n", "6", "--seed", "1", "--out", str(out), "--format", "emu", "--no-progress"]
    assert main(argv) == 0
    ds = load_dataset(out)
    assert len(ds) == 6 and ds.fmt == "emu"
    assert np.array_equal(ds[5]["source"], sample_edit(1, 5).source)
    assert ds.info["command"].startswith("regionedit world make --n 6 --seed 1")
    capsys.readouterr()

    assert main(argv) == 2  # refuses to overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main(argv + ["--overwrite", "--size", "32"]) == 0
    assert load_dataset(out)[0]["source"].shape == (32, 32, 3)

    grid = tmp_path / "grid.png"
    assert main(["world", "show", "--seed", "2", "--n", "4", "--size", "64", "--out", str(grid)]) == 0
    with Image.open(grid) as im:
        assert im.mode == "RGB" and im.width >= 2 * 3 * 64


# ------------------------------------------------------------------------------------------------
# the published layouts


def test_decode_mask_conventions():
    white = np.zeros((4, 4, 3), np.uint8)
    white[1:3, 1:3] = 255
    assert np.array_equal(decode_mask(_png(white)), white[..., 0] == 255)
    grey = white[..., 0]
    assert np.array_equal(decode_mask(_png(grey, "L")), grey == 255)
    rgba = np.full((4, 4, 4), 255, np.uint8)
    rgba[0, :, 3] = 0  # transparent = edit (DALL-E style)
    assert np.array_equal(decode_mask(_png(rgba, "RGBA")), rgba[..., 3] == 0)


def test_original_magicbrush_folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "MagicBrush" / "dev"
    sessions, captions, truth = {}, {}, []
    for img_id, turns in (("242679", 2), ("7851", 1)):
        folder = root / "images" / img_id
        folder.mkdir(parents=True)
        current = _random_image(rng)
        (folder / f"{img_id}-input.png").write_bytes(_png(current))
        sessions[img_id], captions[img_id] = [], {f"{img_id}-input.png": f"photo {img_id}"}
        prev = f"{img_id}-input.png"
        for t in range(1, turns + 1):
            out_img = _random_image(rng)
            mask = rng.random((16, 16)) < 0.3
            (folder / f"{img_id}-output{t}.png").write_bytes(_png(out_img))
            if t == 1:  # white-on-black RGB mask
                rgb = np.repeat(mask[..., None], 3, -1).astype(np.uint8) * 255
                (folder / f"{img_id}-mask{t}.png").write_bytes(_png(rgb))
            else:  # RGBA mask, transparent where the edit goes
                rgba = np.concatenate([out_img, np.where(mask, 0, 255).astype(np.uint8)[..., None]], -1)
                (folder / f"{img_id}-mask{t}.png").write_bytes(_png(rgba, "RGBA"))
            sessions[img_id].append(
                {"input": prev, "output": f"{img_id}-output{t}.png", "mask": f"{img_id}-mask{t}.png",
                 "instruction": f"edit {img_id} turn {t}"}
            )
            captions[img_id][f"{img_id}-output{t}.png"] = f"photo {img_id} after {t}"
            truth.append((f"{img_id}-{t}", current, out_img, mask))
            prev, current = f"{img_id}-output{t}.png", out_img
    (root / "edit_sessions.json").write_text(json.dumps(sessions))
    (root / "global_descriptions.json").write_text(json.dumps(captions))

    assert detect_format(root) == "magicbrush"
    ds = load_dataset(root)
    assert ds.layout == "folder" and len(ds) == 3
    for rec, (rid, src, tgt, mask) in zip(ds, truth):
        assert tuple(rec) == RECORD_KEYS and rec["id"] == rid
        assert np.array_equal(rec["source"], src) and np.array_equal(rec["target"], tgt)
        assert np.array_equal(rec["mask"], mask)
        assert rec["instruction"] == f"edit {rid.replace('-', ' turn ')}"
        assert rec["category"] is None
    assert ds[1]["source_caption"] == "photo 242679 after 1" and ds[1]["target_caption"] == "photo 242679 after 2"
    assert ds[2]["metadata"] == {"img_id": "7851", "turn_index": 1}


def _write_hf_parquet(path, features, columns):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pydict(columns, schema=features.arrow_schema), path)


def test_magicbrush_hf_parquet_with_splits(tmp_path):
    from datasets import Features, Image as HFImage, Value

    rng = np.random.default_rng(1)
    features = Features({
        "img_id": Value("string"), "turn_index": Value("int32"), "source_img": HFImage(),
        "mask_img": HFImage(), "instruction": Value("string"), "target_img": HFImage(),
    })
    truth = {}
    for split, n in (("train", 3), ("dev", 2)):
        cols = {k: [] for k in features}
        for i in range(n):
            src, tgt = _random_image(rng), _random_image(rng)
            mask = rng.random((16, 16)) < 0.5
            cols["img_id"].append(f"{split}{i}")
            cols["turn_index"].append(i + 1)
            cols["source_img"].append({"bytes": _png(src), "path": None})
            cols["mask_img"].append({"bytes": _png((mask * 255).astype(np.uint8), "L"), "path": None})
            cols["instruction"].append(f"{split} instruction {i}")
            cols["target_img"].append({"bytes": _png(tgt), "path": None})
            truth[f"{split}{i}-{i + 1}"] = (src, tgt, mask)
        _write_hf_parquet(tmp_path / "data" / f"{split}-00000-of-00001.parquet", features, cols)

    assert detect_format(tmp_path) == "magicbrush"
    assert len(load_dataset(tmp_path)) == 5
    dev = load_dataset(tmp_path, split="dev")
    assert [r["id"] for r in dev] == ["dev0-1", "dev1-2"]
    for rec in dev:
        src, tgt, mask = truth[rec["id"]]
        assert np.array_equal(rec["source"], src) and np.array_equal(rec["target"], tgt)
        assert np.array_equal(rec["mask"], mask)
        assert rec["category"] is None and rec["source_caption"] is None
        assert rec["metadata"]["img_id"] == rec["id"].split("-")[0]


def test_emu_edit_hf_parquet(tmp_path):
    from datasets import Features, Image as HFImage, Value

    rng = np.random.default_rng(2)
    features = Features({
        "idx": Value("int64"), "image": HFImage(), "instruction": Value("string"),
        "task": Value("string"), "split": Value("string"), "hash": Value("string"),
        "input_caption": Value("string"), "output_caption": Value("string"),
    })
    images = [_random_image(rng, 24, 32) for _ in range(3)]
    tasks = ["background", "global", "remove"]
    cols = {
        "idx": [10, 11, 12],
        "image": [{"bytes": _png(im), "path": None} for im in images],
        "instruction": ["make it night", "turn it into a painting", "remove the dog"],
        "task": tasks,
        "split": ["test"] * 3,
        "hash": ["h0", "h1", "h2"],
        "input_caption": ["a park", "a street", "a dog on grass"],
        "output_caption": ["a park at night", "a painting of a street", "grass"],
    }
    path = tmp_path / "emu" / "data" / "test-00000-of-00001.parquet"
    _write_hf_parquet(path, features, cols)

    for where in (tmp_path / "emu", path):
        assert detect_format(where) == "emu"
        ds = load_dataset(where)
        assert ds.fmt == "emu" and len(ds) == 3
        rec = ds[2]
        assert np.array_equal(rec["source"], images[2]) and rec["source"].shape == (24, 32, 3)
        assert rec["target"] is None and rec["mask"] is None
        assert rec["category"] == "remove" and rec["id"] == "12"
        assert (rec["source_caption"], rec["target_caption"]) == ("a dog on grass", "grass")
        assert rec["metadata"] == {"idx": 12, "task": "remove", "hash": "h2", "split": "test"}

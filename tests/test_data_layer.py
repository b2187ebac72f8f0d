"""The data layer (regionedit.data.open_dataset) and `regionedit train region --data` on every layout.

Fixtures: the shapes world's exports (MagicBrush-schema parquet, Emu-schema parquet, WebDataset pairs) and
scikit-image photos (astronaut, chelsea, coffee, rocket, downscaled 4x: still four different sizes) with
synthetic masks and instructions, written as a `datasets` save_to_disk folder (MagicBrush schema), InstructPix2Pix
parquet (no masks: the region comes from |target - source|), an imagefolder with metadata.jsonl, images with
.txt captions, and WebDataset shards of edit pairs.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from regionedit.data import DataError, Sample, load_dataset, mask_from_difference, open_dataset

PHOTOS = {  # name -> (caption, instruction, box as fractions (top, left, bottom, right), tint)
    "astronaut": ("an astronaut in a white suit with a flag", "make the flag green", (0.05, 0.55, 0.45, 0.95), (0, 200, 0)),
    "chelsea": ("a ginger cat on a rug", "turn the cat blue", (0.2, 0.2, 0.9, 0.7), (0, 0, 255)),
    "coffee": ("a cup of coffee on a saucer", "make the saucer red", (0.5, 0.1, 0.95, 0.9), (255, 0, 0)),
    "rocket": ("a rocket on a launch pad with a tower", "paint the rocket yellow", (0.1, 0.35, 0.95, 0.6), (255, 255, 0)),
}


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def photos():
    """name -> (image, target, mask, caption, instruction): the photo downscaled 4x, the box tinted in the target."""
    from skimage import data

    out = {}
    for name, (cap, ins, (t, l, b, r), tint) in PHOTOS.items():
        img = getattr(data, name)()
        img = np.asarray(Image.fromarray(img).resize((img.shape[1] // 4, img.shape[0] // 4), Image.BICUBIC))
        h, w = img.shape[:2]
        mask = np.zeros((h, w), bool)
        mask[int(t * h):int(b * h), int(l * w):int(r * w)] = True
        target = img.copy()
        target[mask] = (0.4 * img[mask] + 0.6 * np.array(tint)).astype(np.uint8)
        out[name] = (img, target, mask, cap, ins)
    return out


@pytest.fixture(scope="module")
def layouts(photos, tmp_path_factory):
    """layout name -> path, for every layout the data layer reads (photos and world exports)."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    from regionedit.world.export import export_dataset

    root = tmp_path_factory.mktemp("layouts")
    paths = {}
    for fmt in ("magicbrush", "emu", "pairs"):
        paths[f"world-{fmt}"] = export_dataset(root / f"world-{fmt}", 12, 3, fmt, progress=False, chunk_size=5)
    names = list(photos)
    # a datasets save_to_disk folder in MagicBrush's schema
    feats = datasets.Features({"img_id": datasets.Value("string"), "turn_index": datasets.Value("int32"),
                               "source_img": datasets.Image(), "mask_img": datasets.Image(),
                               "instruction": datasets.Value("string"), "target_img": datasets.Image()})
    cols = {"img_id": names, "turn_index": [1] * 4,
            "source_img": [{"bytes": png(photos[n][0]), "path": None} for n in names],
            "mask_img": [{"bytes": png(photos[n][2].astype(np.uint8) * 255), "path": None} for n in names],
            "instruction": [photos[n][4] for n in names],
            "target_img": [{"bytes": png(photos[n][1]), "path": None} for n in names]}
    datasets.Dataset.from_dict(cols, features=feats).save_to_disk(str(root / "hf-magicbrush"))
    paths["hf-magicbrush"] = root / "hf-magicbrush"
    # InstructPix2Pix parquet (hub layout data/train-*.parquet), no masks
    ip2p = datasets.Features({"original_prompt": datasets.Value("string"), "original_image": datasets.Image(),
                              "edit_prompt": datasets.Value("string"), "edited_prompt": datasets.Value("string"),
                              "edited_image": datasets.Image()})
    table = pa.Table.from_pydict({
        "original_prompt": [photos[n][3] for n in names],
        "original_image": [{"bytes": png(photos[n][0]), "path": None} for n in names],
        "edit_prompt": [photos[n][4] for n in names],
        "edited_prompt": [photos[n][3] + ", edited" for n in names],
        "edited_image": [{"bytes": png(photos[n][1]), "path": None} for n in names]}, schema=ip2p.arrow_schema)
    (root / "ip2p" / "data").mkdir(parents=True)
    pq.write_table(table, root / "ip2p" / "data" / "train-00000-of-00001.parquet")
    paths["ip2p"] = root / "ip2p"
    # imagefolder + metadata.jsonl: caption pairs
    (root / "imagefolder").mkdir()
    with open(root / "imagefolder" / "metadata.jsonl", "w") as f:
        for n in names:
            Image.fromarray(photos[n][0]).save(root / "imagefolder" / f"{n}.png")
            f.write(json.dumps({"file_name": f"{n}.png", "text": photos[n][3]}) + "\n")
    paths["imagefolder"] = root / "imagefolder"
    # imagefolder of edit pairs: file_name + target_file_name + mask_file_name + instruction
    (root / "imagefolder-edits" / "img").mkdir(parents=True)
    with open(root / "imagefolder-edits" / "metadata.jsonl", "w") as f:
        for n in names:
            img, tgt, mask, cap, ins = photos[n]
            Image.fromarray(img).save(root / "imagefolder-edits" / "img" / f"{n}.png")
            Image.fromarray(tgt).save(root / "imagefolder-edits" / "img" / f"{n}_t.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / "imagefolder-edits" / "img" / f"{n}_m.png")
            f.write(json.dumps({"file_name": f"img/{n}.png", "target_file_name": f"img/{n}_t.png",
                                "mask_file_name": f"img/{n}_m.png", "instruction": ins, "caption": cap}) + "\n")
    paths["imagefolder-edits"] = root / "imagefolder-edits"
    # images with .txt captions (the seed-001 setting)
    (root / "captions").mkdir()
    for n in names:
        Image.fromarray(photos[n][0]).save(root / "captions" / f"{n}.jpg", quality=95)
        (root / "captions" / f"{n}.txt").write_text(photos[n][3] + "\n")
    paths["captions"] = root / "captions"
    # WebDataset shards of photo edit pairs, two samples per shard
    (root / "wds").mkdir()
    for k in range(2):
        with tarfile.open(root / "wds" / f"edits-{k:06d}.tar", "w") as tar:
            for n in names[2 * k:2 * k + 2]:
                img, tgt, mask, cap, ins = photos[n]
                for ext, data in (("source.png", png(img)), ("target.png", png(tgt)),
                                  ("mask.png", png(mask.astype(np.uint8) * 255)), ("instruction.txt", ins.encode()),
                                  ("txt", cap.encode())):
                    info = tarfile.TarInfo(f"{n}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    paths["wds-edits"] = root / "wds"
    return paths


EXPECTED = {  # layout -> (layout, schema, supervision of the first sample)
    "world-magicbrush": ("parquet", "magicbrush", {"caption", "instruction", "target", "mask"}),
    "world-emu": ("parquet", "emu", {"caption", "instruction", "target", "mask"}),
    "world-pairs": ("webdataset", "webdataset", {"caption"}),
    "hf-magicbrush": ("hf-disk", "magicbrush", {"instruction", "target", "mask"}),
    "ip2p": ("parquet", "instructpix2pix", {"caption", "instruction", "target"}),
    "imagefolder": ("imagefolder", "pairs", {"caption"}),
    "imagefolder-edits": ("imagefolder", "edits", {"caption", "instruction", "target", "mask"}),
    "captions": ("captions", "pairs", {"caption"}),
    "wds-edits": ("webdataset", "webdataset", {"caption", "instruction", "target", "mask"}),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_layout_opens_as_samples_of_its_supervision(layouts, photos, name):
    ds = open_dataset(layouts[name])
    layout, schema, sup = EXPECTED[name]
    assert (ds.layout, ds.schema) == (layout, schema)
    samples = list(ds)
    assert len(samples) == (12 if name.startswith("world") else 4)
    assert len({s.id for s in samples}) == len(samples)  # ids unique
    for s in samples:
        assert isinstance(s, Sample) and s.supervision == frozenset(sup)
        assert s.image.dtype == np.uint8 and s.image.ndim == 3 and s.image.shape[2] == 3
        if s.mask is not None:
            assert s.mask.dtype == bool and s.mask.shape == s.image.shape[:2]
    if not name.startswith("world"):  # pixels come back exactly (PNG) or close (JPEG captions folder)
        by_image = {n: p for n, p in photos.items()}
        for s in samples:
            n = next(n for n in by_image if by_image[n][0].shape == s.image.shape)
            err = np.abs(s.image.astype(int) - by_image[n][0]).mean()
            assert err < (6 if name == "captions" else 1e-9), (name, n, err)
            if "instruction" in sup:
                assert s.instruction == photos[n][4]
            if "mask" in sup:
                assert np.array_equal(s.mask, photos[n][2])


def test_region_from_the_pair_difference_when_there_is_no_mask(layouts, photos):
    ds = open_dataset(layouts["ip2p"])
    for s in ds:
        truth = next(p[2] for p in photos.values() if p[0].shape == s.image.shape)
        got = s.region()  # |target - source| > 32
        assert got.shape == truth.shape and (got & truth).sum() / (got | truth).sum() > 0.9
        assert np.array_equal(got, mask_from_difference(s.image, s.target, 32))
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0] = (0, 40, 0)
    b[1, 1] = (0, 0, 20)
    assert mask_from_difference(a, b).tolist() == [[True, False], [False, False]]  # 40 > 32 >= 20


@pytest.mark.parametrize("split", ["samples", "units"])
def test_streams_split_by_rank_disjoint_and_complete_and_deterministic(layouts, split):
    ds = open_dataset(layouts["world-magicbrush"])
    everything = sorted(s.id for s in ds)
    for epoch_take in (1, 2):
        per_rank = []
        for r in range(2):
            st = ds.stream(rank=r, world_size=2, seed=5, split=split, shuffle_buffer=4)
            per_rank.append([next(st).id for _ in range(sum(1 for _ in ds.stream(rank=r, world_size=2, seed=5, split=split, loop=False)) * epoch_take)])
        for ids in per_rank:
            first = ids[:len(ids) // epoch_take]
            assert len(set(first)) == len(first)  # no repeat within an epoch
        epoch0 = [ids[:len(ids) // epoch_take] for ids in per_rank]
        assert not set(epoch0[0]) & set(epoch0[1]) and sorted(epoch0[0] + epoch0[1]) == everything
    again = ds.stream(rank=1, world_size=2, seed=5, split=split, shuffle_buffer=4)
    assert [next(again).id for _ in range(len(per_rank[1]))] == per_rank[1]  # same seed, same order
    other = ds.stream(rank=1, world_size=2, seed=6, split=split, shuffle_buffer=4)
    assert [next(other).id for _ in range(len(per_rank[1]))] != per_rank[1]


def test_stream_resumes_exactly_and_workers_split_each_rank(layouts):
    ds = open_dataset(layouts["world-pairs"])
    st = ds.stream(rank=0, world_size=1, seed=2, shuffle_buffer=8)
    ids = [next(st).id for _ in range(17)]  # into the second epoch
    mid = ds.stream(rank=0, world_size=1, seed=2, shuffle_buffer=8)
    head = [next(mid).id for _ in range(7)]
    state = mid.state_dict()
    assert state == {"epoch": 0, "offset": 7}
    resumed = ds.stream(rank=0, world_size=1, seed=2, shuffle_buffer=8, state=state)
    assert head + [next(resumed).id for _ in range(10)] == ids
    assert sorted(ids[:12]) == sorted(s.id for s in ds) and ids[12:17] != ids[:5]  # each epoch complete, reshuffled
    # rank x worker: a DataLoader with 2 workers on each of 2 ranks reads every sample once per epoch
    from torch.utils.data import DataLoader

    seen = []
    for r in range(2):
        tds = ds.torch_dataset(rank=r, world_size=2, seed=2, loop=False, split="samples")
        seen += [s.id for batch in DataLoader(tds, batch_size=None, num_workers=2) for s in [batch]]
    assert sorted(seen) == sorted(s.id for s in ds)


def test_tar_shards_are_streamed_not_indexed(layouts, tmp_path):
    """A shard whose tail is cut off still yields its first samples before the error: nothing reads it whole."""
    shard = sorted(Path(layouts["world-pairs"]).glob("*.tar"))[0]
    data = shard.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 2])
    it = iter(open_dataset(cut))
    first = next(it)
    assert first.id == "000000000" and first.caption
    with pytest.raises(DataError, match="cut.tar"):
        list(it)


def test_splits_of_a_dataset_dict_and_evaluation_reads_the_same_layouts(layouts, photos, tmp_path):
    import datasets

    feats = datasets.Features({"image": datasets.Image(), "instruction": datasets.Value("string"),
                               "input_caption": datasets.Value("string"), "output_caption": datasets.Value("string"),
                               "task": datasets.Value("string"), "idx": datasets.Value("int64")})
    names = list(photos)

    def part(ns, base):
        return datasets.Dataset.from_dict({
            "image": [{"bytes": png(photos[n][0]), "path": None} for n in ns], "instruction": [photos[n][4] for n in ns],
            "input_caption": [photos[n][3] for n in ns], "output_caption": ["x"] * len(ns), "task": ["color"] * len(ns),
            "idx": list(range(base, base + len(ns)))}, features=feats)

    datasets.DatasetDict({"validation": part(names[:1], 0), "test": part(names[1:], 10)}).save_to_disk(str(tmp_path / "emu"))
    with pytest.raises(DataError, match="splits.*choose one"):
        open_dataset(tmp_path / "emu")
    test = open_dataset(tmp_path / "emu", split="test")
    assert test.schema == "emu" and [s.id for s in test] == ["10", "11", "12"] and test[0].category == "color"
    with pytest.raises(DataError, match="no split 'train'"):
        open_dataset(tmp_path / "emu", split="train")
    # evaluation's loader (random-access records) reads the new layouts through the same readers
    ev = load_dataset(layouts["hf-magicbrush"])
    assert ev.fmt == "magicbrush" and ev.layout == "hf-disk" and len(ev) == 4
    rec = ev[2]
    assert rec["instruction"] == photos[names[2]][4] and np.array_equal(rec["mask"], photos[names[2]][2])
    assert load_dataset(layouts["ip2p"]).fmt == "magicbrush" and load_dataset(layouts["captions"]).fmt == "pairs"


def test_clear_errors_name_the_file_and_the_fix(layouts, photos, tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    img = photos["chelsea"][0]
    # columns no schema knows
    pq.write_table(pa.table({"photo": [png(img)], "alt": ["a cat"]}), tmp_path / "odd.parquet")
    with pytest.raises(DataError, match=r"odd.parquet.*columns are \['alt', 'photo'\].*--columns image=photo"):
        open_dataset(tmp_path / "odd.parquet")
    ds = open_dataset(tmp_path / "odd.parquet", columns={"image": "photo", "caption": "alt"})  # the fix works
    assert next(iter(ds)).caption == "a cat"
    with pytest.raises(DataError, match="no column.*'picture'"):
        open_dataset(tmp_path / "odd.parquet", columns={"image": "picture"})
    with pytest.raises(DataError, match="missing the column.*target"):
        open_dataset(tmp_path / "odd.parquet", schema="magicbrush", columns={"image": "photo", "instruction": "alt"})
    # an unreadable image: the row and the fix
    pq.write_table(pa.table({"image": [png(img), b"not an image"], "text": ["a", "b"]}), tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad.parquet row group 0 row 1: the image is not a readable image.*re-encode"):
        list(open_dataset(tmp_path / "bad.parquet"))
    # a mask of another size than its image
    meta = tmp_path / "if" / "metadata.jsonl"
    meta.parent.mkdir()
    Image.fromarray(img).save(meta.parent / "a.png")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(meta.parent / "m.png")
    meta.write_text(json.dumps({"file_name": "a.png", "mask_file_name": "m.png", "instruction": "x"}) + "\n")
    with pytest.raises(DataError, match=r"metadata.jsonl row 1 \(a.png\): the mask is 5x5 but the source image is 112x75.*resize"):
        list(open_dataset(meta.parent))
    # a missing image file
    meta.write_text(json.dumps({"file_name": "gone.png", "text": "x"}) + "\n")
    with pytest.raises(DataError, match="gone.png cannot be read"):
        list(open_dataset(meta.parent))
    # images without captions
    (tmp_path / "nocap").mkdir()
    Image.fromarray(img).save(tmp_path / "nocap" / "a.png")
    with pytest.raises(DataError, match="no captions or metadata.*<name>.txt"):
        open_dataset(tmp_path / "nocap")
    # a hub id without the hub: how to get the data there
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="hub.*save_to_disk"):
        open_dataset("osunlp/MagicBrush")
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(tmp_path / "nowhere")


def test_mixed_sizes_in_a_batch_name_both_files_and_the_fix(layouts):
    from regionedit.training.data_sources import DatasetRegionData

    src = DatasetRegionData(data=layouts["captions"], seed=0)
    with pytest.raises(DataError, match=r"different sizes in one batch: .*\.jpg is \d+x\d+, .*\.jpg is \d+x\d+; pass --image-size"):
        src(4)
    fixed = DatasetRegionData(data=layouts["captions"], seed=0, image_size=24)
    x, exs = fixed(4)
    assert x.shape == (4, 3, 24, 24) and -1 <= x.min() and x.max() <= 1 and len(exs) == 4


def test_generic_caption_edits_come_from_the_text_alone():
    from regionedit.training.data_sources import generic_caption_example, noun_phrases

    cap = "an astronaut in a white suit with a flag"
    assert [" ".join(cap.split()[a:b]) for a, b in noun_phrases(cap)] == ["an astronaut", "a white suit", "a flag"]
    rng = np.random.default_rng(0)
    kinds = set()
    for _ in range(60):
        e = generic_caption_example(cap, rng, absent_prob=0.2)
        kinds.add(e.op)
        assert e.source == cap and e.instruction
        if e.op == "remove":
            removed = e.instruction.removeprefix("remove the ")
            assert removed in ("white suit", "flag") and removed not in e.target and e.referent is True
            assert e.proxy_fill == "estimate" and cap in e.negatives
        elif e.op == "absent":
            assert e.referent is False and e.clip_target == cap and e.instruction.split()[-1] not in cap.split()
        elif e.op == "replace":
            assert e.proxy_fill == "generate" and e.target != cap
        else:
            assert e.op == "add" and e.target.startswith(cap + " with ")
    assert kinds == {"remove", "replace", "add", "absent"}
    assert generic_caption_example("sunset", rng) is None  # no noun phrase: no edit (the sample is skipped)


def _steps(log: Path) -> list[int]:
    return [json.loads(line)["step"] for line in log.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from regionedit.world.tiny import save_tiny_models

    return save_tiny_models(tmp_path_factory.mktemp("tiny") / "m")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_train_region_on_every_layout_runs_and_resumes(layouts, tiny, tmp_path, name):
    from regionedit.cli.main import main as cli

    out = tmp_path / "run"
    args = ["train", "region", "--model", str(tiny), "--out", str(out), "--data", str(layouts[name]), "--batch", "2",
            "--gen-steps", "1", "--threads", "1", "--image-size", "32", "--log-every", "1", "--sample-log",
            "--eval-n", "2", "--no-progress", "--checkpoint-steps", "1"]
    assert cli(args + ["--max-steps", "2"]) == 0
    assert cli(args + ["--max-steps", "3"]) == 0
    assert _steps(out / "region" / "log.jsonl") == [1, 2, 3]
    folder = out / "export" / "region_predictor"
    state = json.loads((folder / "training_state.json").read_text())
    assert state["steps"] == 3 and state["samples_seen"] == 6 and state["data"]["layout"] == EXPECTED[name][0]
    edits = "mask" in EXPECTED[name][2] or "target" in EXPECTED[name][2]
    recs = [json.loads(line) for line in (out / "region" / "log.jsonl").read_text().splitlines()]
    assert all(("region" in r) == edits for r in recs)  # edit pairs supervise the region, captions do not
    assert ("region_iou" in state["quality"]) == edits and state["quality"]["samples"] == 2
    card = (folder / "README.md").read_text()
    assert str(layouts[name]) in card and "steps: 3" in card and "| `loss` |" in card
    # the resumed run read on exactly where the first stopped: the ids of one uninterrupted stream
    logged = [json.loads(line) for line in (out / "region" / "samples-rank0.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [1, 2, 3]
    if edits or name in ("imagefolder", "captions"):  # every sample gives an edit (none skipped): the stream's order
        stream = open_dataset(layouts[name]).stream(seed=0, shuffle_buffer=500)
        assert [i for r in logged for i in r["ids"]] == [next(stream).id for _ in range(6)]


def test_training_on_an_edit_pair_learns_its_region(layouts, tiny, tmp_path):
    """The region loss moves the predictor toward the true region (hand-checkable: IoU rises over 40 steps)."""
    from regionedit.cli.main import main as cli

    out = tmp_path / "run"
    args = ["train", "region", "--model", str(tiny), "--out", str(out), "--data", str(layouts["hf-magicbrush"]),
            "--batch", "4", "--gen-steps", "1", "--threads", "1", "--image-size", "32", "--log-every", "10",
            "--eval-n", "0", "--no-progress", "--lambda-m", "5", "--lr", "3e-3", "--max-steps", "40"]
    assert cli(args) == 0
    recs = [json.loads(line) for line in (out / "region" / "log.jsonl").read_text().splitlines()]
    assert recs[-1]["region"] < recs[0]["region"] and recs[-1]["region_iou"] > recs[0]["region_iou"]


@pytest.fixture
def stand_in_hub(layouts, monkeypatch):
    """``datasets.load_dataset("someone/photo-edits", split=..., streaming=True)`` answered from a local folder (the
    machine has no hub): the same IterableDataset (Image features, rows streamed) the hub's streaming returns."""
    import datasets

    real = datasets.load_dataset
    calls = []

    def load_dataset(path, *args, **kwargs):
        if path != "someone/photo-edits":
            return real(path, *args, **kwargs)
        calls.append(kwargs)
        return datasets.load_from_disk(str(layouts["hf-magicbrush"])).to_iterable_dataset()

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_a_hub_id_is_streamed_split_by_rank_and_trains(layouts, tiny, stand_in_hub, tmp_path):
    from regionedit.cli.main import main as cli

    ds = open_dataset("someone/photo-edits")
    assert stand_in_hub == [{"split": "train", "streaming": True}]  # streamed, never downloaded whole
    assert ds.layout == "hub" and ds.schema == "magicbrush" and ds.num_samples is None
    local = {s.id: s for s in open_dataset(layouts["hf-magicbrush"])}
    hub = list(ds)
    assert len(hub) == len(local) == 4
    for s in hub:  # the same samples (ids are row numbers on the hub: match by instruction)
        ref = next(r for r in local.values() if r.instruction == s.instruction)
        assert np.array_equal(s.image, ref.image) and np.array_equal(s.target, ref.target)
        assert np.array_equal(s.mask, ref.mask) and s.supervision == ref.supervision
    parts = [[s.instruction for s in ds.stream(rank=r, world_size=2, seed=1, loop=False)] for r in range(2)]
    assert not set(parts[0]) & set(parts[1]) and sorted(parts[0] + parts[1]) == sorted(s.instruction for s in hub)
    out = tmp_path / "run"
    args = ["train", "region", "--model", str(tiny), "--out", str(out), "--data", "someone/photo-edits", "--batch", "2",
            "--gen-steps", "1", "--threads", "1", "--image-size", "32", "--log-every", "1", "--eval-n", "0",
            "--no-progress", "--checkpoint-steps", "1"]
    assert cli(args + ["--max-steps", "2"]) == 0 and cli(args + ["--max-steps", "3"]) == 0
    assert _steps(out / "region" / "log.jsonl") == [1, 2, 3]
    state = json.loads((out / "export" / "region_predictor" / "training_state.json").read_text())
    assert state["data"]["layout"] == "hub" and state["steps"] == 3

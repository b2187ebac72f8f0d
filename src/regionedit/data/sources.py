"""Dataset layouts on disk (and on the hub), each read as *units* of raw rows that decode into samples.

A source lists its units (a parquet row group, a tar shard, a chunk of an Arrow table or of a metadata file) so
a stream can shuffle and split them across processes without reading them; rows stay raw (encoded bytes, paths)
until :meth:`Source.decode` turns one into a :class:`~regionedit.data.samples.Sample`, after the shuffle buffer
and the split. Layouts (see :func:`open_source` for the detection order):

- ``hf-disk``: a folder written by ``datasets.Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``
  (``state.json`` or ``dataset_dict.json``), read with ``datasets.load_from_disk`` (memory-mapped);
- ``parquet``: ``*.parquet`` files (a hub dataset's ``data/<split>-*.parquet``, our exports), read by row group;
- ``webdataset``: ``*.tar`` shards (``.tar.gz`` too; brace patterns ``shard-{000..009}.tar``), streamed member
  by member (never indexed or loaded whole); members grouped by key (the name up to the first dot);
- ``imagefolder``: a folder with ``metadata.jsonl`` (or ``metadata.csv``; also under ``<split>/``) whose
  ``file_name`` column names the image and ``<x>_file_name`` columns further images (column ``<x>``);
- ``captions``: a folder of images each with a same-named ``.txt`` caption (``cat.jpg`` + ``cat.txt``);
- ``magicbrush-release``: the original MagicBrush folder (``edit_sessions.json`` + ``images/``);
- ``hub``: a Hugging Face hub id, streamed with ``datasets.load_dataset(..., streaming=True)`` where reachable.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .samples import DataError, Sample
from .schemas import resolve_columns, row_to_sample

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
CHUNK = 256  # rows per unit of a random-access table (shuffle granularity before the buffer)


@dataclasses.dataclass
class Unit:
    """A piece of a dataset read in one go: ``rows()`` yields its raw rows in stored order; ``n`` when known."""

    name: str
    rows: Callable[[], Iterator[Any]]
    n: int | None = None


class Source:
    """Base of the layouts: ``units()``, ``decode(raw) -> Sample``; random access (``get(i)``) when ``indexed``."""

    layout = "?"
    schema = "?"
    indexed = False

    def __init__(self, location: str):
        self.location = location
        self.columns: list[str] = []
        self.num_samples: int | None = None
        self.mapping: dict[str, str] = {}

    def units(self) -> list[Unit]:
        raise NotImplementedError

    def decode(self, raw: Any) -> Sample:
        raise NotImplementedError

    def get(self, i: int) -> Sample:
        raise TypeError(f"{self.layout} data ({self.location}) is read as a stream, without random access")

    def describe(self) -> dict[str, Any]:
        return {"location": self.location, "layout": self.layout, "schema": self.schema, "columns": self.columns,
                "mapping": self.mapping, "num_samples": self.num_samples}


# ----------------------------------------------------------------------------------------------
# tables (parquet, Arrow on disk, metadata files, caption folders): rows are dicts of raw column values


class _TableSource(Source):
    """A table of rows read in chunks; ``_chunk(a, b)`` returns rows ``a..b-1`` (raw dicts)."""

    indexed = True

    def _setup(self, columns: list[str], schema: str | None, overrides: dict | None, where: str) -> None:
        self.columns = list(columns)
        self.schema, self.mapping = resolve_columns(self.columns, schema, overrides, where)

    def _origin(self, i: int) -> str:
        return f"{self.location} row {i}"

    def _base(self, i: int) -> Path | None:
        return None

    def _chunk(self, a: int, b: int) -> list[dict]:
        raise NotImplementedError

    def units(self) -> list[Unit]:
        n = self.num_samples or 0
        return [Unit(f"{self.location}[{a}:{min(n, a + CHUNK)}]", self._rows_fn(a, min(n, a + CHUNK)), min(n, a + CHUNK) - a)
                for a in range(0, n, CHUNK)]

    def _rows_fn(self, a: int, b: int):
        def rows():
            for k, row in enumerate(self._chunk(a, b)):
                yield (a + k, row)
        return rows

    def decode(self, raw) -> Sample:
        i, row = raw
        return row_to_sample(row, self.schema, self.mapping, self._origin(i), self._base(i), default_id=str(i))

    def get(self, i: int) -> Sample:
        return self.decode((i, self._chunk(i, i + 1)[0]))


class ParquetSource(_TableSource):
    """``*.parquet`` files; a unit is one row group (read in batches of 64 rows)."""

    layout = "parquet"

    def __init__(self, files: list[Path], location: str, schema=None, overrides=None):
        import pyarrow.parquet as pq

        super().__init__(location)
        self.files = files
        self._groups: list[tuple[int, int, int, int]] = []  # file, group, first global row, rows
        total = 0
        for fi, f in enumerate(files):
            try:
                meta = pq.ParquetFile(f).metadata
            except Exception as e:
                raise DataError(f"{f}: not a readable parquet file ({type(e).__name__}: {e}); re-download or "
                                "remove it") from None
            for g in range(meta.num_row_groups):
                rows = meta.row_group(g).num_rows
                self._groups.append((fi, g, total, rows))
                total += rows
        self.num_samples = total
        self._setup(pq.read_schema(files[0]).names, schema, overrides, str(files[0]))
        self._cache: tuple[int, list[dict]] | None = None

    def _origin(self, i: int) -> str:
        for fi, g, start, rows in self._groups:
            if start <= i < start + rows:
                return f"{self.files[fi]} row group {g} row {i - start}"
        return f"{self.location} row {i}"

    def _base(self, i: int) -> Path | None:
        return self.files[0].parent

    def _group_rows(self, gi: int) -> list[dict]:
        import pyarrow.parquet as pq

        if self._cache is None or self._cache[0] != gi:
            fi, g, _, _ = self._groups[gi]
            table = pq.ParquetFile(self.files[fi]).read_row_group(g)
            self._check(table.column_names, self.files[fi])
            self._cache = (gi, table.to_pylist())
        return self._cache[1]

    def _check(self, names, file) -> None:
        lack = [c for c in self.mapping.values() if c not in names]
        if lack:
            raise DataError(f"{file} lacks the column(s) {lack} that {self.files[0]} has; every parquet file of a "
                            "dataset needs the same columns: fix or remove that file")

    def _chunk(self, a: int, b: int) -> list[dict]:
        out = []
        for gi, (fi, g, start, rows) in enumerate(self._groups):
            if start + rows <= a or start >= b:
                continue
            part = self._group_rows(gi)
            out += part[max(a, start) - start:min(b, start + rows) - start]
        return out

    def units(self) -> list[Unit]:
        import pyarrow.parquet as pq

        def rows_of(fi, g, start):
            def rows():
                pf = pq.ParquetFile(self.files[fi])
                self._check(pf.schema_arrow.names, self.files[fi])
                k = start
                for batch in pf.iter_batches(batch_size=64, row_groups=[g]):
                    for row in batch.to_pylist():
                        yield (k, row)
                        k += 1
            return rows

        return [Unit(f"{self.files[fi].name}#{g}", rows_of(fi, g, start), rows) for fi, g, start, rows in self._groups]


class HFDiskSource(_TableSource):
    """A ``save_to_disk`` folder, read with ``datasets.load_from_disk`` (memory-mapped Arrow)."""

    layout = "hf-disk"

    def __init__(self, path: Path, split: str | None, schema=None, overrides=None):
        import datasets

        super().__init__(str(path))
        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            splits = list(ds.keys())
            if split is None:
                if "train" in ds:
                    split = "train"
                elif len(splits) == 1:
                    split = splits[0]
                else:
                    raise DataError(f"{path} holds the splits {splits}: choose one with split= (--split NAME)")
            if split not in ds:
                raise DataError(f"{path} has no split {split!r}; its splits are {splits}")
            ds = ds[split]
            self.location = f"{path} [{split}]"
        elif split is not None:
            raise DataError(f"{path} is a single dataset without splits: leave split out (--split)")
        self._ds = ds.with_format("arrow")  # raw cells: images stay {"bytes", "path"} structs, never decoded here
        self.num_samples = len(ds)
        self._path = path
        self._setup(ds.column_names, schema, overrides, str(path))

    def _base(self, i):
        return self._path

    def _chunk(self, a, b):
        return self._ds[a:b].to_pylist()


class ImageFolderSource(_TableSource):
    """``metadata.jsonl`` / ``metadata.csv`` beside the images: ``file_name`` is the image column ``image``,
    ``<x>_file_name`` an image column ``<x>``; paths relative to the metadata file's folder."""

    layout = "imagefolder"

    def __init__(self, meta_file: Path, schema=None, overrides=None):
        super().__init__(str(meta_file))
        self.meta_file = meta_file
        rows = []
        try:
            if meta_file.suffix == ".csv":
                with open(meta_file, newline="") as f:
                    rows = list(csv.DictReader(f))
            else:
                for k, line in enumerate(meta_file.read_text().splitlines(), 1):
                    if line.strip():
                        try:
                            obj = json.loads(line)
                        except ValueError as e:
                            raise DataError(f"{meta_file} line {k} is not JSON ({e}); fix or remove that line") from None
                        if not isinstance(obj, dict):
                            raise DataError(f"{meta_file} line {k} is not a JSON object of column values")
                        rows.append(obj)
        except UnicodeDecodeError as e:
            raise DataError(f"{meta_file} is not UTF-8 text ({e})") from None
        if not rows:
            raise DataError(f"{meta_file} has no rows")
        self._rows = [self._rename(r, k) for k, r in enumerate(rows)]
        cols: dict[str, None] = {}
        for r in self._rows[:100]:
            cols.update(dict.fromkeys(r))
        self.num_samples = len(self._rows)
        self._setup(list(cols), schema, overrides, str(meta_file))

    def _rename(self, row: dict, k: int) -> dict:
        out = {}
        for key, v in row.items():
            if key == "file_name":
                out["image"] = v
            elif key.endswith("_file_name"):
                out[key[: -len("_file_name")]] = v
            else:
                out[key] = v
        if "image" not in out and not any(key.endswith("file_name") for key in row):
            raise DataError(f"{self.meta_file} row {k + 1} has no file_name column (the image's path); every row of an "
                            "imagefolder's metadata names its image in file_name")
        return out

    def _origin(self, i):
        return f"{self.meta_file} row {i + 1} ({self._rows[i].get('image')})"

    def _base(self, i):
        return self.meta_file.parent

    def _chunk(self, a, b):
        return self._rows[a:b]


class CaptionFolderSource(_TableSource):
    """Images each with a same-named ``.txt`` caption (``a/cat.jpg`` + ``a/cat.txt``), in sorted path order."""

    layout = "captions"

    def __init__(self, root: Path, images: list[Path]):
        super().__init__(str(root))
        lacking = [p for p in images if not p.with_suffix(".txt").exists()]
        if lacking:
            names = ", ".join(str(p.relative_to(root)) for p in lacking[:3])
            raise DataError(f"{root}: {len(lacking)} of {len(images)} images have no caption file ({names}"
                            f"{', ...' if len(lacking) > 3 else ''}); write <name>.txt beside each image, or remove them")
        self.root = root
        self._images = images
        self.num_samples = len(images)
        self._setup(["image", "caption", "id"], "pairs", None, str(root))

    def _origin(self, i):
        return str(self._images[i])

    def _chunk(self, a, b):
        out = []
        for p in self._images[a:b]:
            out.append({"image": str(p), "caption": p.with_suffix(".txt").read_text(encoding="utf-8").strip(),
                        "id": str(p.relative_to(self.root).with_suffix(""))})
        return out


class MagicBrushReleaseSource(_TableSource):
    """The original MagicBrush release folder, through :mod:`regionedit.data.loaders`' reader."""

    layout = "magicbrush-release"

    def __init__(self, root: Path):
        from .loaders import _MagicBrushFolderReader

        super().__init__(str(root))
        self._reader = _MagicBrushFolderReader(root)
        self.num_samples = len(self._reader)
        self.schema, self.columns = "magicbrush", ["input", "output", "mask", "instruction"]
        self.mapping = {"image": "input", "target": "output", "mask": "mask", "instruction": "instruction"}

    def _chunk(self, a, b):
        return list(range(a, b))

    def decode(self, raw) -> Sample:
        i, idx = raw
        img_id, turn_index, _ = self._reader._turns[idx]
        origin = f"{self.location}/edit_sessions.json: {img_id} turn {turn_index}"
        try:
            rec = self._reader.record(idx)
        except FileNotFoundError as e:
            raise DataError(f"{origin}: {e}") from None
        return Sample.from_record(rec, origin)


# ----------------------------------------------------------------------------------------------
# WebDataset shards, streamed


# tar member extension -> sample field (first present wins); a ``.json`` member can also give texts
TAR_FIELDS: dict[str, tuple[str, ...]] = {
    "image": ("source.png", "source.jpg", "src.png", "src.jpg", "input.png", "input.jpg", "input_image.png",
              "input_image.jpg", "png", "jpg", "jpeg", "webp", "image.png", "image.jpg"),
    "target": ("target.png", "target.jpg", "tgt.png", "tgt.jpg", "edited.png", "edited.jpg", "output.png",
               "output.jpg", "edited_image.png", "edited_image.jpg"),
    "mask": ("mask.png", "mask.jpg", "mask_img.png"),
    "caption": ("txt", "caption.txt", "caption", "source.txt", "input.txt"),
    "instruction": ("instruction.txt", "instruction", "edit.txt", "edit_prompt.txt"),
    "target_caption": ("target.txt", "output.txt", "target_caption.txt"),
}
JSON_FIELDS = {"caption": ("caption", "source_caption", "text", "input_caption"),
               "instruction": ("instruction", "edit", "edit_prompt"),
               "target_caption": ("target_caption", "output_caption", "edited_prompt"),
               "category": ("category", "task")}


def iter_tar_samples(shard: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``(key, {extension: bytes})`` for each sample of a tar shard, streamed in stored order (tarfile's stream
    mode: one member in memory at a time; consecutive members with the same key form a sample)."""
    key, parts = None, {}
    try:
        with tarfile.open(shard, mode="r|*") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                dirname, base = os.path.split(m.name)
                if "." not in base or base.startswith("."):
                    continue
                stem, ext = base.split(".", 1)
                k = f"{dirname}/{stem}" if dirname else stem
                data = tar.extractfile(m).read()
                if k != key:
                    if key is not None:
                        yield key, parts
                    key, parts = k, {}
                parts[ext.lower()] = data
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{shard}: not a readable tar shard ({type(e).__name__}: {e}); re-download or remove it") from None
    if key is not None:
        yield key, parts


class TarSource(Source):
    """WebDataset shards; a unit is one shard, streamed (:func:`iter_tar_samples`)."""

    layout = "webdataset"

    def __init__(self, shards: list[Path], location: str, num_samples: int | None = None):
        super().__init__(location)
        self.shards = shards
        self.num_samples = num_samples
        self.schema = "webdataset"
        self.columns = []  # members are named per sample (<key>.<extension>): see TAR_FIELDS
        self.mapping = {f: "|".join(es[:4]) + ("|..." if len(es) > 4 else "") for f, es in TAR_FIELDS.items()}

    def units(self) -> list[Unit]:
        def rows_of(shard):
            def rows():
                for key, parts in iter_tar_samples(shard):
                    yield (shard, key, parts)
            return rows
        return [Unit(s.name, rows_of(s)) for s in self.shards]

    def decode(self, raw) -> Sample:
        from .samples import check_sizes, decode_image_at, decode_mask_at

        shard, key, parts = raw
        origin = f"{shard}: sample {key!r}"
        meta = {}
        if "json" in parts:
            try:
                meta = json.loads(parts["json"])
            except ValueError as e:
                raise DataError(f"{origin}: its .json member is not JSON ({e}); fix the shard or drop the sample") from None
            meta = meta if isinstance(meta, dict) else {"json": meta}

        def first(field):
            return next((parts[e] for e in TAR_FIELDS[field] if e in parts), None)

        img = first("image")
        if img is None:
            raise DataError(f"{origin} has no image member (one of .{', .'.join(TAR_FIELDS['image'][:8])}, ...); its "
                            f"members are {sorted(parts)}: add the image or drop the sample")
        texts = {}
        for field in ("caption", "instruction", "target_caption"):
            b = first(field)
            texts[field] = b.decode("utf-8").strip() if b is not None else None
        for field, keys in JSON_FIELDS.items():
            if not texts.get(field):
                texts[field] = next((str(meta[k]) for k in keys if isinstance(meta.get(k), str) and meta[k]), None)
        tgt, msk = first("target"), first("mask")
        s = Sample(id=key, image=decode_image_at(img, origin), caption=texts["caption"],
                   instruction=texts["instruction"],
                   target=decode_image_at(tgt, origin, "target") if tgt is not None else None,
                   target_caption=texts["target_caption"],
                   mask=decode_mask_at(msk, origin) if msk is not None else None,
                   category=texts.get("category"), metadata=meta, origin=origin)
        check_sizes(s)
        return s


# ----------------------------------------------------------------------------------------------
# the hub


class HubSource(Source):
    """A hub dataset streamed with ``datasets.load_dataset(id, split=..., streaming=True)``: one unit."""

    layout = "hub"

    def __init__(self, repo_id: str, split: str | None, schema=None, overrides=None):
        import datasets

        super().__init__(repo_id)
        split = split or "train"
        try:
            ds = datasets.load_dataset(repo_id, split=split, streaming=True)
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(
                f"{repo_id!r} is not a local path and could not be opened on the Hugging Face hub ({type(e).__name__}: "
                f"{first}). Where the hub is reachable, save it once: python -c \"import datasets; "
                f"datasets.load_dataset('{repo_id}', split='{split}').save_to_disk('DIR')\" (or `hf download "
                f"--repo-type dataset {repo_id} --local-dir DIR`), then pass DIR") from None
        feats = ds.features or {}
        for name, feat in feats.items():
            if isinstance(feat, datasets.Image):
                ds = ds.cast_column(name, datasets.Image(decode=False))
        self._ds = ds
        self.location = f"{repo_id} [{split}]"
        cols = list(feats) if feats else list(next(iter(ds)).keys())
        self.schema, self.mapping = resolve_columns(cols, schema, overrides, repo_id)
        self.columns = cols

    def units(self) -> list[Unit]:
        def rows():
            for k, row in enumerate(self._ds):
                yield (k, row)
        return [Unit(self.location, rows)]

    def decode(self, raw) -> Sample:
        k, row = raw
        return row_to_sample(row, self.schema, self.mapping, f"{self.location} row {k}", None, default_id=str(k))


# ----------------------------------------------------------------------------------------------
# detection


def _expand(pattern: str) -> list[str]:
    try:
        from braceexpand import braceexpand
    except ImportError:  # webdataset's dependency; without it only plain names
        return [pattern]
    return list(braceexpand(pattern))


def _visible(p: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in p.relative_to(root).parts)


def _tars(path: Path, split: str | None) -> list[Path]:
    found = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(TAR_SUFFIXES) and not p.name.startswith("."))
    if not found and split and (path / split).is_dir():
        found = _tars(path / split, None)
    elif split and found:
        found = [p for p in found if p.name.startswith(split)] or found
    return found


def _parquets(path: Path, split: str | None) -> list[Path]:
    from .loaders import _parquet_files

    return [f for f in _parquet_files(path, split) if _visible(f, path) or path.is_file()]


def _meta_file(path: Path, split: str | None) -> Path | None:
    dirs = ([path / split] if split else []) + [path]
    for d in dirs:
        for name in ("metadata.jsonl", "metadata.csv"):
            if (d / name).is_file():
                return d / name
    if split is None:
        for d in sorted(path.iterdir()):
            if d.is_dir() and (d / "metadata.jsonl").is_file() and d.name == "train":
                return d / "metadata.jsonl"
    return None


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return (len(parts) == 2 and all(parts) and not text.startswith((".", "~", "/"))
            and not any(p.endswith(TAR_SUFFIXES + (".parquet", ".jsonl")) for p in parts))


def open_source(path_or_id: str | os.PathLike, split: str | None = None, schema: str | None = None,
                columns: dict[str, str] | None = None) -> Source:
    """The :class:`Source` of a path or hub id, its layout detected in this order: a ``.parquet`` / tar file or
    brace pattern; a folder with ``state.json`` / ``dataset_dict.json`` (hf-disk), ``edit_sessions.json``
    (MagicBrush release), tar shards, ``metadata.jsonl`` / ``.csv`` (imagefolder), parquet files, images with
    ``.txt`` captions; else, for ``owner/name`` that is no local path, the hub."""
    text = os.fspath(path_or_id)
    if "{" in text and "}" in text:
        files = [Path(p) for p in _expand(text)]
        missing = [str(p) for p in files if not p.exists()]
        if missing:
            raise DataError(f"{len(missing)} shard(s) of {text} do not exist (first: {missing[0]}); check the pattern")
        return TarSource(files, text)
    path = Path(text).expanduser()
    if not path.exists():
        if _looks_like_hub_id(text):
            return HubSource(text, split, schema, columns)
        raise DataError(f"dataset path {path} does not exist (nor is {text!r} a hub id of the form owner/name)")
    if path.is_file():
        if path.name.endswith(TAR_SUFFIXES):
            return TarSource([path], str(path))
        if path.suffix == ".parquet":
            return ParquetSource([path], str(path), schema, columns)
        if path.name in ("metadata.jsonl", "metadata.csv"):
            return ImageFolderSource(path, schema, columns)
        raise DataError(f"{path} is a file but not .parquet, .tar or metadata.jsonl; pass the dataset folder instead")
    if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
        return HFDiskSource(path, split, schema, columns)
    if (path / "edit_sessions.json").exists():
        return MagicBrushReleaseSource(path)
    tars = _tars(path, split)
    if tars:
        from .loaders import _read_info

        info = _read_info(path)
        n = info.get("n") if info and info.get("format") == "pairs" and split is None else None
        return TarSource(tars, str(path), n)
    meta = _meta_file(path, split)
    if meta is not None:
        return ImageFolderSource(meta, schema, columns)
    parquets = _parquets(path, split)
    if parquets:
        return ParquetSource(parquets, str(path), schema, columns)
    images = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and _visible(p, path))
    if images:
        if not any(p.with_suffix(".txt").exists() for p in images):
            raise DataError(f"{path} holds {len(images)} images but no captions or metadata: nothing to train on. Add "
                            "<name>.txt beside each image (captions), or a metadata.jsonl with file_name and caption / "
                            "instruction columns (imagefolder)")
        return CaptionFolderSource(path, images)
    where = f" (split {split!r})" if split else ""
    raise DataError(f"cannot tell the layout of {path}{where}: expected a datasets save_to_disk folder (state.json), "
                    "*.tar shards, metadata.jsonl + images, *.parquet files, images with .txt captions, or the "
                    "MagicBrush release (edit_sessions.json)")

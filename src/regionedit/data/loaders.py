"""Load editing datasets from local files as plain records, whatever their layout.

:func:`load_dataset` reads our exports (:mod:`regionedit.world.export`) and the published layouts of
MagicBrush and Emu Edit when a user has them on disk. It never touches the network: it reads local
parquet files with ``pyarrow``, tar shards with ``tarfile`` and PNG/JPEG files with Pillow.

Every record is a plain ``dict`` with the same keys whatever the source (:data:`RECORD_KEYS`):

==================  ===========================================================================
``id``              str: ``"<img_id>-<turn>"`` (MagicBrush), ``str(idx)`` (Emu), the key (pairs)
``source``          ``(H, W, 3)`` uint8 RGB, the image to edit (the image of a text-image pair)
``target``          ``(H, W, 3)`` uint8 RGB edited image, or None (Emu Edit test set, pairs)
``mask``            ``(H, W)`` bool, True = edited region, or None when the data has no mask
``instruction``     str, or None (pairs)
``category``        str or None: our category (``regionedit.world.spec.CATEGORIES``) for our
                    exports, Emu's ``task`` for Emu Edit data, None for MagicBrush and pairs
``source_caption``  str or None (Emu ``input_caption``; MagicBrush ``global_descriptions.json``)
``target_caption``  str or None (Emu ``output_caption``; MagicBrush ``global_descriptions.json``)
``local_caption``   str or None: MagicBrush's local description of the turn's output image (what the edited
                    region shows; ``local_descriptions.json``, see :mod:`regionedit.data.descriptions`),
                    the text MagicBrush's published CLIP-T uses; None for the other formats and
                    when the file is absent or has no entry for the turn
``metadata``        dict: our ground truth (scene graphs, edit, seed, index) for our exports, or the
                    identifying fields of the published data (img_id/turn_index, idx/task/hash/split)
==================  ===========================================================================

Supported layouts (``fmt`` is detected from ``dataset_info.json`` or the files when not given):

- ``"magicbrush"``: a folder (or file) of parquet files with MagicBrush's columns ``img_id,
  turn_index, source_img, mask_img, instruction, target_img`` (HF ``osunlp/MagicBrush``, our export),
  or the original MagicBrush release folder: ``edit_sessions.json`` (``img_id -> [{"input",
  "output", "mask", "instruction"}, ...]``) next to ``images/<img_id>/<file>``. Either may have a
  ``local_descriptions.json`` in its root folder (``{img_id: {"<output file name>": text}}``; parquet
  rows look up ``"<img_id>-output<turn_index>.png"``).
- ``"emu"``: parquet files with Emu Edit's columns ``idx, image, instruction, task, input_caption,
  output_caption`` (and ``hash``, ``split``; HF ``facebook/emu_edit_test_set``, our export).
- ``"pairs"``: WebDataset tar shards with ``<key>.png``/``.jpg``, ``<key>.txt`` and optional
  ``<key>.json`` members (our ``pairs`` export, LAION-style shards).

Mask images are decoded with one rule: when the image has an alpha channel with any transparent pixel,
the transparent pixels (alpha < 128) are the edited region (DALL-E 2 style, which MagicBrush's
annotation tool used); otherwise pixels with grey level >= 128 are (white = edit, black = keep).
"""

from __future__ import annotations

import bisect
import functools
import io
import json
import os
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .descriptions import local_description, read_local_descriptions, turn_local_description
from .formats import FORMATS, INFO_FILE

RECORD_KEYS: tuple[str, ...] = (
    "id",
    "source",
    "target",
    "mask",
    "instruction",
    "category",
    "source_caption",
    "target_caption",
    "local_caption",
    "metadata",
)
_IMAGE_EXTS = ("png", "jpg", "jpeg", "webp")


# ----------------------------------------------------------------------------------------------
# decoding


def decode_image(data: bytes | Image.Image) -> np.ndarray:
    """Encoded image bytes (PNG, JPEG, ...) or a PIL image -> ``(H, W, 3)`` uint8 RGB."""
    img = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def decode_mask(data: bytes | Image.Image) -> np.ndarray:
    """A mask image -> ``(H, W)`` bool, True = edited region (rule in the module docstring)."""
    img = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        alpha = np.asarray(img.convert("RGBA"))[..., 3]
        if (alpha < 255).any():
            return alpha < 128
    return np.asarray(img.convert("L")) >= 128


def _record(**fields: Any) -> dict[str, Any]:
    rec = {k: None for k in RECORD_KEYS}
    rec.update(fields)
    return rec


def _cell_image(cell: Any, base: Path, mask: bool = False) -> np.ndarray | None:
    """Decode a ``datasets.Image`` cell ``{"bytes", "path"}`` (path relative to ``base``)."""
    if cell is None:
        return None
    data = cell.get("bytes") if isinstance(cell, dict) else cell
    if data is None:
        path = cell.get("path") if isinstance(cell, dict) else None
        if not path:
            return None
        data = (base / path).read_bytes()
    return decode_mask(data) if mask else decode_image(data)


def _our_metadata(row: dict[str, Any]) -> dict[str, Any] | None:
    text = row.get("metadata")
    return json.loads(text) if text else None


def _magicbrush_row(row: dict[str, Any], base: Path, local: dict | None = None) -> dict[str, Any]:
    """A MagicBrush parquet row; ``local``: the dataset's ``local_descriptions.json`` (or None)."""
    meta = _our_metadata(row)
    ours = meta is not None
    if not ours:
        meta = {"img_id": row.get("img_id"), "turn_index": row.get("turn_index")}
    return _record(
        id=f"{row.get('img_id')}-{row.get('turn_index')}",
        source=_cell_image(row.get("source_img"), base),
        target=_cell_image(row.get("target_img"), base),
        mask=_cell_image(row.get("mask_img"), base, mask=True),
        instruction=row.get("instruction"),
        category=meta.get("category") if ours else None,
        source_caption=meta.get("source_caption") if ours else None,
        target_caption=meta.get("target_caption") if ours else None,
        local_caption=turn_local_description(local, row.get("img_id"), row.get("turn_index")),
        metadata=meta,
    )


def _emu_row(row: dict[str, Any], base: Path) -> dict[str, Any]:
    meta = _our_metadata(row)
    ours = meta is not None
    if not ours:
        meta = {k: row[k] for k in ("idx", "task", "hash", "split") if k in row}
    return _record(
        id=str(row.get("idx")),
        source=_cell_image(row.get("image"), base),
        target=_cell_image(row.get("target_img"), base),
        mask=_cell_image(row.get("mask"), base, mask=True),
        instruction=row.get("instruction"),
        category=meta.get("category") if ours else row.get("task"),
        source_caption=row.get("input_caption"),
        target_caption=row.get("output_caption"),
        metadata=meta,
    )


# ----------------------------------------------------------------------------------------------
# readers: __len__ and record(i), plus a streaming __iter__


class _ParquetReader:
    """Random access by parquet row group (one decoded row group cached)."""

    def __init__(self, files: list[Path], fmt: str, local: dict | None = None):
        import pyarrow.parquet as pq

        self.files, self.fmt = files, fmt
        self._convert = functools.partial(_magicbrush_row, local=local) if fmt == "magicbrush" else _emu_row
        self._groups: list[tuple[int, int]] = []  # (file index, row group index)
        self._starts: list[int] = []
        total = 0
        for fi, f in enumerate(files):
            meta = pq.ParquetFile(f).metadata
            for g in range(meta.num_row_groups):
                self._groups.append((fi, g))
                self._starts.append(total)
                total += meta.row_group(g).num_rows
        self._len = total
        self._cache: tuple[int, list[dict]] | None = None

    def __len__(self) -> int:
        return self._len

    def _rows(self, group: int) -> list[dict[str, Any]]:
        import pyarrow.parquet as pq

        if self._cache is None or self._cache[0] != group:
            fi, g = self._groups[group]
            self._cache = (group, pq.ParquetFile(self.files[fi]).read_row_group(g).to_pylist())
        return self._cache[1]

    def record(self, i: int) -> dict[str, Any]:
        group = bisect.bisect_right(self._starts, i) - 1
        row = self._rows(group)[i - self._starts[group]]
        return self._convert(row, self.files[self._groups[group][0]].parent)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import pyarrow.parquet as pq

        for f in self.files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=256):
                for row in batch.to_pylist():
                    yield self._convert(row, f.parent)


class _TarReader:
    """WebDataset shards: members grouped by key (basename up to the first dot)."""

    def __init__(self, shards: list[Path]):
        self.shards = shards
        self._samples: list[tuple[int, str, dict[str, tuple[int, int]]]] = []  # shard, key, ext->loc
        for si, shard in enumerate(shards):
            with tarfile.open(shard, "r") as tar:
                current: tuple[int, str, dict] | None = None
                for m in tar:
                    if not m.isfile():
                        continue
                    dirname, base = os.path.split(m.name)
                    if "." not in base:
                        continue
                    stem, ext = base.split(".", 1)
                    key = f"{dirname}/{stem}" if dirname else stem
                    if current is None or current[1] != key:
                        current = (si, key, {})
                        self._samples.append(current)
                    current[2][ext.lower()] = (m.offset_data, m.size)

    def __len__(self) -> int:
        return len(self._samples)

    def _read(self, f, loc: tuple[int, int]) -> bytes:
        f.seek(loc[0])
        return f.read(loc[1])

    def _convert(self, f, key: str, parts: dict[str, tuple[int, int]]) -> dict[str, Any]:
        image_ext = next((e for e in _IMAGE_EXTS if e in parts), None)
        if image_ext is None:
            raise ValueError(f"sample {key!r} has no image member (.png/.jpg/.jpeg/.webp)")
        caption = self._read(f, parts["txt"]).decode("utf-8") if "txt" in parts else None
        meta = json.loads(self._read(f, parts["json"])) if "json" in parts else {}
        return _record(
            id=key,
            source=decode_image(self._read(f, parts[image_ext])),
            source_caption=caption,
            metadata=meta,
        )

    def record(self, i: int) -> dict[str, Any]:
        si, key, parts = self._samples[i]
        with open(self.shards[si], "rb") as f:
            return self._convert(f, key, parts)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        f, open_shard = None, -1
        try:
            for si, key, parts in self._samples:  # samples are stored shard by shard, in order
                if si != open_shard:
                    if f is not None:
                        f.close()
                    f, open_shard = open(self.shards[si], "rb"), si
                yield self._convert(f, key, parts)
        finally:
            if f is not None:
                f.close()


class _MagicBrushFolderReader:
    """The original MagicBrush release: ``edit_sessions.json`` + ``images/<img_id>/<file>``, with the optional
    ``global_descriptions.json`` (captions) and ``local_descriptions.json`` (``local_caption``), both keyed
    ``img_id -> image file name``."""

    def __init__(self, root: Path):
        self.root = root
        sessions = json.loads((root / "edit_sessions.json").read_text())
        if not isinstance(sessions, dict):
            raise ValueError(
                f"{root / 'edit_sessions.json'} must map img_id -> list of turns "
                '({"input", "output", "mask", "instruction"}), got a ' + type(sessions).__name__
            )
        self._turns = [
            (str(img_id), t + 1, turn) for img_id, turns in sessions.items() for t, turn in enumerate(turns)
        ]
        desc_file = root / "global_descriptions.json"
        self._captions = json.loads(desc_file.read_text()) if desc_file.exists() else {}
        self._local = read_local_descriptions(root)

    def __len__(self) -> int:
        return len(self._turns)

    def _file(self, img_id: str, name: str) -> bytes:
        for path in (self.root / "images" / img_id / name, self.root / "images" / name, self.root / name):
            if path.exists():
                return path.read_bytes()
        raise FileNotFoundError(
            f"MagicBrush image {name!r} of img_id {img_id!r} not found under {self.root / 'images'}"
        )

    def _caption(self, img_id: str, name: str) -> str | None:
        per_image = self._captions.get(img_id)
        return per_image.get(name) if isinstance(per_image, dict) else None

    def record(self, i: int) -> dict[str, Any]:
        img_id, turn_index, turn = self._turns[i]
        return _record(
            id=f"{img_id}-{turn_index}",
            source=decode_image(self._file(img_id, turn["input"])),
            target=decode_image(self._file(img_id, turn["output"])) if turn.get("output") else None,
            mask=decode_mask(self._file(img_id, turn["mask"])) if turn.get("mask") else None,
            instruction=turn.get("instruction"),
            source_caption=self._caption(img_id, turn["input"]),
            target_caption=self._caption(img_id, turn["output"]) if turn.get("output") else None,
            local_caption=local_description(self._local, img_id, turn["output"]) if turn.get("output") else None,
            metadata={"img_id": img_id, "turn_index": turn_index},
        )

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self.record(i)


# ----------------------------------------------------------------------------------------------
# the public API


class EditDataset(Sequence):
    """A read-only, random-access view of an edit dataset on disk; items are plain record dicts.

    ``len(ds)``, ``ds[i]`` (negative indices and slices too) and ``for rec in ds`` (streaming; memory
    stays bounded). Images are decoded on access, nothing is held in memory but the file index.

    Attributes:
        path: the folder or file that was loaded.
        fmt: ``"magicbrush"``, ``"emu"`` or ``"pairs"``.
        layout: ``"parquet"``, ``"folder"`` (original MagicBrush release) or ``"webdataset"``.
        info: the parsed ``dataset_info.json`` of our exports, else None.
    """

    def __init__(self, reader: Any, path: Path, fmt: str, layout: str, info: dict | None):
        self._reader, self.path, self.fmt, self.layout, self.info = reader, path, fmt, layout, info

    def __len__(self) -> int:
        return len(self._reader)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} records")
        return self._reader.record(i)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._reader)

    def __repr__(self) -> str:
        return f"EditDataset(path={str(self.path)!r}, fmt={self.fmt!r}, layout={self.layout!r}, len={len(self)})"


def _read_info(path: Path) -> dict | None:
    info_file = path / INFO_FILE if path.is_dir() else None
    if info_file is None or not info_file.exists():
        return None
    try:
        info = json.loads(info_file.read_text())
    except ValueError:
        return None
    return info if isinstance(info, dict) and info.get("format") in FORMATS else None


def _parquet_files(path: Path, split: str | None) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(
        f for f in path.rglob("*.parquet") if not any(p.startswith(".") for p in f.relative_to(path).parts)
    )
    if split is not None:
        files = [f for f in files if f.name.startswith(f"{split}-") or f.stem == split or f.parent.name == split]
    return files


def _tar_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(path.glob("*.tar"))


def _format_of_parquet(file: Path) -> str:
    import pyarrow.parquet as pq

    names = set(pq.read_schema(file).names)
    if {"source_img", "target_img"} <= names:
        return "magicbrush"
    if {"image", "instruction"} <= names and ({"task", "input_caption"} & names):
        return "emu"
    raise ValueError(
        f"cannot tell the format of {file}: its columns are {sorted(names)}; expected MagicBrush's "
        "(img_id, turn_index, source_img, mask_img, instruction, target_img) or Emu Edit's "
        "(idx, image, instruction, task, input_caption, output_caption)"
    )


def detect_format(path: str | os.PathLike) -> str:
    """The format of a dataset on disk: ``"magicbrush"``, ``"emu"`` or ``"pairs"``.

    Looks, in order, at ``dataset_info.json``, ``edit_sessions.json`` (original MagicBrush), ``*.tar``
    shards (pairs) and the columns of the first parquet file; then at the other layouts of
    :func:`regionedit.data.open_dataset` (``datasets`` ``save_to_disk`` folders, ``imagefolder`` + metadata,
    images with ``.txt`` captions, InstructPix2Pix columns...): edit pairs read as ``"magicbrush"`` (source,
    target, mask, instruction), Emu Edit columns as ``"emu"``, image + caption as ``"pairs"``.
    """
    try:
        return _detect_known(path)
    except FileNotFoundError:
        raise
    except ValueError as known:
        try:
            return _fmt_of_source(_general_source(path, None))
        except ValueError:
            raise known from None


def _general_source(path, split):
    from .sources import open_source

    return open_source(path, split)


def _fmt_of_source(source) -> str:
    """The record format a source of :mod:`regionedit.data.sources` reads as (see :func:`detect_format`)."""
    if source.schema == "emu":
        return "emu"
    if source.schema in ("magicbrush", "instructpix2pix", "edits") or "instruction" in source.mapping:
        return "magicbrush"
    return "pairs"


class _SourceReader:
    """Random access to a :mod:`regionedit.data.sources` source, as record dicts."""

    def __init__(self, source):
        if not source.indexed:
            raise ValueError(f"{source.location} ({source.layout}) has no random access; use regionedit.data.open_dataset")
        self.source = source

    def __len__(self) -> int:
        return self.source.num_samples

    def record(self, i: int) -> dict[str, Any]:
        return self.source.get(i).to_record()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for unit in self.source.units():
            for raw in unit.rows():
                yield self.source.decode(raw).to_record()


def _detect_known(path: str | os.PathLike) -> str:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset path {path} does not exist")
    if path.is_file():
        if path.suffix == ".parquet":
            return _format_of_parquet(path)
        if path.suffix == ".tar":
            return "pairs"
        raise ValueError(f"{path} is a file but not .parquet or .tar; pass the dataset folder instead")
    info = _read_info(path)
    if info is not None:
        return info["format"]
    if (path / "edit_sessions.json").exists():
        return "magicbrush"
    if _tar_files(path):
        return "pairs"
    parquets = _parquet_files(path, None)
    if parquets:
        return _format_of_parquet(parquets[0])
    raise ValueError(
        f"cannot tell the format of {path}: expected dataset_info.json, edit_sessions.json "
        "(original MagicBrush), *.tar shards or *.parquet files; pass fmt= explicitly or check the path"
    )


def load_dataset(path: str | os.PathLike, fmt: str | None = None, split: str | None = None) -> EditDataset:
    """Open a local edit dataset (our exports, MagicBrush, Emu Edit or text-image pairs).

    Args:
        path: a dataset folder, or a single ``.parquet``/``.tar`` file.
        fmt: ``"magicbrush"``, ``"emu"`` or ``"pairs"``; detected when None (:func:`detect_format`).
        split: only parquet files of this split (file name ``<split>-*.parquet`` or folder
            ``<split>/``), e.g. ``"dev"`` for MagicBrush or ``"test"`` for Emu Edit; None reads all.

    Returns:
        an :class:`EditDataset` of record dicts (keys :data:`RECORD_KEYS`, see the module docstring).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset path {path} does not exist")
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r}; choose one of {list(FORMATS)} or None to detect")
    try:
        known = _detect_known(path)
    except ValueError:
        known = None
    if known is None:  # a layout only the general reader knows (regionedit.data.sources)
        try:
            source = _general_source(path, split)
        except ValueError:
            detect_format(path)  # raises the known layouts' error
            raise
        found = _fmt_of_source(source)
        if fmt is not None and fmt != found:
            raise ValueError(f"{path} reads as {found!r} data ({source.layout}, {source.schema} columns), not {fmt!r}")
        return EditDataset(_SourceReader(source), path, found, source.layout, None)
    if fmt is None:
        fmt = known
    info = _read_info(path)
    if fmt == "pairs":
        shards = _tar_files(path)
        if not shards:
            raise ValueError(f"no *.tar shards in {path}; a 'pairs' dataset is a folder of WebDataset shards")
        return EditDataset(_TarReader(shards), path, fmt, "webdataset", info)
    if fmt == "magicbrush" and path.is_dir() and (path / "edit_sessions.json").exists():
        return EditDataset(_MagicBrushFolderReader(path), path, fmt, "folder", info)
    files = _parquet_files(path, split)
    if not files:
        where = f" of split {split!r}" if split else ""
        raise ValueError(f"no *.parquet files{where} under {path}; check the path (and split)")
    local = read_local_descriptions(path) if fmt == "magicbrush" and path.is_dir() else None
    return EditDataset(_ParquetReader(files, fmt, local), path, fmt, "parquet", info)

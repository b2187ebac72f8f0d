"""Export the shapes world as files in the layouts of the published editing datasets.

Sample ``i`` of an export is always ``regionedit.world.sample_edit(seed, i, size)``, so an export is
fully determined by ``(fmt, n, seed, size)`` and the package version recorded in ``dataset_info.json``.

Formats (``fmt``):

``magicbrush``
    A folder loadable with ``datasets.load_dataset(out_dir)`` (or ``load_dataset("parquet",
    data_files=...)``): ``data/train-XXXXX-of-YYYYY.parquet`` with MagicBrush's columns
    ``img_id`` (str, ``"<seed>_<index:09d>"``), ``turn_index`` (int32, always 1), ``source_img``
    (Image), ``mask_img`` (Image, RGB: white (255, 255, 255) = edited region, black = keep),
    ``instruction`` (str) and ``target_img`` (Image), plus our extra column ``metadata`` (below).
    Beside ``data/``, ``local_descriptions.json`` in the shape of MagicBrush's test / dev releases:
    ``{img_id: {"<img_id>-output1.png": local description}}`` (the key is the name MagicBrush gives a
    turn's output image; :func:`regionedit.data.formats.magicbrush_output_name`), the local description
    being :meth:`EditSample.local_description` (what the edited region shows in the target, from the
    ground truth). Absent-referent samples edit nothing and have no entry.
``emu``
    The Emu Edit test-set layout, ``data/test-XXXXX-of-YYYYY.parquet``, columns ``idx`` (int64, the
    sample index), ``image`` (Image, the source), ``instruction``, ``task`` (see :data:`EMU_TASKS`),
    ``hash`` (sha256 hex of the source pixels, ``source.tobytes()``), ``input_caption``,
    ``output_caption``, plus our extra columns ``target_img`` (Image), ``mask`` (Image, RGB white =
    edit) and ``metadata``.
``pairs``
    Plain text-image pairs as WebDataset tar shards ``pairs-000000.tar``, ``pairs-000001.tar``, ...
    (the layout of LAION-style text-to-image training): per sample ``<key>.png`` (the source image),
    ``<key>.txt`` (its source caption, UTF-8) and ``<key>.json`` (``{"scene": <source scene graph>,
    "seed": seed, "index": i}``), with ``key = "<index:09d>"``.

Every image is a lossless RGB PNG of ``size x size`` pixels, so loaded pixels equal the generated
``uint8`` arrays byte for byte.

The ``metadata`` column is a JSON string with the full ground truth of the sample:
``EditSample.metadata()`` (``instruction``, ``category`` (our name, one of
``regionedit.world.spec.CATEGORIES``), ``source_caption``, ``target_caption``, ``source_scene``,
``target_scene``, ``edit``) plus ``seed``, ``index`` and ``size``. Scene graphs are for training and
evaluation only; no inference path may read them.

Every export also writes ``dataset_info.json`` (format, n, seed, size, generator version, the command
that made it, the list of files and the conventions above).

Exports are atomic and resumable: files are written into ``.<out_dir name>.partial`` next to
``out_dir`` (each chunk file via a temporary name and ``os.replace``) and the folder is renamed to
``out_dir`` only when complete. Re-running an interrupted export with the same arguments keeps the
finished chunks. Memory stays bounded by one chunk (``chunk_size`` samples, 1000 by default).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from regionedit.world import spec
from regionedit.world.edits import EditSample, sample_edit

from regionedit.data.formats import (  # noqa: E402  (shared with the loaders)
    FORMATS,
    INFO_FILE,
    LOCAL_DESCRIPTIONS_FILE,
    magicbrush_output_name,
)

# Our categories -> the Emu Edit test set's `task` vocabulary (add, background, color, global, local,
# remove, style, text). The five categories that have an Emu task keep that name; "size" (a local
# resize) and "absent" (a referent that is not in the image) have no Emu task and keep our names.
EMU_TASKS: dict[str, str] = {
    "remove": "remove",
    "add": "add",
    "local": "local",
    "color": "color",
    "background": "background",
    "size": "size",
    "absent": "absent",
}

DEFAULT_CHUNK_SIZE = 1000  # samples per parquet file / tar shard
PARQUET_ROW_GROUP_SIZE = 100  # rows per parquet row group (the unit of random access when loading)
WORLD_SPEC_VERSION = "v1"
_PLAN_FILE = "_export_plan.json"  # inside the .partial folder only
_LOCAL_PARTS = "_local_descriptions"  # inside the .partial folder only: one JSON per finished magicbrush chunk


def generator_version() -> dict[str, str]:
    """What made the data: ``{"package": "regionedit", "version": ..., "world_spec": "v1"}``."""
    from regionedit import __version__

    return {"package": "regionedit", "version": __version__, "world_spec": WORLD_SPEC_VERSION}


# ----------------------------------------------------------------------------------------------
# encoding helpers


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of an ``(H, W, 3)`` uint8 RGB image or an ``(H, W)`` bool mask.

    A mask is stored as RGB like MagicBrush's masks: white (255, 255, 255) where True (edit), black
    where False (keep).
    """
    arr = np.asarray(image)
    if arr.dtype == bool:
        if arr.ndim != 2:
            raise ValueError(f"a mask must be (H, W) bool, got shape {arr.shape}")
        arr = np.repeat((arr.astype(np.uint8) * 255)[..., None], 3, axis=-1)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"an image must be (H, W, 3) uint8, got shape {arr.shape} dtype {arr.dtype}")
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG")
    return buf.getvalue()


def _image_cell(image: np.ndarray) -> dict[str, Any]:
    """A value of a ``datasets.Image`` column: ``{"bytes": png, "path": None}``."""
    return {"bytes": encode_png(image), "path": None}


def sample_metadata(sample: EditSample, seed: int, index: int, size: int) -> dict[str, Any]:
    """The ``metadata`` JSON of one exported sample (see the module docstring)."""
    meta = sample.metadata()
    meta.update({"seed": seed, "index": index, "size": size})
    return meta


def pixel_hash(image: np.ndarray) -> str:
    """sha256 hex digest of an image's raw bytes (``np.ascontiguousarray(image).tobytes()``)."""
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


# ----------------------------------------------------------------------------------------------
# per-format chunk writers: (path, seed, indices, size, on_sample) -> None


def _features(fmt: str):
    from datasets import Features, Image as HFImage, Value

    if fmt == "magicbrush":
        return Features(
            {
                "img_id": Value("string"),
                "turn_index": Value("int32"),
                "source_img": HFImage(),
                "mask_img": HFImage(),
                "instruction": Value("string"),
                "target_img": HFImage(),
                "metadata": Value("string"),
            }
        )
    return Features(
        {
            "idx": Value("int64"),
            "image": HFImage(),
            "instruction": Value("string"),
            "task": Value("string"),
            "hash": Value("string"),
            "input_caption": Value("string"),
            "output_caption": Value("string"),
            "target_img": HFImage(),
            "mask": HFImage(),
            "metadata": Value("string"),
        }
    )


def _img_id(seed: int, index: int) -> str:
    return f"{seed}_{index:09d}"


def _row(fmt: str, sample: EditSample, seed: int, index: int, size: int) -> dict[str, Any]:
    meta = json.dumps(sample_metadata(sample, seed, index, size), sort_keys=True)
    if fmt == "magicbrush":
        return {
            "img_id": _img_id(seed, index),
            "turn_index": 1,
            "source_img": _image_cell(sample.source),
            "mask_img": _image_cell(sample.mask),
            "instruction": sample.instruction,
            "target_img": _image_cell(sample.target),
            "metadata": meta,
        }
    return {
        "idx": index,
        "image": _image_cell(sample.source),
        "instruction": sample.instruction,
        "task": EMU_TASKS[sample.category],
        "hash": pixel_hash(sample.source),
        "input_caption": sample.source_caption,
        "output_caption": sample.target_caption,
        "target_img": _image_cell(sample.target),
        "mask": _image_cell(sample.mask),
        "metadata": meta,
    }


def _write_parquet_chunk(fmt: str, path: Path, samples: Iterator[tuple[int, EditSample]], seed: int, size: int):
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = _features(fmt)
    columns: dict[str, list] = {name: [] for name in features}
    for index, sample in samples:
        for name, value in _row(fmt, sample, seed, index, size).items():
            columns[name].append(value)
    table = pa.Table.from_pydict(columns, schema=features.arrow_schema)
    pq.write_table(table, path, row_group_size=PARQUET_ROW_GROUP_SIZE)


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # reproducible shards: no timestamps, owners or groups
    tar.addfile(info, io.BytesIO(data))


def _write_tar_chunk(path: Path, samples: Iterator[tuple[int, EditSample]], seed: int, size: int):
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for index, sample in samples:
            key = f"{index:09d}"
            scene = {"scene": sample.source_scene.to_dict(), "seed": seed, "index": index}
            _tar_add(tar, f"{key}.png", encode_png(sample.source))
            _tar_add(tar, f"{key}.txt", sample.source_caption.encode("utf-8"))
            _tar_add(tar, f"{key}.json", json.dumps(scene, sort_keys=True).encode("utf-8"))


def chunk_filename(fmt: str, chunk: int, n_chunks: int) -> str:
    """Relative path of chunk ``chunk`` (0-based) of ``n_chunks`` in an export of format ``fmt``."""
    if fmt == "magicbrush":
        return f"data/train-{chunk:05d}-of-{n_chunks:05d}.parquet"
    if fmt == "emu":
        return f"data/test-{chunk:05d}-of-{n_chunks:05d}.parquet"
    return f"pairs-{chunk:06d}.tar"


# ----------------------------------------------------------------------------------------------
# the export driver


def _check_args(fmt: str, n: int, size: int, chunk_size: int) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {list(FORMATS)}")
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer (number of samples), got {n!r}")
    if int(size) != size or size < 8:
        raise ValueError(f"size must be an integer >= 8 (image side in pixels), got {size!r}")
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a directory; choose another --out path")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{out_dir} already exists and is not empty; pass --overwrite (overwrite=True in "
            "Python) to replace it, or choose another output directory"
        )


def _prepare_partial(partial: Path, plan: dict[str, Any]) -> None:
    """Reuse ``partial`` when it holds an interrupted export with the same plan, else start afresh."""
    plan_file = partial / _PLAN_FILE
    if partial.is_dir():
        try:
            same = json.loads(plan_file.read_text()) == plan
        except (OSError, ValueError):
            same = False
        if same:
            return
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    plan_file.write_text(json.dumps(plan, sort_keys=True))


def _swap_into_place(partial: Path, out_dir: Path) -> None:
    """Rename the finished ``partial`` folder to ``out_dir`` (replacing an existing one)."""
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out_dir, old)
        os.rename(partial, out_dir)
        shutil.rmtree(old)
    else:
        os.rename(partial, out_dir)


def export_dataset(
    out_dir: str | os.PathLike,
    n: int,
    seed: int,
    fmt: str,
    size: int = spec.NATIVE_SIZE,
    progress: bool = True,
    overwrite: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    command: str | None = None,
) -> Path:
    """Write ``n`` shapes-world samples (``sample_edit(seed, i, size)`` for ``i < n``) to ``out_dir``.

    Args:
        out_dir: the folder to create. It must not exist or be empty, unless ``overwrite``.
        n: number of samples (>= 1).
        seed: dataset seed; the same ``(seed, n, size)`` always gives byte-identical images.
        fmt: ``"magicbrush"``, ``"emu"`` or ``"pairs"`` (see the module docstring for each layout).
        size: image side in pixels (square images; masks are ground truth at native 64 px, resized
            with nearest neighbour).
        progress: show a tqdm progress bar on stderr.
        overwrite: replace an existing non-empty ``out_dir`` (only once the new export is complete).
        chunk_size: samples per parquet file / tar shard; bounds memory use.
        command: the command line recorded in ``dataset_info.json`` (default: the Python call).

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: bad ``fmt``, ``n``, ``size`` or ``chunk_size``.
        FileExistsError: ``out_dir`` is non-empty and ``overwrite`` is False.
    """
    # 1. check inputs
    _check_args(fmt, n, size, chunk_size)
    n, seed, size, chunk_size = int(n), int(seed), int(size), int(chunk_size)
    out_dir = Path(out_dir).absolute()
    _check_out_dir(out_dir, overwrite)
    if command is None:
        command = f"export_dataset({str(out_dir)!r}, n={n}, seed={seed}, fmt={fmt!r}, size={size})"

    # 2. a partial folder next to out_dir, reused when an identical export was interrupted
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = out_dir.parent / f".{out_dir.name}.partial"
    plan = {"format": fmt, "n": n, "seed": seed, "size": size, "chunk_size": chunk_size,
            "generator": generator_version()}
    _prepare_partial(partial, plan)

    # 3. write the chunks that are not there yet, each via a temporary file
    n_chunks = -(-n // chunk_size)
    files = [chunk_filename(fmt, c, n_chunks) for c in range(n_chunks)]
    bar = tqdm(total=n, disable=not progress, desc=f"export {fmt}", unit="sample")
    try:
        for c, rel in enumerate(files):
            start, stop = c * chunk_size, min(n, (c + 1) * chunk_size)
            path = partial / rel
            local_part = partial / _LOCAL_PARTS / f"{c:05d}.json" if fmt == "magicbrush" else None
            if path.exists() and (local_part is None or local_part.exists()):
                bar.update(stop - start)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            samples = _generate(seed, range(start, stop), size, bar.update)
            if fmt == "pairs":
                _write_tar_chunk(tmp, samples, seed, size)
            else:
                local: dict[str, dict[str, str]] = {}
                if local_part is not None:
                    samples = _collect_local_descriptions(samples, seed, local)
                _write_parquet_chunk(fmt, tmp, samples, seed, size)
                if local_part is not None:  # written before the chunk: a finished chunk always has its part
                    _write_json_atomic(local_part, local)
            os.replace(tmp, path)
    finally:
        bar.close()

    # 4. local_descriptions.json (magicbrush), dataset_info.json, then move the finished folder into place
    if fmt == "magicbrush":
        _merge_local_descriptions(partial, n_chunks)
    info = dataset_info(fmt, n, seed, size, chunk_size, files, command)
    (partial / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    (partial / _PLAN_FILE).unlink()
    _check_out_dir(out_dir, overwrite)  # it may have been filled while we were writing
    _swap_into_place(partial, out_dir)
    return out_dir


def _generate(
    seed: int, indices: range, size: int, on_sample: Callable[[int], Any]
) -> Iterator[tuple[int, EditSample]]:
    for i in indices:
        yield i, sample_edit(seed, i, size)
        on_sample(1)


def _collect_local_descriptions(
    samples: Iterator[tuple[int, EditSample]], seed: int, into: dict[str, dict[str, str]]
) -> Iterator[tuple[int, EditSample]]:
    """Pass ``samples`` through, adding each one's local description (if it has one) to ``into`` in the layout
    of MagicBrush's ``local_descriptions.json`` (``{img_id: {"<img_id>-output1.png": text}}``)."""
    for index, sample in samples:
        text = sample.local_description()
        if text is not None:
            img_id = _img_id(seed, index)
            into[img_id] = {magicbrush_output_name(img_id, 1): text}
        yield index, sample


def _write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _merge_local_descriptions(partial: Path, n_chunks: int) -> None:
    """The chunks' parts -> ``local_descriptions.json`` (img_ids in sample order); the parts are removed."""
    merged: dict[str, dict[str, str]] = {}
    for c in range(n_chunks):
        merged.update(json.loads((partial / _LOCAL_PARTS / f"{c:05d}.json").read_text()))
    _write_json_atomic(partial / LOCAL_DESCRIPTIONS_FILE, merged)
    shutil.rmtree(partial / _LOCAL_PARTS)


def dataset_info(
    fmt: str, n: int, seed: int, size: int, chunk_size: int, files: list[str], command: str
) -> dict[str, Any]:
    """Contents of ``dataset_info.json`` for an export (JSON-serialisable)."""
    info: dict[str, Any] = {
        "format": fmt,
        "n": n,
        "seed": seed,
        "size": size,
        "chunk_size": chunk_size,
        "generator": generator_version(),
        "command": command,
        "files": files,
        "sample": f"sample i is regionedit.world.sample_edit({seed}, i, {size})",
    }
    if fmt == "pairs":
        info["fields"] = {
            "png": "source image, RGB",
            "txt": "source caption",
            "json": '{"scene": source scene graph, "seed": seed, "index": i}',
        }
        return info
    info["mask_convention"] = "RGB PNG, white (255, 255, 255) = edited region, black = keep"
    info["metadata_column"] = (
        "JSON string: instruction, category, source_caption, target_caption, source_scene, "
        "target_scene, edit, seed, index, size"
    )
    if fmt == "emu":
        info["task_mapping"] = dict(EMU_TASKS)
    if fmt == "magicbrush":
        info["local_descriptions"] = (
            f'{LOCAL_DESCRIPTIONS_FILE}: {{img_id: {{"<img_id>-output1.png": local description}}}} as in '
            "MagicBrush's test / dev releases: what the edited region shows in the target (EditSample."
            "local_description); no entry for absent-referent samples"
        )
    return info

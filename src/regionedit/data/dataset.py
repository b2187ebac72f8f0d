"""``open_dataset(path_or_id)``: any supported layout as an iterable of :class:`~regionedit.data.samples.Sample`.

::

    from regionedit.data import open_dataset

    ds = open_dataset("runs/magicbrush")            # layout and schema detected
    for s in ds:                                     # every sample once, in stored order
        print(s.id, sorted(s.supervision))
    stream = ds.stream(rank=0, world_size=2, seed=0, shuffle_buffer=500)   # training: shuffled, this rank's share
    s = next(stream); state = stream.state_dict()    # resume later with ds.stream(..., state=state)

Layouts: :mod:`regionedit.data.sources`; schemas (column names): :mod:`regionedit.data.schemas`; streams
(shuffling, splitting by rank and worker, resume): :mod:`regionedit.data.streaming`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from .samples import Sample
from .sources import Source, open_source
from .streaming import SampleStream


class SampleDataset:
    """A dataset opened by :func:`open_dataset`: iterate it for every sample once (stored order, images decoded
    one sample at a time); :meth:`stream` for training; ``ds[i]`` where the layout has random access (not tar
    shards or the hub).

    Attributes: ``location``, ``layout`` (``hf-disk``, ``parquet``, ``webdataset``, ``imagefolder``,
    ``captions``, ``magicbrush-release``, ``hub``), ``schema`` (``magicbrush``, ``instructpix2pix``, ``emu``,
    ``edits``, ``pairs``, ``webdataset``, ``custom``), ``columns`` and ``mapping`` (sample field -> column),
    ``num_samples`` (None when unknown without reading everything: tar shards, the hub)."""

    def __init__(self, source: Source):
        self.source = source

    location = property(lambda self: self.source.location)
    layout = property(lambda self: self.source.layout)
    schema = property(lambda self: self.source.schema)
    columns = property(lambda self: self.source.columns)
    mapping = property(lambda self: self.source.mapping)
    num_samples = property(lambda self: self.source.num_samples)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready record of what was opened (for run configs and model cards)."""
        return self.source.describe()

    def __len__(self) -> int:
        if self.source.num_samples is None:
            raise TypeError(f"the number of samples of {self.location} ({self.layout}) is not known without reading "
                            "it all; count them with sum(1 for _ in ds)")
        return self.source.num_samples

    def __getitem__(self, i: int) -> Sample:
        if not self.source.indexed:
            raise TypeError(f"{self.layout} data has no random access; iterate it, or use ds.stream()")
        n = len(self)
        i = int(i) + (n if int(i) < 0 else 0)
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} samples")
        return self.source.get(i)

    def __iter__(self) -> Iterator[Sample]:
        return SampleStream(self.source, shuffle=False, loop=False, split="samples")

    def stream(self, *, rank: int | None = None, world_size: int | None = None, seed: int = 0, shuffle: bool = True,
               shuffle_buffer: int = 1000, loop: bool = True, split: str = "auto", state: dict | None = None,
               num_workers: int = 1, worker: int = 0) -> SampleStream:
        """This process's share of the data, epoch after epoch (``loop``), shuffled per epoch
        (:mod:`regionedit.data.streaming`). ``rank`` / ``world_size`` default to the ``RANK`` / ``WORLD_SIZE``
        environment variables that ``torchrun`` and ``accelerate launch`` set (else 0 / 1); ``worker`` of
        ``num_workers`` splits a rank's share further (a DataLoader worker: see :meth:`torch_dataset`).
        ``state``: a :meth:`SampleStream.state_dict` to resume from."""
        rank = int(os.environ.get("RANK", 0)) if rank is None else int(rank)
        world_size = int(os.environ.get("WORLD_SIZE", 1)) if world_size is None else int(world_size)
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        if not 0 <= worker < num_workers:
            raise ValueError(f"worker {worker} is not in 0..{num_workers - 1}")
        return SampleStream(self.source, part=rank * num_workers + worker, parts=world_size * num_workers, seed=seed,
                            shuffle=shuffle, shuffle_buffer=shuffle_buffer, loop=loop, split=split, state=state)

    def torch_dataset(self, *, rank: int | None = None, world_size: int | None = None, **stream_kw):
        """A ``torch.utils.data.IterableDataset`` of samples: each DataLoader worker streams its own share
        (``torch.utils.data.get_worker_info()``), so ranks x workers never read a sample twice in an epoch. Use
        ``collate_fn=lambda b: b`` (samples are dataclasses of arrays of any size)."""
        import torch.utils.data as tud

        ds = self

        class _Iterable(tud.IterableDataset):
            def __iter__(self):
                info = tud.get_worker_info()
                w, n = (info.id, info.num_workers) if info is not None else (0, 1)
                return ds.stream(rank=rank, world_size=world_size, num_workers=n, worker=w, **stream_kw)

        return _Iterable()

    def __repr__(self) -> str:
        n = self.num_samples if self.num_samples is not None else "?"
        return f"SampleDataset({self.location!r}, layout={self.layout!r}, schema={self.schema!r}, samples={n})"


def open_dataset(path_or_id: str | os.PathLike, split: str | None = None, *, schema: str | None = None,
                 columns: dict[str, str] | None = None) -> SampleDataset:
    """Open a dataset for training or evaluation, its layout and schema detected.

    Args:
        path_or_id: a folder or file (``datasets`` ``save_to_disk`` folder, parquet files, WebDataset ``.tar``
            shards or a brace pattern of them, an ``imagefolder`` with ``metadata.jsonl``, images with ``.txt``
            captions, the MagicBrush release), or a Hugging Face hub id (``owner/name``; needs the hub).
        split: a split of the data (``train``, ``dev``, ``test``...): ``<split>-*.parquet``, a ``<split>/``
            folder, a ``DatasetDict`` key, the hub's split (default ``train`` there).
        schema: force a column schema (:data:`regionedit.data.schemas.SCHEMAS`) instead of detecting it.
        columns: ``{sample field: column name}`` for columns the detection does not know.

    Returns:
        a :class:`SampleDataset`. Bad data is a :class:`~regionedit.data.samples.DataError` (a ``ValueError``)
        naming the file / row and the fix.
    """
    return SampleDataset(open_source(path_or_id, split, schema, columns))

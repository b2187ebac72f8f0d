"""Deterministic sample streams: per-epoch shuffling, a shuffle buffer, splitting by rank and worker, resume.

A stream reads one *part* of the data: ``parts = world_size * num_workers`` and ``part = rank * num_workers +
worker``. Every epoch:

1. the source's units (shards, row groups, chunks) are put in a random order drawn from
   ``numpy.random.default_rng([seed, epoch])`` (the same on every rank);
2. the units are split: with ``split="units"`` part ``p`` reads units ``p, p + parts, ...`` of that order (each
   unit is read by one part only: the IO is split, the sample counts per part may differ by a unit); with
   ``split="samples"`` every part reads every unit and keeps the rows whose running index ``i`` has
   ``i % parts == p`` (equal counts to within one; each part reads all the bytes). ``"auto"`` takes ``units``
   when there are at least 4 units per part, else ``samples``;
3. the part's rows pass through a shuffle buffer of ``shuffle_buffer`` rows (``default_rng([seed, epoch, part,
   1])``, emptied at the end of the epoch), and only then are decoded.

So within an epoch the parts are disjoint and together hold every sample once, and the order depends only on
``(seed, epoch, part, parts)``. :meth:`SampleStream.state_dict` is ``{"epoch", "offset"}`` (samples of that epoch
already yielded); a stream built with that state yields exactly what the original would have yielded next
(the skipped rows are read but not decoded).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from .samples import DataError, Sample
from .sources import Source

UNITS_PER_PART = 4  # "auto" splits by unit when there are at least this many units per part


def buffer_shuffle(items: Iterator[Any], size: int, rng: np.random.Generator) -> Iterator[Any]:
    """WebDataset's shuffle: keep ``size`` items, yield a random one and put the next in its place; at the end
    yield the rest in a random order. ``size <= 1`` passes items through."""
    if size <= 1:
        yield from items
        return
    buf: list[Any] = []
    for x in items:
        if len(buf) < size:
            buf.append(x)
            continue
        j = int(rng.integers(size))
        out, buf[j] = buf[j], x
        yield out
    while buf:
        j = int(rng.integers(len(buf)))
        buf[j], buf[-1] = buf[-1], buf[j]
        yield buf.pop()


def choose_split(n_units: int, parts: int, split: str) -> str:
    if split not in ("auto", "units", "samples"):
        raise ValueError(f"split must be 'auto', 'units' or 'samples', got {split!r}")
    if split == "auto":
        return "units" if n_units >= UNITS_PER_PART * parts else "samples"
    return split


def part_rows(source: Source, epoch: int, part: int, parts: int, seed: int, shuffle: bool = True,
              shuffle_buffer: int = 1000, split: str = "auto") -> Iterator[Any]:
    """The raw rows of one part of one epoch, in order (see the module docstring)."""
    units = source.units()
    if shuffle:
        units = [units[i] for i in np.random.default_rng([seed, epoch]).permutation(len(units))]
    mode = choose_split(len(units), parts, split)
    if mode == "units":
        rows = itertools.chain.from_iterable(u.rows() for u in units[part::parts])
    else:
        rows = (r for i, r in enumerate(itertools.chain.from_iterable(u.rows() for u in units)) if i % parts == part)
    if shuffle:
        rows = buffer_shuffle(rows, shuffle_buffer, np.random.default_rng([seed, epoch, part, 1]))
    return rows


class SampleStream:
    """An iterator of :class:`~regionedit.data.samples.Sample` over one part of a source, epoch after epoch
    (``loop``) or for one epoch. ``state_dict()`` / the ``state`` argument resume it exactly.

    Attributes: ``epoch`` and ``offset`` (samples of ``epoch`` yielded so far), ``part`` / ``parts``, ``split``
    (the mode used), ``epoch_lengths`` (samples per finished epoch of this part)."""

    def __init__(self, source: Source, *, part: int = 0, parts: int = 1, seed: int = 0, shuffle: bool = True,
                 shuffle_buffer: int = 1000, loop: bool = True, split: str = "auto", state: dict | None = None):
        if not 0 <= part < parts:
            raise ValueError(f"part {part} is not in 0..{parts - 1}")
        self.source, self.part, self.parts, self.seed = source, part, parts, seed
        self.shuffle, self.shuffle_buffer, self.loop = shuffle, shuffle_buffer, loop
        self.split = choose_split(len(source.units()), parts, split)  # fixed for the whole stream
        self.epoch, self.offset = 0, 0
        if state:
            self.epoch, self.offset = int(state["epoch"]), int(state["offset"])
        self.epoch_lengths: list[int] = []
        self._it = self._gen()

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "offset": self.offset}

    def _gen(self) -> Iterator[Sample]:
        skip = self.offset
        while True:
            n = 0
            for k, raw in enumerate(part_rows(self.source, self.epoch, self.part, self.parts, self.seed, self.shuffle,
                                              self.shuffle_buffer, self.split)):
                n += 1
                if k < skip:
                    continue
                sample = self.source.decode(raw)
                self.offset = k + 1
                yield sample
            if n == 0:
                raise DataError(f"{self.source.location}: part {self.part} of {self.parts} (rank x worker) got no samples "
                                f"in epoch {self.epoch}: the data has fewer samples than processes x workers; use fewer "
                                "processes or more data")
            if skip > n:
                raise DataError(f"{self.source.location}: the resume state says {skip} samples of epoch {self.epoch} were "
                                f"read, but this part has only {n}: the data changed since the checkpoint; start a new "
                                "run (or restore the data)")
            self.epoch_lengths.append(n)
            skip = 0
            if not self.loop:
                return
            self.epoch, self.offset = self.epoch + 1, 0

    def __iter__(self) -> "SampleStream":
        return self

    def __next__(self) -> Sample:
        return next(self._it)

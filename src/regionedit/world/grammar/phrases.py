"""Noun phrases of a lexed instruction (step 2 of :mod:`regionedit.world.grammar`).

``[a|the] [size] [colour] (shape|one)`` becomes one :class:`_NP`; colours and sizes outside a noun phrase
are "bare" (the new colour of "make the triangle green").
"""

from __future__ import annotations

import dataclasses

from regionedit.world.grammar.lexicon import _Tok
from regionedit.world.intent import Referent


@dataclasses.dataclass
class _NP:
    start: int
    end: int  # index of the head token (inclusive)
    color: str | None
    shape: str | None
    size: str | None
    indefinite: bool  # "a red star"
    pronoun: bool = False

    @property
    def has_shape(self) -> bool:
        return self.shape is not None

    def referent(self) -> Referent:
        return Referent(self.color, self.shape, self.size)


def _content(tok: _Tok | None) -> bool:
    return tok is not None and tok.kind in ("COLOR", "SHAPE", "PH", "USHAPE")


def _group(toks: list[_Tok]) -> tuple[list[_NP], list[tuple[int, str]], list[tuple[int, str]]]:
    """Noun phrases, bare colours ``(index, colour)`` and bare sizes ``(index, "small"|"large")``."""
    nps: list[_NP] = []
    bare_colors: list[tuple[int, str]] = []
    bare_sizes: list[tuple[int, str]] = []
    n = len(toks)

    def nxt(j: int) -> _Tok | None:
        # skip "colored" between a colour and its noun ("the blue coloured square")
        while j < n and toks[j].kind == "CUE" and toks[j].text == "colored":
            j += 1
        return toks[j] if j < n else None

    i = 0
    while i < n:
        t = toks[i]
        if t.kind == "PRON":
            nps.append(_NP(i, i, None, None, None, False, pronoun=True))
            i += 1
            continue
        if t.kind not in ("SIZE", "COLOR", "SHAPE", "PH"):
            i += 1
            continue
        start = i
        size = color = None
        j = i
        # modifiers: at most one size and one colour, in either order
        while j < n and toks[j].kind in ("SIZE", "COLOR"):
            tj = toks[j]
            if tj.kind == "SIZE":
                after = nxt(j + 1)
                # "a little bigger", "a tiny bit": not a size; "make it large": a bare size
                if size is not None or not _content(after):
                    break
                size = tj.value
            else:
                if color is not None:
                    break
                color = tj.value
            j += 1
            while j < n and toks[j].kind == "CUE" and toks[j].text == "colored":
                j += 1
        head = toks[j] if j < n else None
        indefinite = start > 0 and toks[start - 1].kind == "DET" and bool(toks[start - 1].value)
        definite = start > 0 and toks[start - 1].kind == "DET" and not toks[start - 1].value
        if head is not None and head.kind == "PH" and j == start and _content(nxt(j + 1)):
            i = j + 1  # "one red star": a numeral, not a placeholder noun
            continue
        if head is not None and head.kind in ("SHAPE", "PH"):
            nps.append(_NP(start, j, color, head.value, size, indefinite))  # type: ignore[arg-type]
            i = j + 1
            continue
        # no head noun: bare modifiers
        if j == start:  # the token itself could not start a phrase (e.g. "little bigger")
            if t.kind == "SIZE" and t.text != "little":
                after = nxt(i + 1)
                if not (after is not None and after.kind in ("BIT", "COMP")):
                    bare_sizes.append((i, t.value))  # type: ignore[arg-type]
            elif t.kind == "COLOR":
                bare_colors.append((i, t.value))  # type: ignore[arg-type]
            i += 1
            continue
        if color is not None and definite and size is None:
            # "remove the red" / "delete the blue": a colour-only referent
            nps.append(_NP(start, j - 1, color, None, None, False))
        else:
            for k in range(start, j):
                if toks[k].kind == "COLOR":
                    bare_colors.append((k, toks[k].value))  # type: ignore[arg-type]
                elif toks[k].kind == "SIZE" and toks[k].text != "little":
                    bare_sizes.append((k, toks[k].value))  # type: ignore[arg-type]
        i = j
    # a pronoun after a named object refers to it: "the triangle is too big, make it smaller"
    if any(not np.pronoun for np in nps):
        first = next(k for k, np in enumerate(nps) if not np.pronoun)
        nps = nps[: first + 1] + [np for np in nps[first + 1 :] if not np.pronoun]
    return nps, bare_colors, bare_sizes

"""MagicBrush's ``local_descriptions.json``: the per-turn local descriptions its published CLIP-T is measured with.

The MagicBrush test and dev releases hold, next to ``edit_sessions.json`` and ``global_descriptions.json``, a
``local_descriptions.json`` of the same shape: ``{img_id: {"<output image file name>": "local description"}}``,
e.g. ``{"139": {"139-output1.png": "a red umbrella", "139-output2.png": ...}}``. A local description says what
the edited region shows in that turn's output image (not the whole image, which the global description covers).
The paper's CLIP-T is the CLIP cosine of the generated image and this text (MagicBrush's
``evaluation/image_eval.py`` with ``--caption_path .../local_descriptions.json``, the maintainers' answer in
OSU-NLP-Group/MagicBrush issue #17). Our magicbrush exports write the file in the same shape
(:mod:`regionedit.world.export`).
"""

from __future__ import annotations

import json
from pathlib import Path

from .formats import LOCAL_DESCRIPTIONS_FILE, magicbrush_output_name
from .samples import DataError

_SHAPE = '{img_id: {"<img_id>-output<N>.png": "local description"}}'


def read_local_descriptions(root: Path) -> dict[str, dict[str, str]] | None:
    """``root / local_descriptions.json`` checked and parsed, or None when the file is absent.

    Returns:
        ``{img_id: {output file name: description}}`` (img_ids as strings, as in the file).

    Raises:
        DataError: the file is not JSON or not of MagicBrush's shape; the message names the file and the fix.
    """
    path = Path(root) / LOCAL_DESCRIPTIONS_FILE
    if not path.is_file():
        return None
    fix = f"rewrite it as MagicBrush's {_SHAPE}, or remove it to load the data without local descriptions"
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not valid JSON ({e}); {fix}") from None
    if not isinstance(table, dict):
        raise DataError(f"{path} must map img_id -> {{output file name: description}}, got a "
                        f"{type(table).__name__}; {fix}")
    for img_id, per_image in table.items():
        if not isinstance(per_image, dict):
            raise DataError(f"{path}: the entry of img_id {img_id!r} must map output file names to descriptions, "
                            f"got a {type(per_image).__name__}; {fix}")
        for name, text in per_image.items():
            if not isinstance(text, str):
                raise DataError(f"{path}: the description of {img_id!r} / {name!r} must be a string, got a "
                                f"{type(text).__name__}; {fix}")
    return table


def local_description(table: dict[str, dict[str, str]] | None, img_id: str, output_name: str) -> str | None:
    """The local description of session ``img_id``'s output image ``output_name``; None when ``table`` is None
    or has none (or an empty one) for it."""
    if not table:
        return None
    text = (table.get(str(img_id)) or {}).get(output_name)
    return text or None


def turn_local_description(table: dict[str, dict[str, str]] | None, img_id, turn_index) -> str | None:
    """The local description of turn ``turn_index`` (1-based) of session ``img_id`` (rows without file names:
    MagicBrush parquet, our exports), looked up as ``"<img_id>-output<turn_index>.png"``; None when unknown."""
    if not table or img_id is None or turn_index is None:
        return None
    return local_description(table, str(img_id), magicbrush_output_name(str(img_id), int(turn_index)))

"""Column schemas of the editing datasets, and how a row becomes a :class:`~regionedit.data.samples.Sample`.

Each schema maps the sample's fields to the column names a published dataset uses (the first present name
wins). Detection tries them in the order of :data:`SCHEMAS` and takes the first whose required fields resolve:

===================  ==============================================================  =====================
schema               columns (sample field <- column)                                required
===================  ==============================================================  =====================
``magicbrush``       image <- source_img, target <- target_img, mask <- mask_img,    image, target,
                     instruction, id <- img_id (+ turn_index)                        instruction
``instructpix2pix``  image <- input_image | original_image, target <- edited_image,  image, target,
                     instruction <- edit_prompt, caption <- original_prompt,          instruction
                     target_caption <- edited_prompt
``emu``              image, instruction, caption <- input_caption, target_caption    image, instruction
                     <- output_caption, category <- task, id <- idx (+ target_img,
                     mask in our exports)
``edits``            image <- source | source_image | input | image, target <- target image, instruction
                     | target_image | edited | output, mask, instruction | edit, caption,
                     target_caption
``pairs``            image <- image | img | jpg | png | file_name, caption <- caption image, caption
                     | text | txt | prompt | alt_text
===================  ==============================================================  =====================

A ``metadata`` column holding a JSON object (our exports) fills ``caption`` / ``target_caption`` / ``category``
from its ``source_caption`` / ``target_caption`` / ``category`` when the row's own columns do not.
``columns={"image": "photo", "caption": "alt"}`` (``--columns image=photo,caption=alt``) names columns the
detection does not know.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .samples import DataError, Sample, check_sizes, decode_image_at, decode_mask_at

FIELDS: tuple[str, ...] = ("id", "image", "caption", "instruction", "target", "target_caption", "mask", "category")
IMAGE_FIELDS = ("image", "target", "mask")

# schema -> (field -> candidate columns, required fields)
SCHEMAS: dict[str, tuple[dict[str, tuple[str, ...]], tuple[str, ...]]] = {
    "magicbrush": ({"image": ("source_img",), "target": ("target_img",), "mask": ("mask_img",),
                    "instruction": ("instruction",), "id": ("img_id",)},
                   ("image", "target", "instruction")),
    "instructpix2pix": ({"image": ("input_image", "original_image"), "target": ("edited_image",),
                         "instruction": ("edit_prompt",), "caption": ("original_prompt", "input_prompt"),
                         "target_caption": ("edited_prompt", "output_prompt"), "id": ("id",)},
                        ("image", "target", "instruction")),
    "emu": ({"image": ("image",), "instruction": ("instruction",), "caption": ("input_caption",),
             "target_caption": ("output_caption",), "category": ("task",), "id": ("idx",),
             "target": ("target_img",), "mask": ("mask",)},
            ("image", "instruction", "caption")),
    "edits": ({"image": ("source", "source_image", "source_img", "input", "input_image", "image"),
               "target": ("target", "target_image", "edited", "edited_image", "output", "output_image"),
               "mask": ("mask", "mask_image", "mask_img"), "instruction": ("instruction", "edit", "edit_prompt"),
               "caption": ("caption", "source_caption", "input_caption", "text"),
               "target_caption": ("target_caption", "output_caption"), "category": ("category", "task"),
               "id": ("id", "key", "__key__")},
              ("image", "instruction")),
    "pairs": ({"image": ("image", "img", "jpg", "jpeg", "png", "webp", "file_name"),
               "caption": ("caption", "text", "txt", "prompt", "sentence", "alt_text", "description"),
               "id": ("id", "key", "__key__")},
              ("image", "caption")),
}
# the schema's columns that MagicBrush / Emu exports give as ids (joined to one string)
_ID_PARTS = {"magicbrush": ("img_id", "turn_index")}


def _expected() -> str:
    return "; ".join(f"{name}: " + ", ".join("|".join(cands[f]) for f in req)
                     for name, (cands, req) in SCHEMAS.items())


def resolve_columns(columns: list[str], schema: str | None = None, overrides: dict[str, str] | None = None,
                    where: str = "the dataset") -> tuple[str, dict[str, str]]:
    """``(schema, {field: column})`` for a table with ``columns``.

    ``schema``: one of :data:`SCHEMAS` (None: detected); ``overrides``: ``{field: column}`` taking precedence.
    A :class:`DataError` names the columns found, what each schema needs and the fix when nothing fits."""
    present = list(columns)
    overrides = dict(overrides or {})
    bad = [f for f in overrides if f not in FIELDS]
    if bad:
        raise DataError(f"unknown sample field(s) {bad} in the column mapping; the fields are {list(FIELDS)}")
    missing = {f: c for f, c in overrides.items() if c not in present}
    if missing:
        raise DataError(f"{where} has no column(s) {sorted(missing.values())} (asked for by the column mapping "
                        f"{missing}); its columns are {sorted(present)}")
    if schema is not None and schema not in SCHEMAS:
        raise DataError(f"unknown schema {schema!r}; choose one of {list(SCHEMAS)} or leave it out to detect")
    names = [schema] if schema else list(SCHEMAS)
    for name in names:
        cands, required = SCHEMAS[name]
        mapping = dict(overrides)
        for field, options in cands.items():
            if field not in mapping:
                col = next((c for c in options if c in present and c not in mapping.values()), None)
                if col is not None:
                    mapping[field] = col
        if all(f in mapping for f in required):
            return name, mapping
        if schema:
            lack = [f"{f} ({'|'.join(cands[f])})" for f in required if f not in mapping]
            raise DataError(f"{where} is missing the column(s) the {schema!r} schema needs: {', '.join(lack)}; its "
                            f"columns are {sorted(present)}. Rename them, or map yours: columns={{'field': 'column'}} "
                            "(--columns field=column,...)")
    if "image" in overrides and ({"caption", "instruction"} & set(overrides)):
        return "custom", overrides
    raise DataError(f"cannot tell what {where} holds: its columns are {sorted(present)}. Expected one of the schemas "
                    f"({_expected()}). Fix: rename the columns, or map them explicitly, e.g. "
                    "columns={'image': 'photo', 'caption': 'alt'} (CLI: --columns image=photo,caption=alt)")


def _cell_bytes(cell: Any, base: Path | None, origin: str, field: str):
    """An image cell -> something :func:`decode_image_at` reads: bytes, a PIL image or an array. Cells are
    ``{"bytes", "path"}`` dicts (``datasets.Image(decode=False)``, parquet), raw bytes, PIL images (a decoded
    hub dataset), arrays, or file paths (relative to ``base``)."""
    if isinstance(cell, dict):
        data = cell.get("bytes")
        if data is not None:
            return data
        cell = cell.get("path")
        if not cell:
            return None
    if isinstance(cell, (str, Path)):
        p = Path(cell)
        if not p.is_absolute() and base is not None:
            p = base / p
        try:
            return p.read_bytes()
        except OSError as e:
            raise DataError(f"{origin}: the {field} file {p} cannot be read ({type(e).__name__}: {e}); check the path "
                            "(relative paths are read from the metadata file's folder) or drop this row") from None
    return cell


def _json_meta(value: Any) -> dict | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, (str, bytes)) and value:
        try:
            obj = json.loads(value)
        except ValueError:
            return None
        return obj if isinstance(obj, dict) else None
    return None


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def row_to_sample(row: dict[str, Any], schema: str, mapping: dict[str, str], origin: str, base: Path | None = None,
                  default_id: str | None = None) -> Sample:
    """Decode one row (raw column values) into a checked :class:`Sample`: images decoded, sizes agreeing.

    Errors (:class:`DataError`) name ``origin``: a row without its image, unreadable images, sizes that differ."""

    def get(field):
        col = mapping.get(field)
        return row.get(col) if col is not None else None

    images = {}
    for field in IMAGE_FIELDS:
        cell = _cell_bytes(get(field), base, origin, field)
        if cell is None:
            if field == "image":
                raise DataError(f"{origin}: no image in column {mapping.get('image')!r} (empty cell); fill it or drop "
                                "this row")
            images[field] = None
        else:
            images[field] = decode_mask_at(cell, origin) if field == "mask" else decode_image_at(cell, origin, field)
    text = {f: get(f) for f in ("caption", "instruction", "target_caption", "category")}
    for f, v in text.items():
        if v is not None and not isinstance(v, str):
            text[f] = str(v)
    ours = _json_meta(row.get("metadata")) if "metadata" in row and "metadata" not in mapping.values() else None
    if ours is not None:  # our exports: the ground truth's captions and category
        text["caption"] = text["caption"] or ours.get("source_caption")
        text["target_caption"] = text["target_caption"] or ours.get("target_caption")
        text["category"] = ours.get("category") or text["category"]
        meta = ours
    else:
        used = set(mapping.values())
        meta = {k: v for k, v in row.items() if k not in used and _scalar(v) and not k.startswith("__")}
        for col in _ID_PARTS.get(schema, ()):
            if col in row:
                meta[col] = row[col]
    if schema in _ID_PARTS and all(row.get(c) is not None for c in _ID_PARTS[schema]):
        sid = "-".join(str(row[c]) for c in _ID_PARTS[schema])
    elif get("id") is not None:
        sid = str(get("id"))
    else:
        sid = default_id if default_id is not None else origin
    s = Sample(id=sid, image=images["image"], caption=text["caption"] or None, instruction=text["instruction"] or None,
               target=images["target"], target_caption=text["target_caption"] or None, mask=images["mask"],
               category=text["category"], metadata=meta, origin=origin)
    check_sizes(s)
    return s

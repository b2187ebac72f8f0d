"""Names shared by the dataset writers (the shapes world's exporter) and the loaders."""

FORMATS: tuple[str, ...] = ("magicbrush", "emu", "pairs")  # layouts the exporter writes and the loaders read
INFO_FILE = "dataset_info.json"  # an export's provenance record, in its root folder
# MagicBrush's local descriptions (test / dev releases; our magicbrush exports), in the dataset's root folder:
# {img_id: {"<output image file name>": "description of the edited region in that output"}}
LOCAL_DESCRIPTIONS_FILE = "local_descriptions.json"


def magicbrush_output_name(img_id: str, turn_index: int) -> str:
    """The file name MagicBrush gives turn ``turn_index`` (1-based) of session ``img_id``'s output image,
    ``"<img_id>-output<turn_index>.png"``: the key of that turn in ``global_descriptions.json`` and
    ``local_descriptions.json``."""
    return f"{img_id}-output{int(turn_index)}.png"

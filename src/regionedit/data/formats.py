"""Names shared by the dataset writers (the shapes world's exporter) and the loaders."""

FORMATS: tuple[str, ...] = ("magicbrush", "emu", "pairs")  # layouts the exporter writes and the loaders read
INFO_FILE = "dataset_info.json"  # an export's provenance record, in its root folder

"""What a harness run is: the protocols, the metric keys with their labels and definitions, which
metrics each protocol reports, and :class:`EvalConfig` (with its canonical command line)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import metrics as M
from ..baselines import METHODS, MethodSettings

PROTOCOLS: tuple[str, ...] = ("shapes", "magicbrush", "emu")
DEFAULT_SEED = 20_000  # held-out world seeds (training uses seed 0 and never seeds >= 20000)
MB_RESIZE = "PIL bicubic"  # MagicBrush resizes the generated image to the GT size before L1/L2

# metric key -> (column label, higher is better, definition)
METRICS: dict[str, tuple[str, bool | None, str]] = {
    "region_iou": ("IoU", True, "region_iou(method region, GT edit mask); both empty = 1; not computed for "
                   "methods without a region (sdedit, instructpix2pix)"),
    "leakage": ("leak", False, "leakage(edited, source, GT mask): mean |edited - source| in [0, 1] outside the "
                "GT mask"),
    "preservation": ("pres", True, "preservation(edited, source, GT mask): share of pixels outside the GT mask left "
                     "bit-identical"),
    "edit_success": ("success", True, "edit_success_sample: measured objects of the edited image match the target "
                     "scene graph (per category rules; absent: success iff status is no_edit)"),
    "no_edit": ("no-edit", None, "share of samples answered with status no_edit"),
    "absent_no_edit": ("absent->no-edit", True, "absent_accuracy: share of absent-referent samples answered no_edit"),
    "false_no_edit": ("false no-edit", False, "absent_accuracy: share of the other samples answered no_edit"),
    "l1": ("L1", False, "l1(edited, GT target): mean |a - b| of [0, 1] pixels (MagicBrush L1)"),
    "l2": ("L2", False, "l2(edited, GT target): mean squared difference of [0, 1] pixels (MagicBrush 'L2' = MSE)"),
    "clip_i": ("CLIP-I", True, "clip_i(edited, GT target): cosine of CLIP image embeddings"),
    "clip_t": ("CLIP-T", True, "clip_t(edited, target caption): cosine of CLIP image and text embeddings "
               "(global caption of the desired output; Emu Edit CLIPout)"),
    "clip_t_local": ("CLIP-T(local)", True, "clip_t(edited, the turn's local description): cosine of CLIP image and "
                     "text embeddings against the description of the edited region only (MagicBrush's "
                     "local_descriptions.json), MagicBrush's published CLIP-T (image_eval.py with its local "
                     "captions); mean over the samples that have a local description, the others not counted"),
    "clip_dir": ("CLIP-dir", True, "clip_dir(source, edited, source caption, target caption): cosine of the "
                 "normalised image and caption embedding differences (Emu Edit CLIPdir)"),
    "dino": ("DINO", True, "dino_sim(edited, GT target): cosine of DINO CLS embeddings (MagicBrush DINO)"),
    "clip_i_src": ("CLIP-I(src)", True, "clip_i(edited, source): cosine of CLIP image embeddings of input and "
                   "output (Emu Edit CLIPim)"),
    "l1_src": ("L1(src)", False, "l1(edited, source): mean |a - b| of [0, 1] pixels (Emu Edit L1)"),
    "dino_src": ("DINO(src)", True, "dino_sim(edited, source): cosine of DINO CLS embeddings (Emu Edit DINO)"),
    "seconds": ("s/edit", False, "wall-clock seconds per edit on this machine"),
}

PROTOCOL_METRICS: dict[str, tuple[str, ...]] = {
    "shapes": ("region_iou", "leakage", "preservation", "edit_success", "absent_no_edit", "false_no_edit",
               "l1", "l2", "clip_i", "clip_t", "clip_dir", "dino", "seconds"),
    "magicbrush": ("l1", "l2", "clip_i", "dino", "clip_t", "clip_t_local", "seconds"),
    "emu": ("clip_i_src", "l1_src", "clip_t", "clip_dir", "dino_src", "seconds"),
}
CATEGORY_METRICS: dict[str, tuple[str, ...]] = {
    "shapes": ("region_iou", "leakage", "preservation", "edit_success", "no_edit", "l1", "clip_i", "clip_t", "dino"),
    "magicbrush": ("l1", "l2", "clip_i", "dino", "clip_t", "clip_t_local"),
    "emu": ("clip_i_src", "l1_src", "clip_t", "clip_dir", "dino_src"),
}
CLIP_KEYS = ("clip_i", "clip_t", "clip_t_local", "clip_dir", "clip_i_src")
# column labels that differ by protocol: MagicBrush reports CLIP-T against both of its descriptions
PROTOCOL_LABELS: dict[str, dict[str, str]] = {"magicbrush": {"clip_t": "CLIP-T(global)"}}
DINO_KEYS = ("dino", "dino_src")


# ------------------------------------------------------------------------------------------------
# configuration


@dataclasses.dataclass
class EvalConfig:
    """Everything a run depends on (CLI: ``regionedit eval``)."""

    protocol: str
    out: str | Path
    methods: list[str] = dataclasses.field(default_factory=lambda: list(METHODS))
    n: int = 100
    seed: int = DEFAULT_SEED
    data: str | Path | None = None  # dataset folder (magicbrush, emu)
    split: str | None = None  # parquet split of the dataset (e.g. "dev", "test"); None: all files
    model: str | Path = "shapes-64"
    steps: int = 20
    guidance: float = 4.0
    sdedit_strength: float = 0.6
    image_guidance: float = 1.5  # image guidance of the image-conditioned denoisers (MethodSettings.ip2p_image_guidance)
    candidates: int = 3  # our editor's generator candidates (EditorConfig.candidates)
    size: int = 64  # shapes protocol: image side
    renderer: str = "regionedit"  # shapes protocol: who draws the scenes (evaluation.alt_render.RENDERERS)
    clip: str | Path | None = None  # CLIP for the metrics (folder / hub id); None: the model's own CLIP
    dino: str | Path | None = M.DEFAULT_DINO  # DINO for the metrics (folder / hub id in the local cache); None: skip
    grid_k: int = 8
    save_outputs: bool = False  # keep every output PNG (otherwise only those the grids and chains need)
    command: str | None = None

    def validate(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose one of {list(PROTOCOLS)}")
        if self.protocol != "shapes" and not self.data:
            raise ValueError(f"the {self.protocol} protocol needs --data DIR (a {self.protocol} dataset folder; "
                             f"`regionedit world make --format {self.protocol}` makes one)")
        if int(self.n) < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        from regionedit.world.alt_render import RENDERERS

        if self.renderer not in RENDERERS:
            raise ValueError(f"unknown renderer {self.renderer!r}; choose one of {list(RENDERERS)}")
        if self.renderer != "regionedit" and self.protocol != "shapes":
            raise ValueError("--renderer applies to the shapes protocol only (dataset protocols read their images)")
        if int(self.candidates) < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")
        if int(self.steps) < 2:
            raise ValueError(f"steps must be >= 2 (DiffEdit's mask step needs two), got {self.steps}")
        if not self.methods:
            raise ValueError("give at least one method")
        if not float(self.image_guidance) >= 0:
            raise ValueError(f"image_guidance must be >= 0, got {self.image_guidance}")

    def method_settings(self) -> MethodSettings:
        return MethodSettings(steps=int(self.steps), guidance=float(self.guidance), sdedit_strength=float(self.sdedit_strength),
                              candidates=int(self.candidates), ip2p_image_guidance=float(self.image_guidance))


def _canonical_command(cfg: EvalConfig) -> str:
    """The ``regionedit eval`` command line that reproduces ``cfg`` (recorded when no command was given)."""
    parts = ["regionedit", "eval", "--protocol", cfg.protocol, "--methods", ",".join(cfg.methods), "--n", str(cfg.n),
             "--seed", str(cfg.seed), "--out", str(cfg.out)]
    if cfg.data:
        parts += ["--data", str(cfg.data)]
    if cfg.split:
        parts += ["--split", cfg.split]
    parts += ["--model", str(cfg.model), "--steps", str(cfg.steps), "--guidance", str(cfg.guidance),
              "--candidates", str(cfg.candidates)]
    if float(cfg.image_guidance) != 1.5:
        parts += ["--image-guidance", str(cfg.image_guidance)]
    if cfg.protocol == "shapes":
        parts += ["--size", str(cfg.size)]
        if cfg.renderer != "regionedit":
            parts += ["--renderer", cfg.renderer]
    if cfg.clip:
        parts += ["--clip", str(cfg.clip)]
    parts += ["--dino", str(cfg.dino) if cfg.dino else "none"]
    return " ".join(parts)

"""The web UI's **Method** picker: the Editor ("regionedit") or one of the trained seed methods whose weights are
in the served model folder (:class:`SeedMethods`), run through
:class:`~regionedit.pipeline.seed_editor.SeedMethodEditor` like ``regionedit edit --method NAME`` (its own copy of
the folder's models, on the CPU in float32).

Which seed methods are offered is decided from their files alone (a subfolder's ``config.json`` and weights file,
plus the frozen parts a row needs: ``dit/`` for AdaptEdit, ``unet_ip2p/`` for FireEdit, ``region_predictor/`` for
the ``-compose`` rows and FireEdit's region tokens); nothing is loaded until a method is first used. The page offers
the main rows and their ``-compose`` variants, then the InstructPix2Pix peer (``unet_ip2p/`` alone)
(:data:`WEB_SEED_METHODS`); the ablations and ``descriptive-instruction`` stay with ``regionedit edit`` /
``regionedit eval``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

log = logging.getLogger("regionedit.web")

REGIONEDIT = "regionedit"  # the Editor (region found or painted, then inpainted): the page's default method

# the seed methods the page may offer, in menu order (each also needs its files: see SeedMethods.present)
WEB_SEED_METHODS: tuple[str, ...] = ("descriptive", "descriptive-compose", "region_in_context",
                                     "region_in_context-compose", "adaptedit", "adaptedit-compose", "fireedit",
                                     "fireedit-compose", "instructpix2pix")


class MethodLoadError(Exception):
    """A seed method that could not be built (weights missing or unreadable); the message says why."""


def required_files(name: str, folder: Path | None = None) -> tuple[str, ...]:
    """The files (relative to the model folder) whose presence offers seed method ``name``: its subfolder's
    ``config.json`` and weights, and the frozen components its row needs (Region in Context's and FireEdit's UNet
    is the one their config names, read from ``folder`` when given)."""
    from regionedit.methods.adaptedit import WEIGHTS_NAME as ADAPTEDIT_WEIGHTS
    from regionedit.methods.descriptive_edit import WEIGHTS_NAME as DESCRIPTIVE_WEIGHTS
    from regionedit.methods.fireedit import WEIGHTS_NAME as FIREEDIT_WEIGHTS
    from regionedit.methods.region_context import CONFIG_FILE as RIC_CONFIG, WEIGHTS_FILE as RIC_WEIGHTS

    from regionedit.methods.trainable import frozen_unet_subfolder

    base = name.removesuffix("-compose")
    # the frozen UNet a trained method names (unet_ip2p when it names none or there is no folder to read)
    ric_unet, fire_unet = ((frozen_unet_subfolder(folder / sub) if folder is not None else None) or "unet_ip2p"
                           for sub in ("region_in_context", "fireedit"))
    files = {"descriptive": ("descriptive_edit/config.json", f"descriptive_edit/{DESCRIPTIVE_WEIGHTS}"),
             "region_in_context": (f"region_in_context/{RIC_CONFIG}", f"region_in_context/{RIC_WEIGHTS}",
                                   f"{ric_unet}/config.json"),
             "adaptedit": ("adaptedit/config.json", f"adaptedit/{ADAPTEDIT_WEIGHTS}", "dit/model_index.json"),
             "fireedit": ("fireedit/config.json", f"fireedit/{FIREEDIT_WEIGHTS}", f"{fire_unet}/config.json",
                          "region_predictor/config.json"),
             "instructpix2pix": ("unet_ip2p/config.json", "unet_ip2p/diffusion_pytorch_model.safetensors")}[base]
    if name.endswith("-compose"):
        files = (*files, "region_predictor/config.json")
    return tuple(dict.fromkeys(files))


def _retune(seed_editor, steps: int, guidance: float) -> bool:
    """Set a built seed method's denoising ``steps`` and text ``guidance`` in place (they are read at each call);
    False when its row is of an unknown kind (then it is rebuilt)."""
    row = seed_editor.method
    settings = getattr(row, "settings", None)
    if row.name == "instructpix2pix" and dataclasses.is_dataclass(settings):  # the stock pipeline reads its settings
        row.settings = dataclasses.replace(settings, steps=steps, guidance=guidance)
        return True
    adapter = getattr(row, "adapter", None)  # Region in Context's EvalAdapter
    if adapter is not None and hasattr(adapter, "text_guidance"):
        adapter.steps, adapter.text_guidance = steps, guidance
        return True
    cfg = getattr(getattr(row, "method", None), "config", None)
    if cfg is None or not hasattr(cfg, "steps"):
        return False
    if hasattr(cfg, "lambda_T"):  # DescriptiveEdit
        cfg.steps, cfg.lambda_T = steps, guidance
        return True
    if hasattr(cfg, "guidance_scale"):  # AdaptEdit, FireEdit
        cfg.steps, cfg.guidance_scale = steps, guidance
        return True
    return False


class SeedMethods:
    """The seed methods of one model folder. ``location``: the folder (a hub id or None: no seed methods, their
    files cannot be checked without downloading); ``model``: what to load it by (a bundled name such as
    ``"shapes-64"``, recorded in the results' ``model`` metadata; default ``location``). ``names``: the methods
    to consider. :attr:`available` lists those whose files are present (checked once, here).

    Not thread-safe: call :meth:`editor` and the editor it returns under the caller's lock (the web handlers'
    swap lock)."""

    def __init__(self, location: str | Path | None, model: str | None = None,
                 names: tuple[str, ...] = WEB_SEED_METHODS):
        self.folder = Path(location) if location is not None and Path(location).is_dir() else None
        self.model = model or (str(location) if location is not None else None)
        self.available: list[str] = [n for n in names if self.present(n)]
        self._editors: dict[str, tuple[object, int, float]] = {}  # name -> (SeedMethodEditor, steps, guidance)

    @classmethod
    def for_editor(cls, editor) -> "SeedMethods":
        """The seed methods of the folder ``editor``'s models come from (none for an editor without one)."""
        models = getattr(editor, "models", None)
        if models is None:
            return cls(None)
        from regionedit.models.loading import resolve

        try:  # load by the served name ("shapes-64") when it still resolves to the served folder
            same = resolve(models.model_id)[0] == str(models.location)
        except (OSError, ValueError):
            same = False
        return cls(models.location, models.model_id if same else str(models.location))

    @property
    def choices(self) -> list[str]:
        """The Method menu: "regionedit" first, then the available seed methods."""
        return [REGIONEDIT, *self.available]

    def present(self, name: str) -> bool:
        """Whether the files of seed method ``name`` are in the folder (nothing is read or loaded)."""
        return self.folder is not None and all((self.folder / f).is_file() for f in required_files(name, self.folder))

    def editor(self, name: str, steps: int, guidance: float):
        """The :class:`~regionedit.pipeline.seed_editor.SeedMethodEditor` of ``name`` set to ``steps`` / ``guidance``:
        built on first use, then kept (later calls retune it in place). Raises :class:`MethodLoadError` (with the
        reason, e.g. the train command of missing weights) when it cannot be built; a failure is not kept."""
        if name not in self.available:
            raise MethodLoadError(f"{name!r} is not offered here; choose one of {self.choices}")
        cached = self._editors.get(name)
        if cached is not None:
            ed, s, g = cached
            if (s, g) == (steps, guidance) or _retune(ed, steps, guidance):
                self._editors[name] = (ed, steps, guidance)
                return ed
        from regionedit.pipeline.seed_editor import SeedMethodEditor

        try:
            ed = SeedMethodEditor(name, self.model, steps=steps, guidance=guidance)
        except Exception as e:  # noqa: BLE001 - any load failure becomes a message on the page
            log.warning("seed method %s could not be loaded", name, exc_info=True)
            why = str(e).strip() or type(e).__name__
            raise MethodLoadError(f"{type(e).__name__}: {why}" if not isinstance(e, ValueError) else why) from None
        self._editors[name] = (ed, steps, guidance)
        return ed

    def run(self, name: str, image, instruction: str, seed: int, steps: int, guidance: float):
        """Edit ``image`` ((H, W, 3) uint8 RGB) by ``instruction`` with seed method ``name`` (``steps`` denoising
        steps, text ``guidance``, ``seed``); returns its :class:`~regionedit.core.result.EditResult` (``method``:
        ``name``). Raises :class:`MethodLoadError` when the method cannot be built and ``ValueError`` (the message
        for the user) when it refuses the input or fails."""
        ed = self.editor(name, steps, guidance)
        try:
            return ed(image, instruction, seed=seed)
        except OSError as e:  # a component loaded lazily on the first call
            raise ValueError(f"method {name!r} could not load a component ({e})") from None
        except RuntimeError as e:
            raise ValueError(str(e)) from None

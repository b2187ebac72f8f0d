"""The bundled CLIP (``regionedit train world-models --only clip``): contrastive image-caption training with a
dense shape loss, and its export as ``clip/`` plus Stable Diffusion's ``text_encoder/`` (CLIP's text tower)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from regionedit.models import configs as C
from regionedit.training.common import Run, train_loop
from regionedit.world import spec
from regionedit.world.training import world_data as D
from regionedit.world.training.component_common import (add_finetune_record, adamw, cosine_lr, load_tokenizer, save_fp16,
                                                        write_state)
from regionedit.world.training.model_cards import write_text_atomic


class _ClipWithShapeAux(torch.nn.Module):
    """Training-time wrapper: CLIP plus a linear head that reads each projected patch feature
    (``F_img``, as the region predictor sees it) and classifies the shape under it (5 shapes +
    background). Contrastive captions alone left CLIP shape-blind (zero-shot shape 0.28, a linear probe
    on its image features 0.31); the dense labels teach every patch of an object what it is part of.
    Only ``clip`` is exported."""

    def __init__(self, clip):
        super().__init__()
        self.clip = clip
        self.shape_head = torch.nn.Linear(clip.config.projection_dim, len(spec.SHAPES) + 1)


def train_clip(args) -> dict:
    from transformers import CLIPModel

    from regionedit.localize.features import image_features

    tok = load_tokenizer(args.export)
    folder = args.export / "clip"
    run = Run.for_args(args.out / "clip", args)
    # continuing from the shipped CLIP (a fresh --out next to a trained folder) is a fine-tune: its card keeps
    # the original record and adds this run's; the flag survives resumes in the run state
    resumed = run.load() if run.exists() else None
    from_shipped = resumed.get("from_shipped", False) if resumed else (folder / "config.json").exists()
    clip = CLIPModel.from_pretrained(folder, torch_dtype=torch.float32) if from_shipped and not resumed else C.build_clip(tok)
    aux = args.clip_shape_aux
    if resumed:
        has_head = any(k.startswith("shape_head.") for k in resumed["model"])
        if has_head != (aux > 0):
            raise SystemExit(
                f"{run.dir} was trained {'with' if has_head else 'without'} the dense shape loss: resume it with "
                f"--clip-shape-aux {'> 0' if has_head else '0'}, or start a fresh --out"
            )
    model = _ClipWithShapeAux(clip) if aux > 0 else clip
    opt = adamw(model, 1e-3, 0.1)
    rng = np.random.default_rng(args.seed)

    def step_fn(step, gen):
        images, texts, negatives, *labels = D.clip_batch(rng, args.batch or 128, with_labels=aux > 0,
                                                         degrade_prob=args.degrade)
        b = len(texts)
        ids = tok(texts + negatives, padding="max_length", max_length=C.MAX_TOKENS, truncation=True, return_tensors="pt")
        patches, img = image_features(clip, images)
        txt = clip.get_text_features(input_ids=ids.input_ids, attention_mask=ids.attention_mask)
        txt = getattr(txt, "pooler_output", txt)
        img, txt = torch.nn.functional.normalize(img, dim=-1), torch.nn.functional.normalize(txt, dim=-1)
        logits = clip.logit_scale.exp() * img @ txt.T  # (B, 2B): captions, then shape/colour-swapped hard negatives
        target = torch.arange(b)
        loss_i = torch.nn.functional.cross_entropy(logits, target)  # image -> text, with hard negatives
        loss_t = torch.nn.functional.cross_entropy(logits[:, :b].T, target)  # text -> image
        out = {"loss_clip": 0.5 * (loss_i + loss_t)}
        if aux > 0:
            pl = model.shape_head(patches)  # (B, N, 6), N = 16 x 16 patches in raster order
            lab = labels[0].flatten()
            ce = torch.nn.functional.cross_entropy(pl.flatten(0, 1), lab, reduction="none")
            obj = lab < len(spec.SHAPES)  # ~1 patch in 8: balance objects against background
            out["loss_shape"] = 0.5 * (ce[obj].mean() + ce[~obj].mean()) if obj.any() else ce.mean()
        loss = out["loss_clip"] + aux * out.get("loss_shape", 0.0)
        loss.backward()
        return {k: v.item() for k, v in out.items()}

    res = train_loop(run, model, opt, step_fn, args.minutes, args.max_steps, args.seed, lr_at=cosine_lr(1e-3, 100, 3000),
                     extra_state=lambda: {"from_shipped": from_shipped})
    wrote_text = export_clip(clip, tok, args.export, replace_text_encoder=getattr(args, "replace_text_encoder", False))
    extra = {"batch": args.batch or 128, "shape_aux_weight": aux}
    if from_shipped and res["step"] == 0:
        pass  # nothing trained (e.g. `--max-steps 0 --replace-text-encoder` on the shipped CLIP): its record stands
    elif from_shipped:
        add_finetune_record(folder, "clip", "finetune", {"steps": res["step"], "cpu_minutes": round(res["seconds"] / 60, 1), **extra})
    else:
        write_state(folder, "clip", res["step"], res["seconds"], args.seed, extra)
    if wrote_text:
        _write_text_encoder_card(args.export)
    return res


def export_clip(model, tok, export: Path, replace_text_encoder: bool = False) -> bool:
    """Write ``clip/`` (model, tokenizer, image processor) and, as Stable Diffusion's text encoder,
    CLIP's text tower to ``text_encoder/``. Once a UNet exists the text encoder is kept (the UNets were
    trained on it) unless ``replace_text_encoder``: then every UNet must be retrained on the new one.
    Returns whether ``text_encoder/`` was written."""
    from transformers import CLIPImageProcessor, CLIPTextModel

    save_fp16(model, export / "clip")
    tok.save_pretrained(export / "clip")
    proc = CLIPImageProcessor(
        size={"shortest_edge": C.IMAGE_SIZE},
        crop_size={"height": C.IMAGE_SIZE, "width": C.IMAGE_SIZE},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        resample=3,
    )
    proc.save_pretrained(export / "clip")
    # the Stable Diffusion text encoder is CLIP's text tower (as SD uses CLIP ViT-L/14's). It is frozen
    # once a UNet has been trained on it: later CLIP training must not change the UNet's conditioning.
    if not replace_text_encoder and (export / "unet" / "config.json").exists() and (export / "text_encoder" / "config.json").exists():
        print("[clip] text_encoder kept: the UNets were trained on it", flush=True)
        return False
    text = CLIPTextModel(model.config.text_config)
    missing, unexpected = text.load_state_dict(model.text_model.state_dict(), strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        target = getattr(text, "text_model", text)  # transformers < 5 wraps the tower in .text_model
        target.load_state_dict(model.text_model.state_dict())
    save_fp16(text, export / "text_encoder")
    if replace_text_encoder and (export / "unet" / "config.json").exists():
        print("[clip] text_encoder replaced: retrain unet, unet_inpaint and unet_ip2p on it", flush=True)
    return True


def _write_text_encoder_card(export: Path) -> None:
    """The text encoder's model card: it is CLIP's text tower, so its training and quality are CLIP's."""
    clip_state = export / "clip" / "training_state.json"
    record = json.loads(clip_state.read_text()) if clip_state.exists() else {}
    lines = [
        "# text_encoder",
        "",
        "transformers CLIPTextModel: the text tower of the bundled CLIP (`../clip`), exported as Stable Diffusion's",
        "text encoder (SD uses CLIP ViT-L/14's text tower the same way). The UNets condition on its last hidden",
        "states (B, 48, 128), so it is frozen for them: its training and measured quality are CLIP's, see `../clip/README.md`.",
        "",
        "Exported from the CLIP training record:",
        "",
        "```json",
        json.dumps(record, indent=2, sort_keys=True),
        "```",
        "",
    ]
    write_text_atomic(export / "text_encoder" / "README.md", "\n".join(lines))

"""``regionedit train world-models``: train the bundled miniature models on the shapes world.

Components, in dependency order (each resumable, each exported to the diffusers-format folder):

=====================  ===========================================  ==============================
name                   class                                        objective
=====================  ===========================================  ==============================
tokenizer              transformers.CLIPTokenizer (BPE)             BPE on world text
clip                   transformers.CLIPModel (+ text_encoder)      contrastive image-caption
vae                    diffusers.AutoencoderKL                      L1 + MSE + 1e-6 KL
vae_decoder            the same VAE, decoder only (stage 2)         L1 + MSE, x10 near edges
instruction_encoder    transformers.T5EncoderModel                  seq2seq instruction -> edit
unet                   diffusers.UNet2DConditionModel (4 ch)        v-prediction, min-SNR, CFG drop
unet_inpaint           diffusers.UNet2DConditionModel (9 ch)        as SD-inpainting, init from unet
unet_ip2p              diffusers.UNet2DConditionModel (8 ch)        InstructPix2Pix baseline, edit pairs
dit                    diffusers.SD3Transformer2DModel (dit/)       rectified flow, CFG drop (SD3 folder)
=====================  ===========================================  ==============================

Run folders (``--out``) hold ``<name>/state.pt`` checkpoints and ``log.jsonl``; kill and rerun the
same command to resume. Without a checkpoint, a component starts from the weights already in the
export folder (``--export``, default ``<out>/export``), else from scratch. The export never defaults into
the installed package: a folder inside its bundled ``weights/`` is refused unless ``--overwrite-bundled``
is given. To continue from what ships, copy the bundled folder (``regionedit.models.bundled_dir()``) to a
folder of your own and pass it as ``--export``.

Code: this module is the command line (``python -m regionedit.world.training.world_models`` works too); the
trainers are :mod:`.clip_trainer`, :mod:`.vae_trainer`, :mod:`.text_trainers` (tokenizer, instruction encoder)
:mod:`.unet_trainers` and :mod:`.dit_trainer`, on the shared pieces of :mod:`.component_common`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from regionedit.models.bundled import bundled_dir  # noqa: F401
from regionedit.training.common import add_checkpoint_arguments, add_export_arguments, inside_bundled, resolve_export  # noqa: F401
# the trainers, one module per component family (re-exported here: this module's names stay importable)
from regionedit.world.training.clip_trainer import export_clip, train_clip  # noqa: F401
from regionedit.world.training.component_common import write_model_index
from regionedit.world.training.dit_trainer import train_dit  # noqa: F401
from regionedit.world.training.text_trainers import (edit_to_text, export_instruction_encoder,  # noqa: F401
                                                     train_instruction_encoder, train_tokenizer)
from regionedit.world.training.unet_trainers import (INPAINT_BACKGROUND_PROB, INPAINT_TIGHT_PROB,  # noqa: F401
                                                     T2I_OBJECT_WEIGHT, inpaint_inputs, train_unet, train_unet_inpaint,
                                                     train_unet_ip2p)
from regionedit.world.training.vae_trainer import VAE_EDGE_WEIGHT, edge_weight, export_vae, train_vae  # noqa: F401

# "vae_decoder" is the VAE's second stage (SD's ft-MSE recipe): the decoder alone, edge-weighted, the latent space
# unchanged; it writes the same vae/ folder and may run before or after the UNets
ORDER = ("tokenizer", "clip", "vae", "vae_decoder", "instruction_encoder", "unet", "unet_inpaint", "unet_ip2p", "dit")


COMPONENTS = {
    "tokenizer": train_tokenizer,
    "clip": train_clip,
    "vae": train_vae,
    "vae_decoder": lambda args: train_vae(args, decoder_only=True),
    "instruction_encoder": train_instruction_encoder,
    "unet": train_unet,
    "unet_inpaint": train_unet_inpaint,
    "unet_ip2p": train_unet_ip2p,
    "dit": train_dit,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="regionedit train world-models", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", choices=ORDER, action="append", help="train only this component (repeatable); default: all, in order")
    p.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget per component for this invocation")
    add_checkpoint_arguments(p)
    p.add_argument("--max-steps", type=int, default=None, help="stop a component at this many total steps")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: per component)")
    p.add_argument("--seed", type=int, default=0, help="training seed (data and noise)")
    p.add_argument("--out", type=Path, required=True, help="run folder for checkpoints and logs (keep it out of git)")
    add_export_arguments(p, "model folder to write; a component without a checkpoint starts from the weights already there")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--conv-in-lr-scale", type=float, default=1.0,
                   help="unet_ip2p: learning-rate multiplier of conv_in, whose zero-initialised source-image channels "
                        "must learn to read the source (default 1; the 2026-12-03 continuation used 10)")
    p.add_argument("--ip2p-init", choices=("auto", "unet", "unet_inpaint"), default="auto",
                   help="unet_ip2p, a new run: start from the shipped unet_ip2p when the export has one, else the "
                        "text-to-image UNet (auto, default); from the text-to-image UNet with zero source channels "
                        "(unet, InstructPix2Pix's init); or from the inpainting UNet told to keep every pixel "
                        "(unet_inpaint: it reproduces its source from the start)")
    p.add_argument("--ip2p-region-weight", type=float, default=1.0,
                   help="unet_ip2p: loss weight of the latent cells an edit changes (its training mask; default 1, "
                        "InstructPix2Pix's uniform loss)")
    p.add_argument("--lr", type=float, default=None,
                   help="unet / unet_inpaint / unet_ip2p: peak learning rate of the warm-up + cosine schedule "
                        "(default 3e-4)")
    p.add_argument("--degrade", type=float, default=0.0,
                   help="clip: share of training images passed through a JPEG (quality 60-95) or noise (sigma 1-4) "
                        "(world_data.degrade; default 0, the shipped CLIP saw lossless renders only)")
    p.add_argument("--clip-shape-aux", type=float, default=1.0,
                   help="weight of CLIP's auxiliary dense shape loss on its patch features (0: captions only)")
    p.add_argument("--replace-text-encoder", action="store_true",
                   help="with --only clip: export CLIP's text tower as text_encoder even though UNets exist (then retrain every UNet on it)")
    p.add_argument("--vae-decoder-only", action="store_true",
                   help="with --only vae: the same as --only vae_decoder (fine-tune only the VAE decoder; latents, hence the UNets, unchanged)")


def run(args) -> int:
    run_components(args)
    return 0


def run_components(args) -> dict[str, dict]:
    """Train the components ``args.only`` (default: all, in order): ``{name: train_loop result}``
    (``step``, ``seconds``, ``interrupted``; components that return none map to ``{}``)."""
    torch.set_num_threads(args.threads)
    args.export = resolve_export(args.out, args.export, getattr(args, "overwrite_bundled", False))
    args.export.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "config.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items() if k != "func"}, indent=2))
    write_model_index(args.export)
    results = {}
    for name in args.only or ORDER:
        if name not in COMPONENTS:
            print(f"[{name}] not implemented yet, skipped", flush=True)
            continue
        t = time.time()
        print(f"[{name}] training for up to {args.minutes} min", flush=True)
        res = COMPONENTS[name](args)
        results[name] = res if isinstance(res, dict) else {}
        print(f"[{name}] done in {(time.time() - t) / 60:.1f} min: {res}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

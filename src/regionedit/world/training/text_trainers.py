"""The bundled text-side components: the world tokenizer (``--only tokenizer``, BPE on world text) and the
instruction encoder (``--only instruction_encoder``, a T5 encoder pre-trained seq2seq: instruction -> edit)."""

from __future__ import annotations

from pathlib import Path

import torch

from regionedit.models import configs as C
from regionedit.training.common import Run, train_loop
from regionedit.world.training.component_common import adamw, cosine_lr, load_tokenizer, save_fp16, write_state


def train_tokenizer(args) -> dict:
    from regionedit.world.training.tokenizer import build_world_tokenizer

    tok = build_world_tokenizer(model_max_length=C.MAX_TOKENS)
    tok.save_pretrained(args.export / "tokenizer")
    return {"vocab_size": len(tok)}


# --------------------------------------------------------------------------------------------------
# instruction encoder (T5), pre-trained seq2seq: instruction -> structured edit


def edit_to_text(edit: dict) -> str:
    """Canonical structured form of a world edit, the seq2seq target of the instruction encoder."""

    def ref(r):
        return f"{r['color'] or 'any'} {r['shape']}"

    op = edit["op"]
    if op == "remove":
        return f"remove {ref(edit['ref'])}"
    if op == "add":
        return f"add {edit['size'] or 'any'} {edit['color']} {edit['shape']} {edit['area'] or 'anywhere'}"
    if op == "local":
        return f"replace {ref(edit['ref'])} with {edit['color']} {edit['shape']}"
    if op == "color":
        return f"recolor {ref(edit['ref'])} {edit['color']}"
    if op == "size":
        return f"resize {ref(edit['ref'])} {'bigger' if edit['bigger'] else 'smaller'}"
    if op == "background":
        return f"background {edit['top']} {edit['bottom'] or 'solid'}"
    raise ValueError(f"no structured form for op {op!r}")


def train_instruction_encoder(args) -> dict:
    from transformers import T5EncoderModel

    from regionedit.world import sample_edit

    tok = load_tokenizer(args.export)
    folder = args.export / "instruction_encoder"
    run = Run.for_args(args.out / "instruction_encoder", args)
    model = C.build_instruction_encoder(tok)
    if (folder / "config.json").exists() and not run.exists():
        enc = T5EncoderModel.from_pretrained(folder, torch_dtype=torch.float32)
        model.encoder.load_state_dict(enc.encoder.state_dict())
        model.shared.load_state_dict(enc.shared.state_dict())
    opt = adamw(model, 1e-3)
    counter = {"i": 0}
    cats = [c for c in ("remove", "add", "local", "color", "size", "background")]

    def step_fn(step, gen):
        srcs, tgts = [], []
        for _ in range(args.batch or 64):
            i = counter["i"]
            counter["i"] += 1
            s = sample_edit(args.seed + 7, i, category=cats[i % len(cats)])
            srcs.append(s.instruction)
            tgts.append(edit_to_text(s.edit))
        enc = tok(srcs, padding="max_length", max_length=C.MAX_TOKENS, truncation=True, return_tensors="pt")
        lab = tok(tgts, padding="max_length", max_length=24, truncation=True, return_tensors="pt")
        labels = lab.input_ids[:, 1:].clone()  # drop BOS: it is the decoder start token
        labels[lab.attention_mask[:, 1:] == 0] = -100
        out = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask, labels=labels)
        out.loss.backward()
        return {"loss": out.loss.item()}

    if run.exists():  # resume the data stream where it stopped
        counter["i"] = run.load().get("counter", 0)
    res = train_loop(run, model, opt, step_fn, args.minutes, args.max_steps, args.seed,
                     extra_state=lambda: {"counter": counter["i"]}, lr_at=cosine_lr(1e-3, 50, 2000))
    export_instruction_encoder(model, tok, args.export)
    write_state(folder, "instruction_encoder", res["step"], res["seconds"], args.seed, {"batch": args.batch or 64})
    return res


def export_instruction_encoder(model, tok, export: Path) -> None:
    from transformers import T5EncoderModel

    enc = T5EncoderModel(model.config)
    enc.encoder.load_state_dict(model.encoder.state_dict())
    enc.shared.load_state_dict(model.shared.state_dict())
    save_fp16(enc, export / "instruction_encoder")
    tok.save_pretrained(export / "instruction_encoder")

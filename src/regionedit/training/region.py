"""``regionedit train region``: train the seed-001 region predictor on text-image pairs only.

No edit pairs and no ground-truth masks: each step takes (image, caption) pairs, writes an instruction
and the target description from the *caption text alone* (the paper uses an LLM; we use the world
language rules, :func:`instruction_from_caption`), predicts a region, fills it with the frozen
inpainting generator, blends with a differentiable soft mask and minimises

    L = alpha * L_semAlign (eqs 4-6) + beta * (l_g L_CLIPg + l_d L_CLIPd + l_s L_CLIPs + l_c L_CLIPc)
        + gamma * mean(region)  (keeps regions tight)

(eqs 7-10; ``L_CLIPc``, our addition, is eq. 7 in CLIP's contrastive form: the composite must match the
target better than the captions a wrong region would produce).

Data: ``--pairs DIR`` reads WebDataset shards written by ``regionedit world make --format pairs``;
without it, pairs are rendered on the fly by the same code (image and caption only; the scene graph is
discarded before training sees the sample). Resumable: checkpoints in ``--out``; the trained predictor
is exported to ``<export>/region_predictor`` (config.json + fp16 safetensors).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

from regionedit.world.grammar import REFERENT_OPS, WorldDescriber, format_caption, parse_caption
from regionedit.world.intent import Referent
from regionedit.world import language as lang
from regionedit.world import spec
from regionedit.world.scene import Background, color_allowed



def example_from_caption(caption: str, rng: np.random.Generator, absent_prob: float = 0.1) -> dict | None:
    """Text-only edit synthesis from a caption (never the image or a scene graph), or None.

    Returns ``{"op", "instruction", "target", "local", "clip_target", "negatives"}``: ``target`` is the target
    description t_e, ``local`` the generator prompt, and ``clip_target`` the description the composite
    is scored against by the CLIP losses: for edits of an existing object (remove / color / local /
    size) the caption *without that object* (the region is the object's footprint: the region that, once
    refilled with background, makes the object disappear), for background and add edits t_e, and for
    absent referents the source caption itself (nothing should change). ``negatives`` are captions a
    wrong region would produce (another object removed; nothing changed), scored against in the
    contrastive form of the CLIP loss.
    """
    objects, (top, bottom) = parse_caption(caption)
    bg = Background(top, bottom)
    present = {(o.color, o.shape) for o in objects}
    ops = ["remove", "color", "local", "size", "background", "add"] if objects else ["add", "background"]
    op = "absent" if rng.random() < absent_prob else ops[rng.integers(len(ops))]
    clip_target, negatives = None, []
    if op in REFERENT_OPS:
        k = int(rng.integers(len(objects)))
        o: Referent = objects[k]
        clip_target = format_caption(objects[:k] + objects[k + 1:], (top, bottom))
        # what a wrong region would produce: the edit applied to another object, or to every object
        negatives = [format_caption(objects[:j] + objects[j + 1:], (top, bottom)) for j in range(len(objects)) if j != k]
        if len(objects) > 1:
            negatives.append(format_caption([], (top, bottom)))
        unique_shape = sum(x.shape == o.shape for x in objects) == 1
        ref = lang.refer(rng, None if unique_shape and rng.random() < 0.3 else o.color, o.shape)
        if op == "remove":
            text = lang.phrase_remove(rng, ref)
        elif op == "color":
            cs = [c for c in spec.OBJECT_COLORS if c != o.color and (c, o.shape) not in present and color_allowed(c, bg)]
            if not cs:
                return None
            text = lang.phrase_color(rng, ref, cs[rng.integers(len(cs))])
        elif op == "local":
            opts = [(c, s) for c in spec.OBJECT_COLORS for s in spec.SHAPES if s != o.shape and (c, s) not in present and color_allowed(c, bg)]
            c, s = opts[rng.integers(len(opts))]
            text = lang.phrase_replace(rng, ref, lang.new_object_phrase(rng, c, s, None))
        else:
            text = lang.phrase_size(rng, ref, bigger=o.size != "large" if o.size else bool(rng.random() < 0.5))
    elif op == "add":
        opts = [(c, s) for c in spec.OBJECT_COLORS for s in spec.SHAPES if (c, s) not in present and color_allowed(c, bg)]
        c, s = opts[rng.integers(len(opts))]
        area = spec.AREAS[rng.integers(len(spec.AREAS))] if rng.random() < 0.5 else None
        text = lang.phrase_add(rng, lang.new_object_phrase(rng, c, s, None), area)
    elif op == "background":
        names = [n for n in spec.BACKGROUND_COLORS if n != top]
        new = Background(names[rng.integers(len(names))])
        if not all(color_allowed(x.color, new) for x in objects if x.color):
            return None
        text = lang.phrase_background(rng, new)
    else:  # absent referent: any edit of an object the caption does not have
        text = _absent_instruction(rng, objects, present, bg)
    d = WorldDescriber()(text, caption)
    if d.intent is None:
        return None
    if op == "absent":
        removed = [format_caption(objects[:j] + objects[j + 1:], (top, bottom)) for j in range(len(objects))]
        if len(objects) > 1:
            removed.append(format_caption([], (top, bottom)))
        return {"op": op, "instruction": text, "target": caption, "local": "background", "clip_target": caption,
                "negatives": removed}
    if d.error:
        return None
    if op != "add":
        negatives.append(caption)  # an empty region leaves the source as it was
    if op == "background" and objects:  # a region over the objects too paints them over
        negatives.append(format_caption([], d.intent.background))
    return {"op": op, "instruction": text, "target": d.target_description, "local": d.local_prompt,
            "clip_target": clip_target or d.target_description, "background": d.intent.background,
            "negatives": negatives}


def _absent_instruction(rng: np.random.Generator, objects, present: set, bg) -> str:
    """An instruction naming an object the caption lacks, in any referent phrasing. Half the time a near
    miss of a present object (its shape in another colour, or its colour on another shape), the cases a
    region predictor confuses; a bare shape ("the star") only when no object has that shape."""
    shapes_present = {s for _, s in present}
    if objects and rng.random() < 0.5:
        o = objects[int(rng.integers(len(objects)))]
        opts = ([(c, o.shape) for c in spec.OBJECT_COLORS] + [(o.color, s) for s in spec.SHAPES]) if o.color else []
        opts = [(c, s) for c, s in opts if (c, s) not in present]
    else:
        opts = []
    if not opts:
        opts = [(c, s) for c in spec.OBJECT_COLORS for s in spec.SHAPES if (c, s) not in present]
    c, s = opts[int(rng.integers(len(opts)))]
    ref = lang.refer(rng, None if s not in shapes_present and rng.random() < 0.3 else c, s)
    kind = rng.integers(4)
    if kind == 0:
        return lang.phrase_remove(rng, ref)
    if kind == 1:
        cs = [x for x in spec.OBJECT_COLORS if x != c and color_allowed(x, bg)]
        return lang.phrase_color(rng, ref, cs[int(rng.integers(len(cs)))])
    if kind == 2:
        s2 = [x for x in spec.SHAPES if x != s][int(rng.integers(len(spec.SHAPES) - 1))]
        cs = [x for x in spec.OBJECT_COLORS if color_allowed(x, bg)]
        return lang.phrase_replace(rng, ref, lang.new_object_phrase(rng, cs[int(rng.integers(len(cs)))], s2, None))
    return lang.phrase_size(rng, ref, bigger=bool(rng.random() < 0.5))


def instruction_from_caption(caption: str, rng: np.random.Generator, absent_prob: float = 0.1):
    """``(instruction, target_description, local_prompt)`` or None: see :func:`example_from_caption`."""
    ex = example_from_caption(caption, rng, absent_prob)
    return None if ex is None else (ex["instruction"], ex["target"], ex["local"])


def background_estimate(x: torch.Tensor) -> torch.Tensor:
    """A classical, non-learned fill: each row replaced by its median colour.

    (B, 3, H, W) in [-1, 1] -> same shape. World backgrounds are top-to-bottom gradients and objects
    cover a minority of each row, so this is the image with its objects removed; it reads only pixels.
    Used by the ``proxy`` fill of training (see :class:`RegionTrainConfig`), never at inference.
    """
    return x.median(dim=-1, keepdim=True).values.expand_as(x)


def background_from_text(background, h: int, w: int) -> torch.Tensor:
    """The background a background edit asks for, drawn from its colour names: (3, H, W) in [-1, 1]."""
    from regionedit.world.rendering import render_background

    top, bottom = (background, None) if isinstance(background, str) else tuple(background)
    img = render_background(Background(top, bottom), (h, w))
    return torch.from_numpy(img).permute(2, 0, 1).float() / 127.5 - 1


@dataclasses.dataclass
class RegionTrainConfig:
    alpha: float = 1.0  # weight of L_semAlign
    beta: float = 1.0  # weight of L_CLIP
    lambda_g: float = 1.0  # CLIP guidance (eq. 7)
    lambda_d: float = 1.0  # directional CLIP (eq. 8)
    lambda_s: float = 1.0  # structural (eq. 9)
    lambda_c: float = 1.0  # contrastive CLIP: the composite must match clip_target better than the negatives
    lambda_p: float = 1.0  # presence head: BCE on "does the referent exist", a label the caption text implies
    absent_prob: float = 0.1  # share of examples naming an object the caption lacks
    degrade: float = 0.0  # share of training images passed through a JPEG or noise (world_data.degrade)
    gamma: float = 0.2  # region area penalty
    gen_steps: int = 6  # DDIM steps of the frozen generator during training
    guidance: float = 4.0
    lr: float = 3e-4
    # What the soft composite blends in (eq. 10's "generated" image):
    #  "generator": the frozen inpainting generator fills the hard predicted region with the local prompt
    #               (the paper's recipe; use it with a real inpainting model);
    #  "proxy":     edits of an existing object blend in a classical background estimate of the whole
    #               frame (:func:`background_estimate`) and are scored against the caption without the
    #               object, background edits blend in the requested background drawn from its colour names,
    #               and only "add" edits call the generator. Every pixel then has a candidate, so the CLIP
    #               losses can grow the region anywhere (with "generator", nothing outside the current hard
    #               region can change, which stalls training from scratch), and a weak miniature generator
    #               does not corrupt the signal. Text-image pairs only, as before.
    fill: str = "proxy"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="shapes-64", help="frozen models (bundled name, folder or hub id)")
    p.add_argument("--pairs", type=Path, default=None, help="WebDataset pair shards (default: render pairs on the fly)")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log)")
    p.add_argument("--export", type=Path, default=None, help="where region_predictor/ is written (default: the model folder)")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-clip-text", dest="clip_text", action="store_false",
                   help="a new predictor reads only the instruction encoder (default: also CLIP's text tokens)")
    p.add_argument("--presence", action="store_true",
                   help="give the predictor a presence head (added to a shipped predictor that lacks one) and train it")
    p.add_argument("--presence-only", action="store_true",
                   help="train only the presence head (implies --presence), the rest of the predictor frozen: the "
                        "regions stay exactly as shipped and a step skips the generator and the CLIP losses")
    for f in dataclasses.fields(RegionTrainConfig):
        extra = {"choices": ["proxy", "generator"]} if f.name == "fill" else {}
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default, **extra)


def _pair_stream(args, rng):
    """Yields (image uint8 HxWx3, caption) forever."""
    if args.pairs is not None:
        from regionedit.data import load_dataset

        ds = load_dataset(args.pairs)
        while True:
            for i in rng.permutation(len(ds)):
                r = ds[int(i)]
                yield r["source"], r["source_caption"]
    from regionedit.world.language import caption
    from regionedit.world.rendering import render
    from regionedit.world.scene import sample_scene

    while True:
        s = sample_scene(rng)
        yield render(s), caption(s, rng, size_words=0.6)


def run(args) -> int:
    from regionedit import models as M
    from regionedit.generate import InpaintConfig, InpaintGenerator
    from regionedit.localize import RegionPredictor, RegionPredictorConfig, SemanticAlignment
    from regionedit.localize import losses as L
    from regionedit.localize.features import clip_pixels, image_features, instruction_inputs, text_embeddings
    from regionedit.localize import load_region_predictor, save_region_predictor
    from regionedit.training.common import Run, earlier_record, train_loop
    from regionedit.world.training.world_data import degrade

    torch.set_num_threads(args.threads)
    args.presence = args.presence or args.presence_only
    cfg = RegionTrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(RegionTrainConfig)})
    m = M.load(args.model)
    export = Path(args.export or m.location)
    clip, proc = m.clip, m.clip_processor
    size = proc.crop_size["height"]
    d_img = clip.config.projection_dim
    d_ins = m.instruction_encoder.config.d_model
    pcfg = RegionPredictorConfig(image_dim=d_img, instruction_dim=d_ins, clip_dim=d_img,
                                 text_dim=clip.config.text_config.hidden_size if args.clip_text else 0,
                                 presence=args.presence)
    folder = export / "region_predictor"
    run_ = Run(args.out / "region")
    # the record of the predictor this run continues from, minus its presence head (kept in the run state
    # across resumes): the card lists it under "earlier training", or, for --presence-only, as the regions' own
    earlier = earlier_record(run_, folder, drop=("presence_head",))  # a new head is trained after (--presence-only)
    if run_.exists():  # resume: the predictor's architecture is the checkpoint's
        saved = run_.load().get("predictor_config")
        pred = RegionPredictor(RegionPredictorConfig.from_dict(saved) if saved else dataclasses.replace(pcfg, text_dim=0))
    elif (folder / "config.json").exists():  # continue from the shipped predictor
        pred = load_region_predictor(folder).train()
        if args.presence and not pred.config.presence:  # same weights, plus a new presence head
            new = RegionPredictor(dataclasses.replace(pred.config, presence=True))
            missing, unexpected = new.load_state_dict(pred.state_dict(), strict=False)
            assert all(k.startswith("presence_head.") for k in missing) and not unexpected, (missing, unexpected)
            pred = new.train()
    else:
        pred = RegionPredictor(pcfg)
    sem = SemanticAlignment(pred.config.dim, d_img)
    params = torch.nn.ModuleDict({"pred": pred, "sem": sem})
    if args.presence_only:
        for n, q in params.named_parameters():
            q.requires_grad_(n.startswith("pred.presence_head."))
    opt = torch.optim.AdamW(params.parameters(), lr=cfg.lr, weight_decay=0.01)
    gen = InpaintGenerator(m, InpaintConfig(steps=cfg.gen_steps, guidance=cfg.guidance))
    rng = np.random.default_rng(args.seed + 11)
    aug = np.random.default_rng(args.seed + 12)  # its own stream: --degrade does not change the scenes drawn
    stream = _pair_stream(args, rng)
    (args.out).mkdir(parents=True, exist_ok=True)
    (args.out / "config.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items() if k != "func"}, indent=2))

    def batch():
        imgs, exs = [], []
        while len(imgs) < args.batch:
            img, cap = next(stream)
            ex = example_from_caption(cap, rng, cfg.absent_prob)
            if ex is None:
                continue
            ex["source"] = cap
            imgs.append(degrade(img, aug, cfg.degrade) if cfg.degrade > 0 else img)
            exs.append(ex)
        x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 127.5 - 1
        return x, exs

    def fill(x, region, exs, g):
        """The image blended into the composite, (B, 3, H, W), no gradient (see RegionTrainConfig.fill)."""
        if cfg.fill == "generator":
            return gen(x, (region > 0.5).float(), [e["local"] for e in exs], generator=g)
        out = background_estimate(x).clone()
        for i, e in enumerate(exs):
            if e["op"] == "background":
                out[i] = background_from_text(e["background"], *x.shape[-2:])
        add = [i for i, e in enumerate(exs) if e["op"] == "add"]
        if add:
            out[add] = gen(x[add], (region[add] > 0.5).float(), [exs[i]["local"] for i in add], generator=g)
        return out

    def contrastive(e_res, t_pos, negatives):
        """L_CLIPc of each sample against its own negative captions (see losses.clip_contrastive_loss)."""
        k = max(len(n) for n in negatives)
        if k == 0:
            return e_res.sum() * 0
        with torch.no_grad():
            t_neg_flat = text_embeddings(clip, m.clip_tokenizer, [t for n in negatives for t in n])
        t_neg = torch.zeros(len(negatives), k, t_pos.shape[-1])
        valid = torch.zeros(len(negatives), k, dtype=torch.bool)
        i0 = 0
        for i, n in enumerate(negatives):
            t_neg[i, :len(n)] = t_neg_flat[i0:i0 + len(n)]
            valid[i, :len(n)] = True
            i0 += len(n)
        return L.clip_contrastive_loss(e_res, t_pos, t_neg, valid, clip.logit_scale.exp().detach())

    def presence_terms(out, exs):
        """``(presence BCE or None, logs)`` over the referent edits of a batch (present or absent; add /
        background edits have no referent to look for)."""
        ref = torch.tensor([e["op"] in REFERENT_OPS or e["op"] == "absent" for e in exs])
        if "presence_logit" not in out or not ref.any():
            return None, {}
        logit = out["presence_logit"][ref]
        present = torch.tensor([e["op"] != "absent" for e in exs])[ref]
        l_p = L.presence_loss(logit, present.float())
        return l_p, {"presence": l_p.item(), "presence_acc": ((logit > 0) == present).float().mean().item()}

    def presence_step(x, exs):
        """``--presence-only``: the presence BCE, nothing else (no generator, no CLIP losses)."""
        with torch.no_grad():
            f_img, _ = image_features(clip, clip_pixels(x, size, proc.image_mean, proc.image_std))
            ins_in = instruction_inputs(m, pred, [e["instruction"] for e in exs])
        l_p, logs = presence_terms(pred(f_img, **ins_in), exs)
        if l_p is None:  # no referent edit in this batch: nothing to learn from
            return {"loss": 0.0}
        l_p.backward()
        return {"loss": l_p.item(), **logs}

    def step_fn(step, g):
        x, exs = batch()
        if args.presence_only:
            return presence_step(x, exs)
        ins, tgt = [e["instruction"] for e in exs], [e["target"] for e in exs]
        with torch.no_grad():
            f_img, e_src = image_features(clip, clip_pixels(x, size, proc.image_mean, proc.image_std))
            ins_in = instruction_inputs(m, pred, ins)
            t_tgt = text_embeddings(clip, m.clip_tokenizer, tgt)
            t_clip = text_embeddings(clip, m.clip_tokenizer, [e["clip_target"] for e in exs])
            t_src = text_embeddings(clip, m.clip_tokenizer, [e["source"] for e in exs])
        out = pred(f_img, pixels=x, **ins_in)
        region = out["region"]  # (B, 1, H, W)
        with torch.no_grad():
            generated = fill(x, region, exs, g)
        res = L.soft_composite(x, generated, region)
        f_res, e_res = image_features(clip, clip_pixels(res, size, proc.image_mean, proc.image_std))
        l_sem = L.semantic_alignment_loss(sem(out["f_edited"]), t_tgt, sem(pred.proj_img(f_img)), t_src)
        l_g = L.clip_global_loss(e_res, t_clip)
        changed = torch.tensor([e["op"] != "absent" for e in exs])  # eq. 8 needs a text direction
        l_d = L.clip_directional_loss(e_res[changed], e_src[changed], t_clip[changed], t_src[changed]) if changed.any() else e_res.sum() * 0
        l_s = L.clip_structural_loss(f_img, f_res)
        area = L.region_area_loss(region)
        l_c = contrastive(e_res, t_clip, [e["negatives"] for e in exs])
        loss = cfg.alpha * l_sem + cfg.beta * (cfg.lambda_g * l_g + cfg.lambda_d * l_d + cfg.lambda_s * l_s + cfg.lambda_c * l_c) + cfg.gamma * area
        l_p, logs = presence_terms(out, exs)
        if l_p is not None:
            loss = loss + cfg.lambda_p * l_p
        loss.backward()
        return {"loss": loss.item(), "sem": l_sem.item(), "clip_g": l_g.item(), "clip_d": l_d.item(),
                "clip_s": l_s.item(), "clip_c": l_c.item(), "area": area.item(), **logs}

    res = train_loop(run_, params, opt, step_fn, args.minutes, args.max_steps, args.seed, log_every=5,
                     extra_state=lambda: {"predictor_config": dataclasses.asdict(pred.config), "earlier_training": earlier})
    state = {"steps": res["step"], "cpu_minutes": round(res["seconds"] / 60, 1), "seed": args.seed, "batch": args.batch,
             "train_config": dataclasses.asdict(cfg)}
    if args.presence_only:  # the regions are the earlier training's: keep its record, add the head's
        state = {**(earlier or {}), "presence_head": {k: v for k, v in state.items() if k != "seed"}}
    elif earlier is not None:
        state["earlier_training"] = earlier
    save_region_predictor(pred, folder, state)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="regionedit train region", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

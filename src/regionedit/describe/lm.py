"""``LMDescriber``: the Describe stage through any ``transformers`` chat LM or VLM, asked for one JSON object.

    d = LMDescriber.from_pretrained("Qwen/Qwen2.5-0.5B-Instruct")        # a hub id in the local cache, or a folder
    d("let the cat wear a hat").to_dict()                                  # operation, target, content, ...

The model is asked for ``{"operation", "target", "content", "target_description"}``; the first JSON object of
its answer is read and checked against that schema (:func:`validate_answer`). The first attempt is greedy (the
same input gives the same output); an unreadable answer is retried ``retries`` times with seeded sampling (a
``torch.Generator`` per attempt, so no global random state is touched), and if none can be read the
Description's ``error`` says so (bad model output never raises). The model decides the edit on its own; the
grammar is not consulted. The local prompt and the localizer's text are built from the validated fields by
:func:`~regionedit.describe.build.describe_edit`, as for the grammar.

``constrained=True`` (the default for models under a billion parameters) imposes the schema while decoding: the
operation is the one of the nine names the model finds most likely after ``{"operation": "``, and each string
field is decoded greedily inside the JSON skeleton up to its closing quote, so the answer is always valid.

A folder whose config is an image-text-to-text model (a VLM) is loaded with ``AutoProcessor`` and
``AutoModelForImageTextToText``, and ``__call__(..., image=...)`` shows it the image (an ``(H, W, 3)`` uint8 array,
a grey or RGBA array, or a PIL image, of any size: the processor resizes it). The image's placeholder goes before the
query in the last user turn; constrained decoding encodes the image once, with the prompt, and reuses the key/value
cache after it. A VLM called without an image answers as a text LM. Tested with a tiny LLaVA
(:func:`regionedit.models.tiny_describers.save_tiny_vlm`) and a tiny Qwen2-VL (3-D M-RoPE positions; its
``AutoProcessor`` needs torchvision, for its video processor).
"""

from __future__ import annotations

import copy
import json
import os
import re
from typing import Any, Callable

from .base import OPERATIONS, Description, check_instruction
from .build import describe_edit

__all__ = ["LMDescriber", "SCHEMA_KEYS", "SYSTEM_PROMPT", "build_messages", "extract_json", "validate_answer"]

SCHEMA_KEYS = ("operation", "target", "content", "target_description")
NULL_TARGET_OPS = ("global", "background", "add")  # the only operations whose target may be null
CONTENT_OPS = ("add", "replace", "recolor", "attribute", "background")  # these need content

SYSTEM_PROMPT = (
    "You turn an image-editing instruction into one JSON object and nothing else, with the keys "
    "\"operation\" (one of add, remove, replace, recolor, resize, move, attribute, background, global), "
    "\"target\" (the object edited, as written in the instruction; for add the object it goes on, or null; "
    "null for background and global edits), \"content\" (what the edit brings: the new object, the colour, "
    "bigger or smaller, where to move it, the attribute, the new background or the style; null for remove) and "
    "\"target_description\" (a short caption of the edited image, or of the edited region when the source "
    "caption is unknown)."
)

EXAMPLES: tuple[tuple[str | None, str, dict], ...] = (
    ("a cat sitting on a sofa", "replace the cat with a dog",
     {"operation": "replace", "target": "the cat", "content": "a dog", "target_description": "a dog sitting on a sofa"}),
    (None, "please get rid of the person on the left",
     {"operation": "remove", "target": "the person on the left", "content": None, "target_description": "background"}),
    ("a red car parked on a street", "make the car blue",
     {"operation": "recolor", "target": "the car", "content": "blue", "target_description": "a blue car parked on a street"}),
    (None, "let the dog wear a hat",
     {"operation": "attribute", "target": "the dog", "content": "a hat", "target_description": "a dog wearing a hat"}),
    ("a lake surrounded by trees", "add a boat on the lake",
     {"operation": "add", "target": "the lake", "content": "a boat", "target_description": "a boat on a lake surrounded by trees"}),
    (None, "change the background to a beach",
     {"operation": "background", "target": None, "content": "a beach", "target_description": "a beach background"}),
    (None, "make it look like winter",
     {"operation": "global", "target": None, "content": "winter", "target_description": "the same scene in winter"}),
    (None, "move the ball to the left",
     {"operation": "move", "target": "the ball", "content": "to the left", "target_description": "a ball on the left"}),
)


def _query(instruction: str, source_caption: str | None) -> str:
    return f"Source caption: {source_caption if source_caption else 'unknown'}\nInstruction: {instruction}"


def build_messages(instruction: str, source_caption: str | None = None, image: bool = False,
                   examples=EXAMPLES) -> list[dict[str, Any]]:
    """Chat messages: the system prompt, one user/assistant pair per few-shot example, then the query (with an
    image slot first when ``image``: ``{"type": "image"}``, the processor's chat format)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}]
    for cap, ins, ans in examples:
        messages.append({"role": "user", "content": _query(ins, cap)})
        messages.append({"role": "assistant", "content": json.dumps(ans)})
    query = _query(instruction, source_caption)
    if image:
        messages.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": query}]})
    else:
        messages.append({"role": "user", "content": query})
    return messages


def _plain_prompt(messages: list[dict[str, Any]], image_token: str | None = None) -> str:
    """The prompt as plain text for tokenizers without a chat template (``image_token`` before a query that has an
    image slot)."""
    lines = [messages[0]["content"], ""]
    for m in messages[1:]:
        content = m["content"] if isinstance(m["content"], str) else m["content"][-1]["text"]
        if image_token and not isinstance(m["content"], str) and any(c.get("type") == "image" for c in m["content"]):
            content = image_token + "\n" + content
        lines += [content] if m["role"] == "user" else [f"JSON: {content}", ""]
    lines.append("JSON:")
    return "\n".join(lines)


def extract_json(text: str) -> dict[str, Any] | None:
    """The first balanced ``{...}`` of ``text`` that parses as a JSON object (Python-style single quotes and
    None tolerated), or None."""
    start = text.find("{")
    while start != -1:
        depth, quote, esc = 0, "", False
        for k in range(start, len(text)):
            ch = text[k]
            if quote:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    chunk = text[start: k + 1]
                    for cand in (chunk, re.sub(r"\bNone\b", "null", re.sub(r"(?<![A-Za-z])'([^'\"]*)'", r'"\1"', chunk))):
                        try:
                            obj = json.loads(cand)
                        except ValueError:
                            continue
                        if isinstance(obj, dict):
                            return obj
                    break
        start = text.find("{", start + 1)
    return None


def validate_answer(obj: Any) -> tuple[dict[str, Any] | None, str | None]:
    """Check an answer against the schema. Returns ``(fields, None)`` with the four keys normalised (strings
    stripped, "" / "null" -> None, the operation lower-cased), or ``(None, problem)``.

    Rules: ``operation`` one of the nine; ``target`` / ``content`` a string or null; ``target`` null only for
    global, background and add; ``content`` given for add, replace, recolor, attribute and background;
    ``target_description`` a non-empty string."""
    if not isinstance(obj, dict):
        return None, "no JSON object in the answer"
    missing = [k for k in SCHEMA_KEYS if k not in obj]
    if missing:
        return None, f"the answer lacks {', '.join(missing)}"
    op = obj["operation"]
    if not isinstance(op, str) or op.strip().lower() not in OPERATIONS:
        return None, f"operation {op!r} is not one of {', '.join(OPERATIONS)}"
    op = op.strip().lower()
    out: dict[str, Any] = {"operation": op}
    for key in ("target", "content"):
        v = obj[key]
        if v is not None and not isinstance(v, str):
            return None, f"{key} must be a string or null, got {type(v).__name__}"
        v = v.strip() if isinstance(v, str) else None
        out[key] = None if not v or v.lower() in ("null", "none") else v
    if out["target"] is None and op not in NULL_TARGET_OPS:
        return None, f"a {op} edit needs a target (null only for {', '.join(NULL_TARGET_OPS)})"
    if out["content"] is None and op in CONTENT_OPS:
        return None, f"a {op} edit needs content"
    td = obj["target_description"]
    if not isinstance(td, str) or not td.strip():
        return None, "target_description must be a non-empty string"
    out["target_description"] = td.strip()
    return out, None


def _dtype(torch_dtype):
    import torch

    if torch_dtype is None or torch_dtype == "auto" or isinstance(torch_dtype, torch.dtype):
        return torch_dtype
    name = str(torch_dtype).replace("torch.", "")
    if not isinstance(getattr(torch, name, None), torch.dtype):
        raise ValueError(f"unknown torch_dtype {torch_dtype!r}: give e.g. 'float32', 'bfloat16' or 'float16'")
    return getattr(torch, name)


class _GumbelSampling:
    """Logits processor: temperature-scaled logits plus Gumbel noise from an explicit ``torch.Generator``;
    greedy decoding on these samples from the softmax (the Gumbel-max trick) without the global RNG."""

    def __init__(self, generator, temperature: float):
        self.generator, self.temperature = generator, temperature

    def __call__(self, input_ids, scores):
        import torch

        u = torch.rand(scores.shape, generator=self.generator, device="cpu").clamp_(1e-10, 1 - 1e-10)
        noise = -torch.log(-torch.log(u)).to(scores.device, scores.dtype)
        return scores / self.temperature + noise


class LMDescriber:
    """:class:`~regionedit.describe.Describer` backed by a chat LM or VLM (see the module docstring).

    Build it with :meth:`from_pretrained`; ``LMDescriber(generate_fn=f)`` wraps any text generator instead
    (``f(messages, attempt) -> str``; free mode only), e.g. an API client or a test double.

    Args:
        model / processor: a loaded ``transformers`` model and its tokenizer (LM) or processor (VLM).
        generate_fn: alternative to ``model``: ``(messages, attempt) -> answer text``.
        max_new_tokens: budget of a free answer (and of each string field when constrained).
        retries: further sampled attempts after an unreadable greedy answer.
        constrained: impose the schema while decoding (needs ``model``).
        seed: base seed of the sampled retries (attempt ``k`` uses ``seed + k``).
        temperature: sampling temperature of the retries.
    Attributes after a call: ``last_outputs`` (raw answers, one per attempt), ``last_attempts``, and for the
    constrained mode ``last_scores`` (the log-likelihood of each operation name).
    """

    def __init__(self, model=None, processor=None, *, generate_fn: Callable[[list, int], str] | None = None,
                 max_new_tokens: int = 96, retries: int = 2, constrained: bool = False, seed: int = 0,
                 temperature: float = 0.8, is_vlm: bool = False, device: str = "cpu", examples=EXAMPLES) -> None:
        if model is None and generate_fn is None:
            raise ValueError("LMDescriber needs a model (use LMDescriber.from_pretrained(folder_or_id)) or a "
                             "generate_fn(messages, attempt) -> str")
        if constrained and model is None:
            raise ValueError("constrained=True needs a transformers model, not a generate_fn")
        if max_new_tokens < 1 or retries < 0:
            raise ValueError(f"max_new_tokens must be >= 1 and retries >= 0, got {max_new_tokens} and {retries}")
        self.model, self.processor, self.generate_fn = model, processor, generate_fn
        self.max_new_tokens, self.retries, self.constrained = max_new_tokens, retries, constrained
        self.seed, self.temperature, self.is_vlm, self.device = seed, temperature, is_vlm, device
        self.examples = examples
        self.last_outputs: list[str] = []
        self.last_scores: dict[str, float] = {}
        self._banned = None
        self.last_attempts = 0

    # -- loading ----------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, id_or_folder: str | os.PathLike, torch_dtype=None, device: str = "cpu",
                        local_files_only: bool = True, max_new_tokens: int = 96, retries: int = 2,
                        constrained: bool | None = None, seed: int = 0, temperature: float = 0.8) -> "LMDescriber":
        """Load a chat causal LM (``AutoModelForCausalLM`` + ``AutoTokenizer``) or, when the folder's config is an
        image-text-to-text model, a VLM (``AutoModelForImageTextToText`` + ``AutoProcessor``).

        ``torch_dtype``: None (the library default), a ``torch.dtype`` or its name ("bfloat16"); ``constrained``:
        None chooses it for models under a billion parameters. Raises ``ValueError`` naming the folder or id when
        it cannot be loaded (nothing is downloaded unless ``local_files_only=False``)."""
        from transformers import AutoConfig

        path = os.fspath(id_or_folder)
        dtype = _dtype(torch_dtype)
        try:
            config = AutoConfig.from_pretrained(path, local_files_only=local_files_only)
            is_vlm = _is_vlm(config)
            kw = {"local_files_only": local_files_only}
            if dtype is not None:
                kw["dtype"] = dtype
            if is_vlm:
                from transformers import AutoModelForImageTextToText, AutoProcessor

                processor = AutoProcessor.from_pretrained(path, local_files_only=local_files_only)
                model = AutoModelForImageTextToText.from_pretrained(path, **kw)
            else:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                processor = AutoTokenizer.from_pretrained(path, local_files_only=local_files_only)
                model = AutoModelForCausalLM.from_pretrained(path, **kw)
        except Exception as e:  # noqa: BLE001 - any loading failure becomes one message naming the source
            detail = " ".join(str(e).split())[:300]
            raise ValueError(
                f"could not load a language model from {path!r} ({type(e).__name__}: {detail}); give a folder "
                "saved with save_pretrained (config.json, weights, tokenizer) or the id of a chat model already in "
                "the local Hugging Face cache") from None
        model.to(device).eval().requires_grad_(False)
        if constrained is None:
            constrained = sum(p.numel() for p in model.parameters()) < 1_000_000_000
        return cls(model, processor, max_new_tokens=max_new_tokens, retries=retries, constrained=constrained,
                   seed=seed, temperature=temperature, is_vlm=is_vlm, device=device)

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    # -- prompt -----------------------------------------------------------------------------------------------
    def prompt(self, instruction: str, source_caption: str | None = None, image=None) -> str:
        """The prompt text: the chat template (processor's or tokenizer's) when there is one, else plain text. With
        an image (VLM only) the template places the image (plain text: the processor's ``image_token`` before the
        query)."""
        with_image = image is not None and self.is_vlm
        messages = build_messages(instruction, source_caption, with_image, self.examples)
        image_token = getattr(self.processor, "image_token", None) if with_image else None
        templater = self.processor if getattr(self.processor, "chat_template", None) else self.tokenizer
        if getattr(templater, "chat_template", None):
            try:
                text = templater.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception:  # noqa: BLE001 - templates without a system role: fold it into the first user turn
                merged = [dict(messages[1])]
                merged[0]["content"] = messages[0]["content"] + "\n\n" + merged[0]["content"]
                text = templater.apply_chat_template(merged + messages[2:], tokenize=False, add_generation_prompt=True)
            if isinstance(text, list):  # some processors render a batch
                text = text[0]
        else:
            text = _plain_prompt(messages, image_token)
        return text

    def _templated(self) -> bool:
        return bool(getattr(self.processor, "chat_template", None) or getattr(self.tokenizer, "chat_template", None))

    def _encode(self, text: str, image=None) -> dict:
        """Model inputs of a prompt (the image too for a VLM, as an RGB PIL image that the processor resizes), on
        the model's device; floating inputs (pixel values) in the model's dtype."""
        if self.is_vlm and image is not None:
            enc = self.processor(text=[text], images=[_rgb_image(image)], return_tensors="pt")
        else:
            enc = self.tokenizer(text, add_special_tokens=not self._templated(), return_tensors="pt")
        dtype = getattr(self.model, "dtype", None)
        out = {}
        for k, v in enc.items():
            if hasattr(v, "to"):
                out[k] = v.to(self.device, dtype) if dtype is not None and v.is_floating_point() else v.to(self.device)
        return out

    # -- free generation ------------------------------------------------------------------------------------
    def generate(self, prompt: str, attempt: int = 0, image=None) -> str:
        """The model's answer to ``prompt`` (new text only): greedy for attempt 0, else sampled with seed
        ``seed + attempt``."""
        import torch
        from transformers import LogitsProcessorList

        inputs = self._encode(prompt, image)
        n = inputs["input_ids"].shape[1]
        tok = self.tokenizer
        eos = tok.eos_token_id
        kw: dict[str, Any] = dict(max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1,
                                  pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos,
                                  eos_token_id=eos)
        if attempt > 0:
            gen = torch.Generator().manual_seed(self.seed + attempt)
            kw["logits_processor"] = LogitsProcessorList([_GumbelSampling(gen, self.temperature)])
        with torch.inference_mode():
            out = self.model.generate(**inputs, **kw)
        return tok.decode(out[0, n:], skip_special_tokens=True)

    def __call__(self, instruction: str, source_caption: str | None = None, image=None) -> Description:
        """Describe an instruction (``image``: the source image for a VLM; ignored by a text LM). Raises
        ``ValueError`` only for an empty instruction."""
        text = check_instruction(instruction)
        self.last_outputs, self.last_attempts = [], 0
        if self.constrained:
            return self._constrained(text, source_caption, image)
        problem = "no answer"
        for attempt in range(self.retries + 1):
            self.last_attempts = attempt + 1
            try:
                if self.generate_fn is not None:
                    answer = self.generate_fn(build_messages(text, source_caption, image is not None, self.examples),
                                              attempt)
                else:
                    answer = self.generate(self.prompt(text, source_caption, image), attempt, image)
            except Exception as e:  # noqa: BLE001 - a failing generator is an unreadable answer, not a crash
                answer, problem = "", f"generation failed: {type(e).__name__}: {e}"
                self.last_outputs.append(answer)
                continue
            self.last_outputs.append(answer)
            fields, problem = validate_answer(extract_json(answer))
            if fields is not None:
                notes = (f"the language model's answer was read on attempt {attempt + 1}",) if attempt else ()
                return self._describe(fields, text, source_caption, notes)
        return Description(None, "", "", None,
                           f"the language model's answer could not be read after {self.last_attempts} attempt(s) "
                           f"({problem}); try a larger or instruction-tuned model, more retries, or constrained=True",
                           ())

    @staticmethod
    def _describe(fields: dict, instruction: str, source_caption: str | None, notes=()) -> Description:
        d = describe_edit(fields["operation"], fields["target"], fields["content"], None, source_caption,
                          instruction, notes)
        if d.error is None:
            d.target_description = fields["target_description"]
        return d

    # -- constrained decoding ---------------------------------------------------------------------------------
    def _constrained(self, instruction: str, source_caption: str | None, image) -> Description:
        prefix = self.prompt(instruction, source_caption, image) + '{"operation": "'
        state = _Decoder(self, prefix, image)
        scores = {op: state.score(op + '"') for op in OPERATIONS}
        self.last_scores = scores
        op = max(OPERATIONS, key=lambda o: scores[o])
        fields: dict[str, Any] = {"operation": op}
        state.feed(op + '", "target": ')
        if op in ("global", "background"):
            fields["target"] = None
            state.feed('null, "content": ')
        else:
            if op == "add" and state.score("null") > state.score('"'):
                fields["target"] = None
                state.feed('null, "content": ')
            else:
                state.feed('"')
                fields["target"] = state.string(self.max_new_tokens) or "it"
                state.feed('", "content": ')
        if op == "remove":
            fields["content"] = None
            state.feed('null, "target_description": "')
        else:
            state.feed('"')
            fields["content"] = state.string(self.max_new_tokens) or None
            state.feed('", "target_description": "')
        fields["target_description"] = state.string(self.max_new_tokens) or instruction
        if fields["content"] is None and op in CONTENT_OPS:
            fields["content"] = fields["target_description"]
        self.last_outputs.append(json.dumps(fields))
        self.last_attempts = 1
        checked, problem = validate_answer(fields)
        if checked is None:  # cannot happen by construction; reported rather than raised
            return Description(None, "", "", None, f"the constrained answer is not valid ({problem})", ())
        return self._describe(checked, instruction, source_caption)


class _Decoder:
    """Incremental greedy decoding over one growing text with the model's key/value cache."""

    def __init__(self, owner: LMDescriber, prefix: str, image=None):
        import torch

        self.owner, self.tok = owner, owner.tokenizer
        inputs = owner._encode(prefix, image)
        self.length = inputs["input_ids"].shape[1]
        _reset_rope_deltas(owner.model)  # M-RoPE VLMs keep the last prompt's position offset on the model
        with torch.inference_mode():
            out = owner.model(**inputs, use_cache=True)
        self.cache, self.logits = _cache_of(out), out.logits[0, -1].float()
        if getattr(owner, "_banned", None) is None:  # tokens a string field cannot start with, once per model
            specials = set(self.tok.all_special_ids or [])
            owner._banned = (specials, specials | {i for t, i in self.tok.get_vocab().items()
                                                   if '"' in self.tok.convert_tokens_to_string([t]) or
                                                   not self.tok.convert_tokens_to_string([t]).strip()})
        self.specials, self.banned_first = owner._banned

    def _forward(self, ids: list[int], cache):
        """The model on new tokens after ``cache``. No attention mask (one unpadded sequence): the model takes the
        positions from the cache length, and a VLM with 3-D positions (Qwen2-VL) adds the offset of the image it
        saw in the prompt; a full-length mask would give those models full-length positions for the new tokens."""
        import torch

        x = torch.tensor([ids], device=self.owner.device)
        with torch.inference_mode():
            out = self.owner.model(input_ids=x, use_cache=True, **{_cache_arg(self.owner.model): cache})
        return out

    def _ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def score(self, text: str) -> float:
        """Log-likelihood of ``text`` continuing the current text (the cache is left as it was)."""
        import torch

        ids = self._ids(text)
        logp = torch.log_softmax(self.logits, -1)[ids[0]].item()
        if len(ids) > 1:
            out = self._forward(ids[:-1], copy.deepcopy(self.cache))
            lp = torch.log_softmax(out.logits[0].float(), -1)
            logp += sum(lp[j, ids[j + 1]].item() for j in range(len(ids) - 1))
        return logp

    def feed(self, text: str) -> None:
        """Append forced text."""
        ids = self._ids(text)
        if not ids:
            return
        out = self._forward(ids, self.cache)
        self.cache, self.logits = _cache_of(out), out.logits[0, -1].float()
        self.length += len(ids)

    def string(self, max_tokens: int) -> str:
        """Greedy text up to the closing quote (never empty: the first token is a non-blank one without a quote);
        the quote itself is not fed."""
        import torch

        pieces: list[str] = []
        for step in range(max_tokens):
            banned = self.banned_first if step == 0 else self.specials
            order = torch.argsort(self.logits, descending=True)
            pick = next((int(i) for i in order[:512] if int(i) not in banned), None) if step == 0 else int(order[0])
            if pick is None or pick in banned:
                break
            piece = self.tok.decode([pick])
            if '"' in piece or "\n" in piece:
                pieces.append(re.split(r'["\n]', piece, maxsplit=1)[0])
                tail = pieces[-1]
                if tail:
                    self.feed(tail)
                break
            pieces.append(piece)
            out = self._forward([pick], self.cache)
            self.cache, self.logits = _cache_of(out), out.logits[0, -1].float()
            self.length += 1
        return "".join(pieces).strip().replace("\\", "")


def _cache_arg(model) -> str:
    """The name of the key/value cache argument of a model's forward ("cache" in newer transformers)."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _reset_rope_deltas(model) -> None:
    """Forget the position offset (``rope_deltas``) that M-RoPE VLMs (Qwen2-VL and its successors) keep from the
    last prompt with an image, so that a prompt without one gets plain positions in the cached steps after it."""
    for m in model.modules() if hasattr(model, "modules") else ():
        if "rope_deltas" in vars(m):
            m.rope_deltas = None


def _rgb_image(image):
    """An RGB PIL image from a PIL image or an ``(H, W)``, ``(H, W, 1|3|4)`` array (uint8, bool, or float in
    [0, 1]); other inputs are returned unchanged for the processor to judge."""
    import numpy as np
    from PIL import Image

    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        return image
    a = image
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ValueError(f"image must be (H, W), (H, W, 3) or (H, W, 4), got shape {image.shape}")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        a = (np.clip(np.nan_to_num(a), 0.0, 1.0) * 255).round().astype(np.uint8)
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(a)).convert("RGB")


def _cache_of(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _is_vlm(config) -> bool:
    """Whether a config is an image-text-to-text model (a VLM) rather than a causal LM."""
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES as names
    except ImportError:  # pragma: no cover - older transformers
        names = {}
    if getattr(config, "model_type", None) in names and getattr(config, "vision_config", None) is not None:
        return True
    archs = getattr(config, "architectures", None) or []
    return any(a.endswith("ForImageTextToText") for a in archs)

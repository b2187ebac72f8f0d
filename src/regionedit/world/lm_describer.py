"""LLM backend of the Describe stage: any ``transformers`` causal LM, prompted few-shot for JSON.

Seed paper 001 (Sec. 3.1) uses Qwen2.5 for ``t_e = LLM(t_o, ins)``. :class:`TransformersDescriber`
loads any causal LM by hub id (from the local cache only, by default) or by path, asks it for one JSON
object ``{"target_description", "local_prompt", "referent"}`` and reads the first ``{...}`` of the
answer. When the answer cannot be read (a small or untuned model), the fields come from the rule-based
:class:`~regionedit.world.grammar.WorldDescriber` and ``error`` says that the fallback was used.
Generation is greedy (``do_sample=False``) under a fixed seed, so the same input gives the same output.
"""

from __future__ import annotations

import dataclasses
import json
import os

from regionedit.describe.base import Description, check_instruction
from regionedit.describe.lm import extract_json  # the general parser of LM answers (re-exported)
from regionedit.world.grammar import WorldDescriber

__all__ = ["TransformersDescriber", "build_prompt_messages", "extract_json"]

SYSTEM_PROMPT = (
    "You rewrite image-editing instructions. Given the caption of the source image and an edit "
    "instruction, answer with one JSON object and nothing else, with the keys \"target_description\" "
    "(the caption of the edited image, or a description of the edited region when the source caption "
    "is unknown), \"local_prompt\" (a short prompt for what to paint inside the edited region: the new "
    "object, \"background\" for a removal, or the new background) and \"referent\" (the object to edit, "
    "e.g. \"red circle\", \"background\" for background edits, or null when adding an object)."
)

# (source caption, instruction) pairs whose answers the rule-based parser writes, so the few-shot
# examples always agree with the world language.
DEFAULT_EXAMPLES: tuple[tuple[str | None, str], ...] = (
    ("a small red circle and a large blue star on a white background", "turn the red circle into a green square"),
    ("a yellow triangle on a sky blue background", "please remove the triangle"),
    ("a large purple diamond on a beige background", "add a small orange star in the top left"),
    ("a white square and a black circle on a gray background", "change the background to a black to beige gradient"),
    (None, "make the blue ball bigger"),
)

_KEYS = ("target_description", "local_prompt", "referent")


def _answer(desc: Description) -> str:
    return json.dumps(
        {
            "target_description": desc.target_description,
            "local_prompt": desc.local_prompt,
            "referent": desc.referent_text,
        }
    )


def _query(instruction: str, source_caption: str | None) -> str:
    return f"Source: {source_caption if source_caption else 'unknown'}\nInstruction: {instruction}"


def build_prompt_messages(
    instruction: str,
    source_caption: str | None,
    examples: tuple[tuple[str | None, str], ...] = DEFAULT_EXAMPLES,
    reference: WorldDescriber | None = None,
) -> list[dict[str, str]]:
    """Chat messages: system prompt, one user/assistant pair per few-shot example, then the query."""
    reference = reference or WorldDescriber()
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for cap, ins in examples:
        messages.append({"role": "user", "content": _query(ins, cap)})
        messages.append({"role": "assistant", "content": _answer(reference(ins, cap))})
    messages.append({"role": "user", "content": _query(instruction, source_caption)})
    return messages


def _plain_prompt(messages: list[dict[str, str]]) -> str:
    """The same prompt as plain text for models without a chat template."""
    lines = [messages[0]["content"], ""]
    for m in messages[1:]:
        if m["role"] == "user":
            lines.append(m["content"])
        else:
            lines += [f"JSON: {m['content']}", ""]
    lines.append("JSON:")
    return "\n".join(lines)


class TransformersDescriber:
    """:class:`~regionedit.describe.base.Describer` backed by a ``transformers`` causal LM.

    Args:
        model_id_or_path: a local directory saved with ``save_pretrained`` or a hub id already in the
            local cache (nothing is downloaded unless ``local_files_only=False``).
        max_new_tokens: generation budget for the JSON answer.
        device: torch device for the model (CPU fp32 by default).
        local_files_only: never contact the hub (default).
        seed: torch seed set (in a forked RNG state, so global state is untouched) before generating;
            generation is greedy, so this only matters for models with stochastic layers.
        examples: few-shot ``(source caption | None, instruction)`` pairs; answers come from ``fallback``.
        fallback: the rule-based describer used for the examples, the intent and unreadable answers.
    """

    def __init__(
        self,
        model_id_or_path: str | os.PathLike,
        max_new_tokens: int = 48,
        device: str = "cpu",
        *,
        local_files_only: bool = True,
        seed: int = 0,
        examples: tuple[tuple[str | None, str], ...] = DEFAULT_EXAMPLES,
        fallback: WorldDescriber | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        path = os.fspath(model_id_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local_files_only)
        self.model = AutoModelForCausalLM.from_pretrained(path, local_files_only=local_files_only)
        self.model.to(device).eval().requires_grad_(False)
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.examples = examples
        self.fallback = fallback or WorldDescriber()
        self.last_output: str | None = None  # raw text of the last generation (for debugging)

    # -- prompt -------------------------------------------------------------------------------------
    def prompt(self, instruction: str, source_caption: str | None = None) -> str:
        """The full prompt text: the tokenizer's chat template when it has one, else a plain prompt."""
        messages = build_prompt_messages(instruction, source_caption, self.examples, self.fallback)
        if getattr(self.tokenizer, "chat_template", None):
            try:
                return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception:  # templates without a system role: fold it into the first user turn
                merged = [dict(messages[1])]
                merged[0]["content"] = messages[0]["content"] + "\n\n" + merged[0]["content"]
                merged += messages[2:]
                return self.tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
        return _plain_prompt(messages)

    def generate(self, prompt: str) -> str:
        """Greedy continuation of ``prompt`` (new text only)."""
        import torch

        templated = bool(getattr(self.tokenizer, "chat_template", None))
        enc = self.tokenizer(prompt, add_special_tokens=not templated, return_tensors="pt", verbose=False)
        ids = enc["input_ids"][0]  # (T,)
        eos = self.tokenizer.eos_token_id
        if eos is not None and len(ids) > 1 and int(ids[-1]) == eos:
            ids = ids[:-1]  # tokenizers that append an end token (CLIP-style) would end the answer early
        limit = getattr(self.model.config, "max_position_embeddings", None) or getattr(
            self.model.config, "n_positions", None
        )
        if limit is not None and len(ids) + self.max_new_tokens > limit:
            ids = ids[-(limit - self.max_new_tokens) :]  # keep the query, drop the oldest examples
        input_ids = ids[None].to(self.device)  # (1, T)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(self.seed)
            out = self.model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                num_beams=1,
                pad_token_id=pad,
                eos_token_id=eos,
            )
        return self.tokenizer.decode(out[0, input_ids.shape[1] :], skip_special_tokens=True)

    # -- describer ------------------------------------------------------------------------------------
    def __call__(self, instruction: str, source_caption: str | None = None) -> Description:
        # 1. check inputs; the rule-based answer gives the intent and the fallback fields
        text = check_instruction(instruction)
        ref = self.fallback(text, source_caption)
        # 2. ask the model
        self.last_output = self.generate(self.prompt(text, source_caption))
        # 3. read its answer
        obj = extract_json(self.last_output)
        problem = None
        if obj is None:
            problem = "no JSON object in the answer"
        else:
            missing = [
                k for k in ("target_description", "local_prompt") if not isinstance(obj.get(k), str) or not obj[k].strip()
            ]
            if missing:
                problem = f"the answer lacks {', '.join(missing)}"
        if problem is not None:  # the rule-based description stands (its own error, if any, too)
            note = f"the language model's answer could not be used ({problem}); using the rule-based description"
            return dataclasses.replace(ref, notes=ref.notes + (note,))
        referent = obj.get("referent")
        referent = referent.strip() if isinstance(referent, str) and referent.strip() and referent != "null" else None
        return Description(
            ref.intent, obj["target_description"].strip(), obj["local_prompt"].strip(), referent, None, ref.notes,
            ref.operation, ref.target, ref.content,
        )

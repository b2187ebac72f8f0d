"""The rule-based describer of the shapes world (:class:`WorldDescriber`) and the texts it writes for the
later stages: the inpainting prompt (:func:`local_prompt_for`) and a canonical instruction
(:func:`intent_to_text`)."""

from __future__ import annotations

from regionedit.describe.base import Description
from regionedit.world import spec
from regionedit.world.grammar.captions import (_background_text, apply_intent, format_caption, parse_caption,
                                               resolve, with_article)
from regionedit.world.grammar.instructions import parse_intent
from regionedit.world.grammar.split import split_edits
from regionedit.world.intent import EditIntent, Referent, general_fields


def local_prompt_for(intent: EditIntent, resolved: Referent | None = None) -> str:
    """The inpainting prompt inside the edit region. ``resolved`` is the edited object as the source
    caption describes it (fills what the instruction leaves out, e.g. the colour of "the star")."""
    old = resolved or intent.target or Referent()
    if intent.op == "remove":
        return "background"
    if intent.op == "background":
        assert intent.background is not None
        return _background_text(intent.background)
    if intent.op == "add":
        ref = Referent(intent.new_color, intent.new_shape, intent.new_size)
    elif intent.op == "local":
        ref = Referent(intent.new_color or old.color, intent.new_shape, intent.new_size)
    elif intent.op == "color":
        ref = Referent(intent.new_color, old.shape)
    else:  # size
        ref = Referent(old.color, old.shape, "large" if intent.bigger else "small")
    return with_article(ref.text(size=True))


def intent_to_text(intent: EditIntent) -> str:
    """A canonical instruction for an intent ("remove the red circle"); :func:`parse_intent` reads it back."""
    ref = intent.target
    the = "it" if ref is None or not (ref.color or ref.shape or ref.size) else "the " + ref.text(size=True)
    if intent.op == "remove":
        return f"remove {the}"
    if intent.op == "add":
        new = with_article(Referent(intent.new_color, intent.new_shape, intent.new_size).text(size=True))
        return f"add {new}" + (f" in the {intent.area}" if intent.area else "")
    if intent.op == "local":
        new = with_article(Referent(intent.new_color, intent.new_shape, intent.new_size).text(size=True))
        return f"change {the} into {new}"
    if intent.op == "color":
        return f"make {the} {intent.new_color}"
    if intent.op == "size":
        return f"make {the} {'bigger' if intent.bigger else 'smaller'}"
    assert intent.background is not None
    top, bottom = intent.background
    if bottom is None:
        return f"change the background to {top}"
    return f"make the background {with_article(f'{top} to {bottom} gradient')}"


def _check_colors(intent: EditIntent) -> str | None:
    """World constraints on the colours an intent asks for (object vs background palettes)."""
    if intent.op == "background":
        assert intent.background is not None
        bad = [c for c in intent.background if c is not None and c not in spec.BACKGROUND_COLORS]
        if bad:
            return (
                f"{bad[0]!r} is not a background colour of the shapes world "
                f"(choose from {', '.join(spec.BACKGROUND_COLORS)})"
            )
        return None
    for c in (intent.new_color, intent.target.color if intent.target else None):
        if c is not None and c not in spec.OBJECT_COLORS:
            return f"{c!r} is not an object colour of the shapes world (choose from {', '.join(spec.OBJECT_COLORS)})"
    return None


# --------------------------------------------------------------------------------------------------
# The describer
# --------------------------------------------------------------------------------------------------


class WorldDescriber:
    """Rule-based :class:`~regionedit.describe.base.Describer` for the shapes-world language.

    >>> d = WorldDescriber()("Please turn the red ball blue!", "a red circle and a star on a white background")
    >>> d.target_description, d.local_prompt, d.referent_text
    ('a blue circle and a star on a white background', 'a blue circle', 'red circle')

    Without a source caption ``target_description`` is the local prompt (a description of the edited
    region). With one, it is the rewritten caption; if the caption cannot be read, or the referent is
    absent from it or ambiguous, ``error`` says so and ``target_description`` is the source caption
    unchanged (no edit).
    """

    def parse(self, instruction: str) -> tuple[EditIntent | None, str | None]:
        """``(intent, error)`` for one instruction (see :func:`parse_intent`)."""
        return parse_intent(instruction)

    def __call__(self, instruction: str, source_caption: str | None = None) -> Description:
        # 1. check inputs and parse the instruction (one edit: Editor splits one that asks for several)
        parts = split_edits(instruction)
        if len(parts) > 1:
            return Description(None, source_caption or "", "", None,
                               f"this instruction asks for {len(parts)} edits ({'; '.join(parts)}): a description is "
                               "of one edit (regionedit.pipeline.Editor runs them one after the other)")
        intent, error = parse_intent(instruction)
        if intent is None:
            return Description(None, source_caption or "", "", None, error)
        error = _check_colors(intent)

        # 2. read the source caption and find the edited object in it
        resolved: Referent | None = None
        parsed = None
        notes: tuple[str, ...] = ()
        if source_caption is not None and source_caption.strip():
            try:
                parsed = parse_caption(source_caption)
            except ValueError as e:  # the caption is context, not the request: described without it
                notes = (f"source caption set aside: {e}",)
        if parsed is not None and intent.target is not None:
            idx, err = resolve(intent.target, parsed[0])
            if idx is not None:
                resolved = parsed[0][idx]
            error = error or err

        # 3. prompts for the region predictor and the generator
        local_prompt = local_prompt_for(intent, resolved)
        if intent.op == "background":
            referent_text: str | None = "background"
        elif intent.op == "add":
            referent_text = None
        else:
            ref = resolved or intent.target or Referent()
            referent_text = ref.text() if (ref.color or ref.shape) else None
            if referent_text is None:
                error = error or "the instruction does not say which object to edit (name its colour and/or shape)"

        # 4. target description: the rewritten caption, or the local prompt without a caption
        if parsed is None:  # no (readable) source caption: describe the edited region
            target = local_prompt
        elif error is not None:
            target = source_caption  # type: ignore[assignment]
        else:
            objects, background, err = apply_intent(intent, *parsed)
            error = err
            target = format_caption(objects, background) if err is None else source_caption  # type: ignore[assignment]
        return Description(intent, target, local_prompt, referent_text, error, notes, **general_fields(intent))

"""The Gradio page over one :class:`~regionedit.pipeline.Editor`: :func:`build_app`.

Upload (or pick an example) -> instruction -> **Find region** (the predicted region as an overlay, loaded on the
brush layer) -> correct it with the brush -> **Edit** (mask-free, or with the painted region; or with a trained
seed method chosen under **Method**: :mod:`regionedit.web.methods`) -> result with its region, a PNG download
carrying the provenance metadata, "use result as new source" and undo. The events call
:class:`~regionedit.web.handlers.WebHandlers`; serve the app with :func:`regionedit.web.server.make_asgi_app`.
"""

import functools

import gradio as gr
from gradio.utils import get_upload_folder

from regionedit.web.handlers import REGION_FROM, Session, UIError, WebConfig, WebHandlers
from regionedit.web.methods import REGIONEDIT

__all__ = ["build_app", "theme"]


class _Bounded(dict):
    """A dict that forgets its oldest entries beyond ``limit`` (the ImageEditor's blob storage, which any client
    can fill through Gradio's component_server route)."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = max(1, int(limit))

    def __setitem__(self, key, value):
        super().pop(key, None)
        super().__setitem__(key, value)
        while len(self) > self.limit:
            del self[next(iter(self))]


def theme() -> gr.themes.Base:
    """Gradio's default theme on system fonts (the default one loads fonts from a CDN)."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


def build_app(editor, config: WebConfig | None = None) -> gr.Blocks:
    """The ``gr.Blocks`` UI over ``editor`` with its queue configured (``config.concurrency`` model events at
    once, ``config.max_queue`` waiting). Serve it with :func:`regionedit.web.server.make_asgi_app` (adds the
    network guard) - not with ``launch()``, which has no Host / Origin checks. ``blocks.handlers`` is the
    :class:`WebHandlers` instance behind it."""
    config = config or WebConfig()
    h = WebHandlers(editor, config, upload_roots=[get_upload_folder()])
    ed_cfg = editor.config

    def ui(fn):
        """A handler's ``{name: value}`` -> ``{component: value}``; a UIError -> gr.Error (shown in the page)."""
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                out = fn(*args, **kwargs)
            except UIError as e:
                raise gr.Error(str(e), print_exception=False) from None
            return {comps[k]: v for k, v in out.items()}
        return run

    with gr.Blocks(title="regionedit", analytics_enabled=False, delete_cache=(900, 3600)) as demo:
        session = gr.State(Session(), time_to_live=6 * 3600)
        gr.Markdown(f"## regionedit: instruction-based image editing\nModel: `{editor.model_id}`. Upload an image "
                    "(or pick an example), type an instruction, press **Edit**. **Find region** shows where the edit "
                    "will go; paint on the region editor to set or correct it.")
        with gr.Row():
            with gr.Column(scale=1):
                source = gr.Image(label="Source image", type="filepath", sources=["upload", "clipboard"],
                                  format="png", elem_id="source", height=320)
                instruction = gr.Textbox(label="Instruction", placeholder="e.g. remove the red circle", max_lines=2,
                                         max_length=500, elem_id="instruction")
                method = gr.Dropdown(choices=h.methods.choices, value=REGIONEDIT, label="Method", elem_id="method",
                                     interactive=len(h.methods.choices) > 1,
                                     info="regionedit: the region found or painted, then inpainted; a seed method "
                                          "(trained in this model folder) finds its own region, without the brush")
                with gr.Row():
                    backend = gr.Dropdown(choices=h.localizer_names, value=(h.localizer_names or [None])[0],
                                          label="Localizer", elem_id="localizer", interactive=len(h.localizer_names) > 1)
                    region_from = gr.Radio(list(REGION_FROM), value="auto", label="Region", elem_id="region-from",
                                           info="found by the localizer, or painted; auto: painted if there is paint")
                with gr.Row():
                    find_btn = gr.Button("Find region", elem_id="find-region")
                    edit_btn = gr.Button("Edit", variant="primary", elem_id="edit")
                with gr.Accordion("Seed, steps, guidance", open=False):
                    seed = gr.Number(label="Seed", value=0, precision=0, minimum=0, elem_id="seed")
                    steps = gr.Slider(label="Steps", minimum=1, maximum=config.max_steps, step=1,
                                      value=min(ed_cfg.steps, config.max_steps), elem_id="steps")
                    guidance = gr.Slider(label="Guidance", minimum=0, maximum=config.max_guidance, step=0.5,
                                         value=min(ed_cfg.guidance, config.max_guidance), elem_id="guidance")
            with gr.Column(scale=1):
                paint = gr.ImageEditor(label="Region (paint to set or correct it)", type="numpy", image_mode="RGBA",
                                       sources=(), transforms=(), layers=False, format="png", elem_id="paint",
                                       brush=gr.Brush(colors=[("#ff00ff", 0.6)], color_mode="fixed", default_size=4),
                                       eraser=gr.Eraser(),
                                       height=380)
                clear_btn = gr.Button("Clear paint", size="sm", elem_id="clear-paint")
                region = gr.Image(label="Found region", interactive=False, format="png", elem_id="region", height=200)
            with gr.Column(scale=1):
                result = gr.Image(label="Result", interactive=False, format="png", elem_id="result", height=320)
                result_region = gr.Image(label="Edited region", interactive=False, format="png",
                                         elem_id="result-region", height=200)
                status = gr.Textbox(label="Status", interactive=False, lines=3, elem_id="status")
                download = gr.DownloadButton("Download PNG", value=None, elem_id="download")
                with gr.Row():
                    use_btn = gr.Button("Use result as new source", elem_id="use-result")
                    undo_btn = gr.Button("Undo last turn", elem_id="undo")
                history = gr.Textbox(label="History", interactive=False, lines=4, elem_id="history")
        examples = h.examples()
        gallery = gr.Gallery(value=[(img, text) for img, text in examples], label="Examples (shapes world)",
                             columns=len(examples), height=180, allow_preview=False, format="png",
                             elem_id="examples")

        comps = {"session": session, "source": source, "instruction": instruction, "paint": paint, "region": region,
                 "result": result, "result_region": result_region, "status": status, "download": download,
                 "history": history}
        source_outs = [session, source, paint, region, result, result_region, status, history, download]
        h.paint_component = paint
        paint.blob_storage = _Bounded(config.max_sessions)  # layers a client posts to accept_blobs: bounded

        @ui
        def upload(s, up):
            return h.on_upload(s, up)

        @ui
        def clear_source(s):
            return h.on_clear_source(s)

        @ui
        def example(s, evt: gr.SelectData):
            return h.on_example(s, evt.index)

        @ui
        def find(s, text, loc, progress=gr.Progress()):
            return h.on_find_region(s, text, progress=progress, localizer=loc)

        @ui
        def edit(s, text, painted, sd, st, gd, loc, rf, m, progress=gr.Progress()):
            return h.on_edit(s, text, painted, sd, st, gd, progress=progress, localizer=loc, region_from=rf, method=m)

        @ui
        def use_result(s):
            return h.on_use_result(s)

        @ui
        def undo(s):
            return h.on_undo(s)

        @ui
        def clear(s):
            return h.on_clear_paint(s)

        # events that read uploads decode them themselves (preprocess=False): header checked first
        source.upload(upload, [session, source], source_outs, preprocess=False, concurrency_id="decode",
                      api_name="upload")
        source.clear(clear_source, [session], source_outs, concurrency_id="decode", api_name="clear_source")
        gallery.select(example, [session], [*source_outs, instruction], concurrency_id="decode", api_name="example")
        find_btn.click(find, [session, instruction, backend], [session, region, paint, status], concurrency_id="model",
                       api_name="find_region")
        instruction.submit(edit, [session, instruction, paint, seed, steps, guidance, backend, region_from, method],
                           [session, result, result_region, status, history, download], preprocess=False,
                           concurrency_id="model", api_name="edit_submit")
        edit_btn.click(edit, [session, instruction, paint, seed, steps, guidance, backend, region_from, method],
                       [session, result, result_region, status, history, download], preprocess=False,
                       concurrency_id="model", api_name="edit")
        use_btn.click(use_result, [session], source_outs, concurrency_id="decode", api_name="use_result")
        undo_btn.click(undo, [session], source_outs, concurrency_id="decode", api_name="undo")
        clear_btn.click(clear, [session], [session, paint, region], concurrency_id="decode", api_name="clear_paint")

    demo.queue(max_size=config.max_queue, default_concurrency_limit=config.concurrency, api_open=False)
    demo.state_session_capacity = config.max_sessions
    demo.handlers = h
    return demo

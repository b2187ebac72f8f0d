"""Zero-shot localizer backends (CLIPSeg; OWLv2 / Grounding DINO boxes, optionally refined by SAM / SAM 2) on
tiny random models of the real classes saved as real folders, and the spec grammar of ``load_localizer``.

The tiny models' outputs are random: the checks are the protocol (shapes, dtypes, ranges, sizes), the frames
(stub model outputs with a known box / blob must land at the right place of the photo) and the wiring (SAM is
prompted with the detector's kept boxes).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from skimage import data

from regionedit.localize.backends import LocalizerSpec, load_localizer, parse_localizer_spec
from regionedit.localize.pretrained import LocalizerSpecError, box_map, nms, resize_prob
from regionedit.localize.zero_shot import BoxSamLocalizer, CLIPSegLocalizer
from regionedit.models import tiny_localizers as tiny

PHOTOS = {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "coffee": data.coffee(), "rocket": data.rocket()}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("localizers")
    return {kind: build(root / kind) for kind, build in tiny.TINY_BUILDERS.items()}


def _specs(f) -> dict[str, str]:
    return {"clipseg": f"clipseg:{f['clipseg']}", "owlv2": f"owlv2:{f['owlv2']}",
            "owlv2+sam": f"owlv2:{f['owlv2']}+sam:{f['sam']}", "gdino": f"gdino:{f['grounding-dino']}",
            "gdino+sam": f"grounding-dino:{f['grounding-dino']}+sam:{f['sam']}",
            "owlv2+sam2": f"owlv2:{f['owlv2']}+sam2:{f['sam2']}"}


BACKENDS = ("clipseg", "owlv2", "owlv2+sam", "gdino", "gdino+sam", "owlv2+sam2")


@pytest.fixture(scope="module")
def localizers(folders):
    return {name: load_localizer(spec) for name, spec in _specs(folders).items()}


def _check_output(prob, presence, shape):
    assert prob.shape == tuple(shape) and prob.dtype == np.float32
    assert np.isfinite(prob).all() and prob.min() >= 0.0 and prob.max() <= 1.0
    assert isinstance(presence, float) and 0.0 <= presence <= 1.0


class Stub(torch.nn.Module):
    """A stand-in model: records its inputs and returns fixed outputs (a SimpleNamespace)."""

    def __init__(self, **outputs):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.outputs, self.calls = outputs, []

    def forward(self, **inputs):
        self.calls.append(inputs)
        return SimpleNamespace(**self.outputs)

    @property
    def device(self):
        return self.p.device

    @property
    def dtype(self):
        return self.p.dtype


def _centroid(prob: np.ndarray) -> tuple[float, float]:
    w = prob / prob.sum()
    ys, xs = np.mgrid[: prob.shape[0], : prob.shape[1]]
    return float((w * ys).sum()), float((w * xs).sum())


# -- builders -------------------------------------------------------------------------------------------------
def test_tiny_folders_are_real_model_folders(folders, tmp_path):
    types = {"clipseg": "clipseg", "owlv2": "owlv2", "grounding-dino": "grounding-dino", "sam": "sam", "sam2": "sam2", "sam3": "sam3"}
    for kind, folder in folders.items():
        assert json.loads((folder / "config.json").read_text())["model_type"] == types[kind]
        assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.bin"))
    state = torch.random.get_rng_state()
    tiny.save_tiny_sam(tmp_path / "sam", seed=3)
    assert torch.equal(state, torch.random.get_rng_state()), "a builder changed the global RNG state"


# -- the protocol on photos -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BACKENDS)
def test_backend_protocol_on_photos(localizers, name):
    loc = localizers[name]
    for i, (photo, image) in enumerate(PHOTOS.items()):
        prob, presence = loc(image, "the cat on the left")
        _check_output(prob, presence, image.shape[:2])
        if i % 2 == 1:  # chelsea, rocket: a size of another aspect ratio
            size = (37 + 10 * i, 53)
            prob, presence = loc(image, "a rocket", size=size)
            _check_output(prob, presence, size)


@pytest.mark.parametrize("name", BACKENDS)
def test_backend_rejects_empty_text_and_bad_images(localizers, name):
    loc = localizers[name]
    for text in ("", "   ", None):
        with pytest.raises(ValueError, match="non-empty text"):
            loc(PHOTOS["chelsea"], text)
    with pytest.raises(ValueError, match="uint8"):
        loc(PHOTOS["chelsea"].astype(np.float32), "a cat")
    with pytest.raises(ValueError, match="uint8"):
        loc(PHOTOS["chelsea"][..., 0], "a cat")


def test_long_texts_are_truncated_to_the_models_length(localizers):
    text = " ".join(["the small grey cat sitting on the red sofa"] * 30)
    for name in ("clipseg", "owlv2", "gdino"):
        _check_output(*localizers[name](PHOTOS["coffee"], text), PHOTOS["coffee"].shape[:2])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_half_precision_loads_give_finite_float32(folders, dtype):
    image = np.ascontiguousarray(PHOTOS["rocket"][::4, ::4])  # 107 x 160
    specs = _specs(folders)
    for name in ("clipseg", "gdino+sam", "owlv2+sam2"):  # every model class once
        spec = specs[name]
        try:
            loc = load_localizer(spec, torch_dtype=dtype)
            prob, presence = loc(image, "a rocket", size=(40, 60))
        except RuntimeError as e:  # a CPU kernel missing for this dtype (torch version dependent)
            if "not implemented for" in str(e):
                pytest.skip(f"{name} in {dtype} on CPU: {e}")
            raise
        models = [loc.model] if name == "clipseg" else [loc.detector.model] + ([loc.segmenter.model] if loc.segmenter else [])
        assert all(m.dtype == dtype for m in models), name
        _check_output(prob, presence, (40, 60))


def test_dtype_names_are_accepted_and_bad_ones_named(folders):
    loc = load_localizer(f"clipseg:{folders['clipseg']}", torch_dtype="bf16")
    assert loc.model.dtype == torch.bfloat16
    with pytest.raises(LocalizerSpecError, match="torch_dtype"):
        load_localizer(f"clipseg:{folders['clipseg']}", torch_dtype="int8")


# -- frames ---------------------------------------------------------------------------------------------------
def test_resize_prob_keeps_the_frame():
    """A blob at a known place of a square low-resolution map lands at the same relative place at any size."""
    S = 32
    yy, xx = np.mgrid[:S, :S] + 0.5
    blob = np.exp(-((yy - 0.25 * S) ** 2 + (xx - 0.75 * S) ** 2) / 4.0).astype(np.float32)
    for H, W in [(427, 640), (300, 451), (512, 512)]:
        out = resize_prob(torch.from_numpy(blob), (H, W))
        assert out.shape == (H, W) and out.dtype == np.float32
        cy, cx = _centroid(out)
        assert abs(cy - 0.25 * H) < 0.02 * H and abs(cx - 0.75 * W) < 0.02 * W


def test_clipseg_map_and_presence_from_the_logits(folders):
    """The CLIPSeg logits (a blob at 1/4 height, 3/4 width of the processor's square) -> sigmoid -> the same
    place of a non-square photo; presence = the map's max (or the chosen quantile)."""
    loc = load_localizer(f"clipseg:{folders['clipseg']}")
    S = 32
    yy, xx = np.mgrid[:S, :S] + 0.5
    logits = torch.from_numpy(np.where((yy - 8) ** 2 + (xx - 24) ** 2 < 9, 2.0, -8.0).astype(np.float32))[None]
    loc.model = Stub(logits=logits)
    image = PHOTOS["rocket"]
    prob, presence = loc(image, "a rocket")
    assert presence == pytest.approx(float(torch.sigmoid(torch.tensor(2.0))), abs=1e-6)
    cy, cx = _centroid(prob * (prob > 0.5))
    H, W = image.shape[:2]
    assert abs(cy - 0.25 * H) < 0.03 * H and abs(cx - 0.75 * W) < 0.03 * W
    assert loc.model.calls[0]["pixel_values"].shape[-2:] == (S, S)
    assert CLIPSegLocalizer(loc.model, loc.processor, presence_quantile=0.5)(image, "a rocket")[1] < 0.01


def test_owlv2_boxes_scale_by_the_padded_square(folders):
    """OWLv2 boxes are relative to the image padded to a square of side max(H, W) (bottom / right)."""
    loc = load_localizer(f"owlv2:{folders['owlv2']}")
    boxes = torch.tensor([[[0.5, 0.25, 0.2, 0.1], [0.5, 0.9, 0.1, 0.1]]])  # the second is centred in the padding
    loc.detector.model = Stub(logits=torch.tensor([[[3.0], [5.0]]]), pred_boxes=boxes)
    image = PHOTOS["chelsea"]  # 300 x 451
    b, s = loc.detector(image, "a cat")
    assert b.shape == (1, 4) and b.dtype == np.float32 and s.dtype == np.float32
    np.testing.assert_allclose(b[0], [0.4 * 451, 0.2 * 451, 0.6 * 451, 0.3 * 451], rtol=1e-5)
    assert s[0] == pytest.approx(float(torch.sigmoid(torch.tensor(3.0))))


def test_grounding_dino_boxes_scale_by_the_image_and_text_convention(folders):
    loc = load_localizer(f"gdino:{folders['grounding-dino']}")
    logits = torch.full((1, 2, 32), -float("inf"))
    logits[0, 0, :3], logits[0, 1, :3] = torch.tensor([0.0, 2.0, 1.0]), torch.tensor([-1.0, -2.0, -3.0])
    loc.detector.model = Stub(logits=logits, pred_boxes=torch.tensor([[[0.5, 0.25, 0.2, 0.1], [0.1, 0.1, 0.1, 0.1]]]))
    image = PHOTOS["chelsea"]
    b, s = loc.detector(image, "The Cat")
    np.testing.assert_allclose(b[0], [0.4 * 451, 0.2 * 300, 0.6 * 451, 0.3 * 300], rtol=1e-5)
    np.testing.assert_allclose(s, torch.sigmoid(torch.tensor([2.0, -1.0])).numpy(), rtol=1e-6)
    ids = loc.detector.model.calls[0]["input_ids"][0].tolist()
    assert loc.detector.processor.tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "") == "thecat."


def _box_detector(boxes, scores):
    det = lambda image, text: (np.asarray(boxes, np.float32), np.asarray(scores, np.float32))  # noqa: E731
    det.default_box_threshold = 0.3
    return det


def test_box_only_map_is_the_kept_boxes_interior():
    image = PHOTOS["coffee"]  # 400 x 600
    loc = BoxSamLocalizer(_box_detector([[100, 50, 300, 250], [400, 300, 500, 380], [110, 60, 290, 240]],
                                        [0.9, 0.1, 0.8]))
    prob, presence = loc(image, "the cup")
    _check_output(prob, presence, image.shape[:2])
    assert presence == pytest.approx(0.9)
    assert prob[60:240, 110:290].min() == 1.0 and prob[:, 320:].max() == 0.0 and prob[270:, :].max() == 0.0
    assert prob.sum() == pytest.approx(200 * 200, rel=0.02)  # the 0.8 box is suppressed, the 0.1 box dropped
    small, _ = loc(image, "the cup", size=(40, 60))  # the same box at 1/10 scale
    assert small[5:25, 10:30].min() == 1.0 and small.sum() == pytest.approx(20 * 20, abs=2 * 20)
    # nothing above the threshold: the best box is kept anyway, its score is the presence
    low = BoxSamLocalizer(_box_detector([[0, 0, 10, 10], [500, 300, 600, 400]], [0.05, 0.2]))
    prob, presence = low(image, "the cup")
    assert presence == pytest.approx(0.2) and prob[350, 550] == 1.0 and prob[5, 5] == 0.0
    assert low.calibrated("presence_threshold", True) == pytest.approx(0.3)
    assert BoxSamLocalizer(_box_detector([], []))(image, "x", size=(8, 9))[0].shape == (8, 9)


def test_box_helpers():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.5).tolist() == [1, 2]
    thin = box_map(np.array([[50.2, 10, 50.4, 90]]), (100, 100), (10, 10))  # thinner than an output pixel
    assert thin.sum() == 8 and thin[:, 5].sum() == 8


def test_sam_is_prompted_with_the_kept_boxes_in_its_frame(folders):
    """The SAM path: SAM gets the detector's kept boxes scaled to its longest-edge-64 input; its mask logits
    (a known blob in the low-resolution frame, which covers the padded square) land at the right place."""
    kept = [[100, 50, 300, 250], [400, 300, 500, 380]]
    loc = load_localizer(f"owlv2:{folders['owlv2']}+sam:{folders['sam']}")
    loc.detector = _box_detector(kept + [[110, 60, 290, 240]], [0.9, 0.5, 0.8])
    real = loc.segmenter.model
    calls = []

    class Recorder:
        device, dtype = real.device, real.dtype

        def __call__(self, **kw):
            calls.append(kw)
            return real(**kw)

    loc.segmenter.model = Recorder()
    image = PHOTOS["coffee"]  # 400 x 600 -> 43 x 64 in SAM's 64 x 64 input
    prob, presence = loc(image, "the cup")
    _check_output(prob, presence, image.shape[:2])
    boxes = calls[0]["input_boxes"]
    assert boxes.shape == (1, 2, 4) and boxes.dtype == real.dtype
    # SamProcessor's convention: x by 64 / 600, y by the rounded resized height 43 / 400
    np.testing.assert_allclose(boxes[0].numpy(), np.array(kept) * [64 / 600, 43 / 400, 64 / 600, 43 / 400], rtol=1e-4)
    assert calls[0]["pixel_values"].shape == (1, 3, 64, 64)
    # a logit blob centred at (10.5, 16.5) of the 32 x 32 low-res map = (21, 33) of the padded 64 x 64 frame,
    # ~ (195, 309) px of the photo (43 rows = 400 px, 64 columns = 600 px)
    low = torch.full((1, 2, 1, 32, 32), -10.0)
    yy, xx = torch.meshgrid(torch.arange(32) + 0.5, torch.arange(32) + 0.5, indexing="ij")
    low[0, 0, 0][((yy - 10.5) ** 2 + (xx - 16.5) ** 2) < 4] = 10.0
    loc.segmenter.model = Stub(pred_masks=low)
    prob, _ = loc(image, "the cup")
    cy, cx = _centroid(prob * (prob > 0.5))
    assert abs(cy - 21 * 400 / 43) < 6 and abs(cx - 33 * 600 / 64) < 6
    assert prob[:40].max() < 0.01 and prob[:, :150].max() < 0.01


def test_sam2_is_prompted_with_the_kept_boxes_in_its_frame(folders):
    kept = [[100, 50, 300, 250]]
    loc = load_localizer(f"owlv2:{folders['owlv2']}+sam2:{folders['sam2']}")
    loc.detector = _box_detector(kept, [0.9])
    image = PHOTOS["coffee"]  # 400 x 600, resized to 64 x 64 (not keeping the aspect ratio)
    low = torch.full((1, 1, 1, 16, 16), -10.0)
    low[0, 0, 0, 4, 12] = 10.0  # pixel (4, 12) of 16 x 16 covers rows 100-125, columns 450-487.5
    stub = Stub(pred_masks=low)
    loc.segmenter.model = stub
    prob, presence = loc(image, "the cup")
    _check_output(prob, presence, image.shape[:2])
    np.testing.assert_allclose(stub.calls[0]["input_boxes"][0].numpy(),
                               np.array(kept) * [64 / 600, 64 / 400, 64 / 600, 64 / 400], rtol=1e-5)
    assert stub.calls[0]["pixel_values"].shape == (1, 3, 64, 64)
    cy, cx = _centroid(prob * (prob > 0.5))
    assert abs(cy - 112.5) < 5 and abs(cx - 468.75) < 5


# -- specs ----------------------------------------------------------------------------------------------------
def test_every_spec_form_parses(folders):
    f = {k: str(v) for k, v in folders.items()}
    cases = {
        f"clipseg:{f['clipseg']}": ("clipseg", f["clipseg"], None, None),
        f"CLIPSeg:CIDAS/clipseg-rd64-refined": ("clipseg", "CIDAS/clipseg-rd64-refined", None, None),
        f"owlv2:{f['owlv2']}": ("owlv2", f["owlv2"], None, None),
        f"owlv2:{f['owlv2']}+sam:{f['sam']}": ("owlv2", f["owlv2"], "sam", f["sam"]),
        f"sam:{f['sam']}+owlv2:{f['owlv2']}": ("owlv2", f["owlv2"], "sam", f["sam"]),
        f"grounding-dino:{f['grounding-dino']}+sam:{f['sam']}": ("grounding-dino", f["grounding-dino"], "sam", f["sam"]),
        f"gdino:{f['grounding-dino']}+sam2:{f['sam2']}": ("grounding-dino", f["grounding-dino"], "sam2", f["sam2"]),
        "gdino:IDEA-Research/grounding-dino-tiny+sam:facebook/sam-vit-base":
            ("grounding-dino", "IDEA-Research/grounding-dino-tiny", "sam", "facebook/sam-vit-base"),
        f["clipseg"]: ("clipseg", f["clipseg"], None, None),  # bare folders: kind from config.json
        f"{f['grounding-dino']}+{f['sam2']}": ("grounding-dino", f["grounding-dino"], "sam2", f["sam2"]),
        f"{f['owlv2']}+sam:{f['sam']}": ("owlv2", f["owlv2"], "sam", f["sam"]),
    }
    for spec, want in cases.items():
        assert parse_localizer_spec(spec) == LocalizerSpec(*want), spec
    assert parse_localizer_spec(" Learned ") == LocalizerSpec("learned")
    assert load_localizer("learned") is None
    assert isinstance(load_localizer(f"{f['owlv2']}+{f['sam']}"), BoxSamLocalizer)
    assert isinstance(load_localizer(f["clipseg"]), CLIPSegLocalizer)


def test_bad_specs_fail_clearly_naming_the_accepted_forms(folders, tmp_path):
    f = {k: str(v) for k, v in folders.items()}
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hi")
    cases = {
        "": "empty localizer spec",
        "yolo:some/model": "unknown localizer kind 'yolo'",
        f"owlv2:{tmp_path}/missing": "does not exist",
        str(tmp_path / "missing"): "neither KIND:ID_OR_FOLDER nor an existing folder",
        "owlv2": "neither KIND:ID_OR_FOLDER nor an existing folder",
        f"owlv2:{f['clipseg']}": "holds clipseg",
        f"owlv2:{f['owlv2']}+sam:{f['owlv2']}": "holds owlv2 .*, not sam",
        f"clipseg:{f['clipseg']}+sam:{f['sam']}": "combines with a box detector",
        f["sam"]: "names only a mask model",
        f"owlv2:{f['owlv2']}+gdino:{f['grounding-dino']}": "two region models or two mask models",
        f"owlv2:{f['owlv2']}+sam:{f['sam']}+sam:{f['sam']}": "joined by one",
        "owlv2:": "names no model",
        str(tmp_path / "empty"): "no config.json",
        f"clipseg:{tmp_path / 'notes.txt'}": "is a file",
        "learned:runs/region": "the spec is just 'learned'",
        "clipseg:nobody-xyz/no-such-model": "local cache",
    }
    for spec, message in cases.items():
        with pytest.raises(LocalizerSpecError, match=message) as info:
            load_localizer(spec)
        assert "accepted localizer specs" in str(info.value) or "could not load" in str(info.value), spec
        assert isinstance(info.value, ValueError)


def test_direct_loaders_check_the_folder_kind(folders):
    from regionedit.localize.detectors import SamSegmenter

    with pytest.raises(LocalizerSpecError, match="holds owlv2"):
        SamSegmenter.from_pretrained(str(folders["owlv2"]))
    with pytest.raises(LocalizerSpecError, match="holds sam2"):
        CLIPSegLocalizer.from_pretrained(str(folders["sam2"]))
    with pytest.raises(ValueError, match="not a box detector"):
        BoxSamLocalizer.from_pretrained(str(folders["clipseg"]))
    loc = BoxSamLocalizer.from_pretrained(str(folders["grounding-dino"]), sam=str(folders["sam2"]), sam_kind="SAM2",
                                          box_threshold=0.9, max_boxes=2)
    assert loc.detector.kind == "grounding-dino" and loc.segmenter.kind == "sam2"
    assert loc.calibrated("presence_threshold", False) == pytest.approx(0.9) and loc.calibrated("threshold", False) is None
    assert len(loc.boxes(PHOTOS["chelsea"], "a cat")[0]) <= 2

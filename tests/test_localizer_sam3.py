"""The SAM 3 zero-shot localizer (:class:`regionedit.localize.sam3.Sam3Localizer`) on a tiny random
:class:`~transformers.Sam3Model` saved as a real folder (:func:`regionedit.models.tiny_localizers.save_tiny_sam3`),
and its spec ``sam3:ID_OR_FOLDER``.

The tiny model's outputs are random: the checks are the protocol (shapes, dtypes, ranges, sizes on photos at their
own sizes), the frames (stub model outputs with a known mask blob must land at the right image pixels; a known
image blob must reach the model at the right input pixels), the instance selection and the spec grammar.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch
from skimage import data

from regionedit.localize.backends import LocalizerSpec, load_localizer, parse_localizer_spec
from regionedit.localize.pretrained import LocalizerSpecError
from regionedit.localize.sam3 import Sam3Localizer
from regionedit.localize.zero_shot import BoxSamLocalizer, CLIPSegLocalizer
from regionedit.models import tiny_localizers as tiny

PHOTOS = {"astronaut": data.astronaut(), "chelsea": data.chelsea()}  # 512 x 512, 300 x 451


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tiny.save_tiny_sam3(tmp_path_factory.mktemp("sam3") / "sam3")


@pytest.fixture(scope="module")
def loc(folder):
    return load_localizer(f"sam3:{folder}")


from test_localizers import Stub, _check_output  # noqa: E402 (the shared stand-in model and output checks)


def _stub_localizer(folder, masks, logits, presence_logit=None, **options):
    """A Sam3Localizer over a Stub returning ``masks`` (Q, h', w') logits and ``logits`` (Q,), with the tiny
    folder's tokenizer and a 64 x 64 input."""
    from transformers import AutoTokenizer

    out = dict(pred_masks=torch.as_tensor(masks, dtype=torch.float32)[None],
               pred_logits=torch.as_tensor(logits, dtype=torch.float32)[None],
               presence_logits=None if presence_logit is None else torch.tensor([[float(presence_logit)]]))
    return Sam3Localizer(Stub(**out), AutoTokenizer.from_pretrained(str(folder)), (64, 64), **options)


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# -- the tiny folder ------------------------------------------------------------------------------------------
def test_tiny_folder_is_a_real_sam3_folder(folder, tmp_path):
    from transformers import Sam3Model

    assert json.loads((folder / "config.json").read_text())["model_type"] == "sam3"
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.bin"))
    pre = json.loads((folder / "processor_config.json").read_text())
    assert pre["processor_class"] == "Sam3Processor" and pre["image_processor"]["size"] == {"height": 64, "width": 64}
    assert (folder / "tokenizer_config.json").is_file()
    t0 = time.perf_counter()
    loc = Sam3Localizer.from_pretrained(str(folder))
    assert time.perf_counter() - t0 < 20, "the tiny folder should load in seconds"
    assert isinstance(loc.model, Sam3Model) and loc.image_size == (64, 64) and loc.text_length == 32
    assert loc.reads == "referent"
    state = torch.random.get_rng_state()
    again = tiny.save_tiny_sam3(tmp_path / "again", seed=0)
    assert torch.equal(state, torch.random.get_rng_state()), "the builder changed the global RNG state"
    from safetensors.torch import load_file

    a, b = load_file(folder / "model.safetensors"), load_file(again / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "same seed, same weights"


# -- the protocol on photos -----------------------------------------------------------------------------------
@pytest.mark.parametrize("photo", list(PHOTOS))
def test_protocol_on_photos_at_their_own_sizes(loc, photo):
    image = PHOTOS[photo]
    prob, presence = loc(image, "the cat")
    _check_output(prob, presence, image.shape[:2])
    for size in ((37, 53), (image.shape[0] * 2, image.shape[1])):
        _check_output(*loc(image, "an astronaut", size=size), size)
    masks, scores = loc.instances(image, "the cat")
    assert masks.dtype == scores.dtype == torch.float32 and masks.shape == (8, 32, 32) and scores.shape == (8,)
    assert presence == pytest.approx(float(scores.max()), abs=1e-6)


def test_rejects_empty_text_and_bad_images(loc):
    for text in ("", "   ", None):
        with pytest.raises(ValueError, match="non-empty text"):
            loc(PHOTOS["chelsea"], text)
    with pytest.raises(ValueError, match="uint8"):
        loc(PHOTOS["chelsea"].astype(np.float32), "a cat")
    with pytest.raises(ValueError, match="uint8"):
        loc(PHOTOS["chelsea"][..., 0], "a cat")


def test_long_texts_are_truncated_to_the_models_length(loc):
    text = " ".join(["the small grey cat sitting on the red sofa"] * 30)
    _check_output(*loc(PHOTOS["chelsea"], text), PHOTOS["chelsea"].shape[:2])
    assert loc.inputs(PHOTOS["chelsea"], text)["input_ids"].shape == (1, 32)


def test_bf16_load_gives_finite_float32(folder):
    loc = load_localizer(f"sam3:{folder}", torch_dtype="bf16")
    assert loc.model.dtype == torch.bfloat16
    image = PHOTOS["chelsea"]
    _check_output(*loc(image, "a cat"), image.shape[:2])
    _check_output(*loc(image, "a cat", size=(40, 60)), (40, 60))
    assert loc.inputs(image, "a cat")["pixel_values"].dtype == torch.bfloat16


# -- frames ---------------------------------------------------------------------------------------------------
def test_a_mask_blob_lands_at_the_right_image_pixels(folder):
    """Instance 0's mask is a blob over rows 8-15, columns 4-11 of the 32 x 32 mask grid, which covers the whole
    image: on a 300 x 451 image it must cover rows [75, 150) and columns [56.4, 169.1)."""
    masks = np.full((3, 32, 32), -20.0, np.float32)
    masks[0, 8:16, 4:12] = 20.0
    masks[1, 24:30, 20:30] = 20.0  # a second instance below the threshold: not in the map
    loc = _stub_localizer(folder, masks, [3.0, -4.0, -6.0], presence_logit=2.0)
    image = PHOTOS["chelsea"]
    H, W = image.shape[:2]
    prob, presence = loc(image, "the cat")
    _check_output(prob, presence, (H, W))
    assert presence == pytest.approx(_sig(3.0) * _sig(2.0), abs=1e-6)
    on = prob > 0.5
    ys, xs = np.nonzero(on)
    y0, y1, x0, x1 = H * 8 / 32, H * 16 / 32, W * 4 / 32, W * 12 / 32
    # sigmoid, then bilinear: the 0.5 level lies half-way between the mask pixel centres, on the blob's edge
    assert abs(ys.min() - y0) <= 1 and abs(ys.max() + 1 - y1) <= 1
    assert abs(xs.min() - x0) <= 1 and abs(xs.max() + 1 - x1) <= 1
    tol_y, tol_x = H / 32, W / 32  # one mask pixel: the blur of the bilinear resize
    assert prob[int(y0 + tol_y):int(y1 - tol_y), int(x0 + tol_x):int(x1 - tol_x)].min() > 0.99
    assert prob[int(H * 24 / 32):, int(W * 20 / 32):].max() < 0.01  # the dropped instance
    # resized to another size, the blob keeps its place in the frame
    small, _ = loc(image, "the cat", size=(60, 90))
    assert small[int(60 * 12 / 32), int(90 * 8 / 32)] > 0.99 and small[2, 80] < 0.01
    # the model got the processor's inputs
    call = loc.model.calls[0]
    assert call["pixel_values"].shape == (1, 3, 64, 64) and call["input_ids"].shape == (1, 32)
    assert call["attention_mask"].shape == (1, 32) and call["attention_mask"][0, 0] == 1


def test_the_image_reaches_the_model_in_its_frame_and_normalisation(folder):
    """A white rectangle over rows [100, 200) and columns [150, 300) of a black 300 x 450 image lands at rows
    [21.3, 42.7) and columns [21.3, 42.7) of the 64 x 64 input, normalised with mean / std 0.5: 1 inside, -1 outside."""
    loc = _stub_localizer(folder, np.zeros((1, 32, 32)), [0.0])
    image = np.zeros((300, 450, 3), np.uint8)
    image[100:200, 150:300] = 255
    x = loc.inputs(image, "a box")["pixel_values"][0]
    assert x.shape == (3, 64, 64)
    assert torch.allclose(x[:, 24:40, 24:40], torch.ones(1)) and torch.allclose(x[:, :18], -torch.ones(1))
    assert torch.allclose(x[:, :, :18], -torch.ones(1)) and torch.allclose(x[:, 46:], -torch.ones(1))
    assert torch.allclose(x[:, :, 46:], -torch.ones(1))


def test_instance_selection_threshold_best_and_cap(folder):
    masks = np.full((4, 32, 32), -20.0, np.float32)
    masks[0, :8, :8] = masks[1, 24:, 24:] = masks[2, :8, 24:] = masks[3, 24:, :8] = 20.0
    logits = [4.0, 3.0, 2.0, -3.0]  # scores .98 .95 .88 .05 (no presence head)
    image = np.zeros((64, 64, 3), np.uint8)

    def corners(loc):
        prob, presence = loc(image, "a thing")
        return [bool(prob[i, j] > 0.5) for i, j in ((4, 4), (60, 60), (4, 60), (60, 4))], presence

    got, presence = corners(_stub_localizer(folder, masks, logits))
    assert got == [True, True, True, False] and presence == pytest.approx(_sig(4.0), abs=1e-6)
    got, _ = corners(_stub_localizer(folder, masks, logits, max_instances=2))
    assert got == [True, True, False, False]
    got, presence = corners(_stub_localizer(folder, masks, logits, score_threshold=0.99))
    assert got == [True, False, False, False] and presence == pytest.approx(_sig(4.0), abs=1e-6)  # the best kept
    got, presence = corners(_stub_localizer(folder, masks, [-9.0, -8.0, -7.0, -5.0]))
    assert got == [False, False, False, True] and presence == pytest.approx(_sig(-5.0), abs=1e-6)
    loc = _stub_localizer(folder, masks, logits, score_threshold=0.3, thresholds={"threshold": 0.4})
    assert loc.calibrated("presence_threshold") == pytest.approx(0.3) and loc.calibrated("threshold", True) == 0.4
    assert _stub_localizer(folder, masks, logits).calibrated("threshold") is None
    for bad in ({"score_threshold": 1.5}, {"max_instances": 0}):
        with pytest.raises(ValueError):
            _stub_localizer(folder, masks, logits, **bad)


def test_no_queries_give_an_empty_map(folder):
    loc = _stub_localizer(folder, np.zeros((0, 32, 32)), np.zeros(0))
    prob, presence = loc(PHOTOS["chelsea"], "a cat", size=(30, 40))
    assert prob.shape == (30, 40) and prob.max() == 0.0 and presence == 0.0


# -- specs ----------------------------------------------------------------------------------------------------
def _video_folder(folder, dst):
    """``folder`` re-saved in the layout of facebook/sam3: a ``sam3_video`` config whose ``detector_config`` is the
    model's, the weights under ``detector_model.``, plus a tracker weight."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(folder, dst)
    cfg = json.loads((folder / "config.json").read_text())
    video = {"architectures": ["Sam3VideoModel"], "model_type": "sam3_video", "detector_config": cfg}
    (dst / "config.json").write_text(json.dumps(video))
    state = {"detector_model." + k: v for k, v in load_file(folder / "model.safetensors").items()}
    save_file(state | {"tracker_model.memory_attention.weight": torch.zeros(3)}, str(dst / "model.safetensors"),
              metadata={"format": "pt"})
    return dst


def test_spec_forms_parse_and_load(folder, tmp_path):
    f = str(folder)
    video = str(_video_folder(folder, tmp_path / "video"))
    cases = {f"sam3:{f}": ("sam3", f), "SAM3:facebook/sam3": ("sam3", "facebook/sam3"), f: ("sam3", f),
             video: ("sam3", video), f"sam3:{video}": ("sam3", video)}
    for spec, want in cases.items():
        assert parse_localizer_spec(spec) == LocalizerSpec(*want), spec
    a, b = load_localizer(f), load_localizer(video, score_threshold=0.2)
    assert isinstance(a, Sam3Localizer) and isinstance(b, Sam3Localizer) and b.score_threshold == 0.2
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), "the video layout's detector"
    image = PHOTOS["chelsea"]
    for x, y in zip(a.instances(image, "a cat"), b.instances(image, "a cat")):
        torch.testing.assert_close(x, y)


def test_sam3_combined_or_misnamed_fails_clearly(folder, tmp_path):
    f = str(folder)
    for name, model_type in (("tracker", "sam3_tracker"), ("lite", "sam3_lite_text")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"model_type": model_type}))
    cases = {
        "owlv2:google/owlv2-base-patch16-ensemble+sam3:facebook/sam3": "SAM 3 .* cannot be combined with owlv2",
        f"sam3:{f}+sam:facebook/sam-vit-base": "cannot be combined with sam",
        f"gdino:IDEA-Research/grounding-dino-tiny+{f}": "cannot be combined with grounding-dino",
        f"sam3:{f}+sam3:facebook/sam3": "cannot be combined with sam3",
        f"clipseg:{f}": "holds sam3 .*write it as sam3:",
        f"owlv2:{f}": "holds sam3",
        f"sam3:{tmp_path}/missing": "does not exist",
        "sam3:": "names no model",
        str(tmp_path / "tracker"): "not text-prompted",
        f"sam3:{tmp_path / 'tracker'}": "not text-prompted",
        str(tmp_path / "lite"): "not supported yet",
        "sam3:nobody-xyz/no-such-sam3": "local cache",
    }
    for spec, message in cases.items():
        with pytest.raises(LocalizerSpecError, match=message) as info:
            load_localizer(spec)
        assert "accepted localizer specs" in str(info.value) or "could not load" in str(info.value), spec
    with pytest.raises(LocalizerSpecError, match="sam3:ID_OR_FOLDER"):
        parse_localizer_spec(f"sam3:{f}+sam:x/y")
    with pytest.raises(ValueError, match="not a box detector"):
        BoxSamLocalizer.from_pretrained(f)
    with pytest.raises(LocalizerSpecError, match="holds sam3"):
        CLIPSegLocalizer.from_pretrained(f)
    with pytest.raises(LocalizerSpecError, match="holds clipseg"):
        Sam3Localizer.from_pretrained(str(tiny.save_tiny_clipseg(tmp_path / "clipseg")))

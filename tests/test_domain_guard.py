"""The domain guard: the bundled shapes models answer "no edit" on photos, with the flags for real models, and
change nothing on world images (issue 29 item 4). Calibration and figures: benchmarks/domain_guard.py."""

import json

import numpy as np
import pytest
from skimage import data

from regionedit.cli.main import main
from regionedit.core.domain import DomainGuard
from regionedit.io import save_png
from regionedit.models.bundled import bundled_dir
from regionedit.pipeline import Editor, EditorConfig
from regionedit.world.alt_render import render_pil
from regionedit.world.rendering import render
from regionedit.world.scene import sample_scene

PHOTOS = {"astronaut": data.astronaut, "chelsea": data.chelsea, "coffee": data.coffee, "rocket": data.rocket}


@pytest.fixture(scope="module")
def editor():
    return Editor.from_pretrained("shapes-64", config=EditorConfig(steps=4, candidates=1))


def test_bundled_folder_declares_a_calibrated_guard():
    guard = DomainGuard.from_folder(bundled_dir())
    assert guard is not None and 0 < guard.threshold < 0.2
    cal = guard.calibration
    assert cal["heldout_world_false_refusal"] == 0.0 and cal["photos_refused"] >= 0.85
    assert cal["command"].startswith("python benchmarks/domain_guard.py")


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_photo_gets_no_edit_with_the_flags_for_real_models(editor, name):
    photo = PHOTOS[name]()
    res = editor(photo, "replace the cat with a dog", seed=0)
    assert res.status == "no_edit"
    assert "--generator" in res.reason and "--localizer" in res.reason and "--domain-guard off" in res.reason
    assert res.image.shape == photo.shape and np.array_equal(res.image, photo) and not res.mask.any()


def test_world_images_pass_the_guard_at_any_size_and_renderer(editor):
    rng = np.random.default_rng(77)
    guard, vae = editor.domain_guard, editor.models.vae
    scores = []
    for i in range(24):
        scene = sample_scene(rng)
        size = (64, 200, (300, 451), 777)[i % 4]
        img = render(scene, size) if i % 2 else render_pil(scene, size)
        scores.append(guard.score(vae, img))
    assert max(scores) < guard.threshold, (max(scores), guard.threshold)
    # photos score far above every world image (the margin the threshold sits in)
    assert min(guard.score(vae, f()) for f in PHOTOS.values()) > 1.5 * max(scores)


def test_world_edit_is_not_refused(editor):
    scene = sample_scene(np.random.default_rng(3), n_objects=1)
    obj = scene.objects[0]
    img = render(scene, 64)
    res = editor(img, f"remove the {obj.color} {obj.shape}", seed=0)
    assert res.status == "edited", res.reason


def test_guard_off_lets_the_photo_through(editor):
    photo = data.chelsea()
    mask = np.zeros(photo.shape[:2], bool)
    mask[100:200, 150:300] = True
    off = Editor(editor.models, config=EditorConfig(steps=2, candidates=1, domain_guard=False),
                 domain_guard=editor.domain_guard)
    res = off(photo, "replace the cat with a dog", mask=mask)
    assert res.status == "edited"
    assert np.array_equal(res.image[~mask], photo[~mask])
    assert editor(photo, "replace the cat with a dog", mask=mask).status == "no_edit"  # with the guard on


def test_folder_entry_is_validated(tmp_path):
    assert DomainGuard.from_folder(tmp_path) is None
    (tmp_path / "regionedit.json").write_text(json.dumps({"plugin": "shapes"}))
    assert DomainGuard.from_folder(tmp_path) is None
    (tmp_path / "regionedit.json").write_text(json.dumps({"domain_guard": {"metric": "psnr", "threshold": 3}}))
    with pytest.raises(ValueError, match="vae_reconstruction_l1"):
        DomainGuard.from_folder(tmp_path)
    (tmp_path / "regionedit.json").write_text(json.dumps({"domain_guard": {"threshold": -1}}))
    with pytest.raises(ValueError, match="threshold"):
        DomainGuard.from_folder(tmp_path)
    g = DomainGuard(threshold=0.05, side=32, domain="x")
    (tmp_path / "regionedit.json").write_text(json.dumps({"domain_guard": g.to_json()}))
    assert DomainGuard.from_folder(tmp_path) == g


def test_cli_on_a_photo_says_what_to_pass(tmp_path, capsys):
    src = tmp_path / "cat.png"
    save_png(src, data.chelsea())
    out = tmp_path / "out.png"
    assert main(["edit", str(src), "replace the cat with a dog", "-o", str(out), "--steps", "2", "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["status"] == "no_edit" and "--generator" in record["reason"]

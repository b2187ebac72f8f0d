"""Image input/output: every kind of bad or unusual input, atomic PNG writes, metadata."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

import regionedit.io.saving as saving_mod
from regionedit.io import (
    MASK_KEY,
    ImageInputError,
    load_image,
    mask_from_text,
    mask_to_text,
    read_png_metadata,
    save_png,
    validate_instruction,
)

RNG = np.random.default_rng(0)


def _save(im: Image.Image, path, fmt: str | None = None, **kw) -> bytes:
    im.save(path, format=fmt, **kw)
    return path.read_bytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png16(arr: np.ndarray, color_type: int) -> bytes:
    """Hand-written 16-bit PNG (Pillow cannot write 16-bit colour): arr (H, W[, C]) uint16."""
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size but has no pixel data: decoding it would fail."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b"")


# ------------------------------------------------------------------------------------------------
# files that cannot be read


def test_missing_file(tmp_path):
    with pytest.raises(ImageInputError, match="not found.*check the path"):
        load_image(tmp_path / "nope.png")


def test_folder_and_empty_and_not_image(tmp_path):
    with pytest.raises(ImageInputError, match="folder"):
        load_image(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageInputError, match="empty"):
        load_image(tmp_path / "empty.png")
    (tmp_path / "notes.png").write_text("hello, not an image")
    with pytest.raises(ImageInputError, match="not an image"):
        load_image(tmp_path / "notes.png")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads everything")
def test_unreadable_file(tmp_path):
    p = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(p)
    p.chmod(0)
    with pytest.raises(ImageInputError, match="permission"):
        load_image(p)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("keep", [0.05, 0.5, 0.9])
def test_truncated(tmp_path, fmt, keep):
    data = _save(Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)),
                 tmp_path / "full", fmt)
    p = tmp_path / f"cut.{fmt.lower()}"
    p.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ImageInputError, match="truncated|not an image"):
        load_image(p)


def test_truncated_png_missing_only_the_end(tmp_path):
    data = _save(Image.new("RGB", (16, 16), (1, 2, 3)), tmp_path / "a.png", "PNG")
    with pytest.raises(ImageInputError, match="truncated"):
        load_image(data[:-6])  # IEND chunk cut: Pillow alone would load this


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_even_if_pillow_told_to_accept_it(tmp_path, fmt, monkeypatch):
    # Another library may set this global; we must still refuse grey-filled garbage.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = _save(Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)),
                 tmp_path / "full", fmt)
    with pytest.raises(ImageInputError, match="truncated"):
        load_image(data[: len(data) // 2])


def test_truncated_pil_image_input(tmp_path):
    data = _save(Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)),
                 tmp_path / "full", "PNG")
    lazy = Image.open(io.BytesIO(data[: len(data) // 2]))  # header fine, pixels missing
    with pytest.raises(ImageInputError, match="truncated"):
        load_image(lazy)


# ------------------------------------------------------------------------------------------------
# size limits


def test_over_max_pixels_checked_from_header(tmp_path):
    p = tmp_path / "big.png"
    p.write_bytes(_png_header_only(5000, 4000))  # 20 M px, no pixel data at all
    with pytest.raises(ImageInputError, match=r"5000 x 4000.*max_pixels=16,777,216.*max_pixels="):
        load_image(p)


def test_max_pixels_parameter(tmp_path):
    p = tmp_path / "a.png"
    Image.new("RGB", (300, 200), (9, 9, 9)).save(p)
    with pytest.raises(ImageInputError, match="max_pixels=50,000"):
        load_image(p, max_pixels=50_000)
    assert load_image(p, max_pixels=60_000).shape == (200, 300, 3)
    with pytest.raises(ImageInputError, match="max_pixels"):
        load_image(np.zeros((300, 200, 3), np.uint8), max_pixels=1000)


def test_decompression_bomb(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header_only(100_000, 100_000))
    with pytest.raises(ImageInputError, match="max_pixels|too large"):
        load_image(p)
    with pytest.raises(ImageInputError, match="too large to decode"):
        load_image(p, max_pixels=None)  # Pillow's own bomb limit still applies


# ------------------------------------------------------------------------------------------------
# depths, modes, orientation


def test_16bit_grey_scaled_not_clipped(tmp_path):
    v = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(v).save(p)
    assert Image.open(p).mode.startswith("I")
    out = load_image(p)
    assert out.dtype == np.uint8 and out.shape == (1, 4, 3)
    np.testing.assert_array_equal(out[0, :, 0], [0, 4, 128, 255])
    assert (out[..., 0] == out[..., 2]).all()


def test_16bit_rgb_scaled(tmp_path):
    a = np.zeros((3, 5, 3), np.uint16)
    a[..., 0], a[..., 1], a[..., 2] = 65535, 32768, 256
    p = tmp_path / "rgb16.png"
    p.write_bytes(_png16(a, color_type=2))
    out = load_image(p)
    np.testing.assert_allclose(out[0, 0], [255, 128, 1], atol=1)


def test_cmyk_jpeg(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(p, "JPEG", quality=95)
    assert Image.open(p).mode == "CMYK"
    out = load_image(p)
    assert out.shape == (16, 16, 3)
    np.testing.assert_allclose(out[8, 8], [255, 0, 0], atol=8)


def _half_transparent_red() -> Image.Image:
    a = np.zeros((8, 8, 4), np.uint8)
    a[..., 0] = 255
    a[:, :4, 3] = 255  # left half opaque
    a[:, 4:, 3] = 128  # right half half-transparent
    return Image.fromarray(a)


def test_rgba_alpha_modes(tmp_path):
    p = tmp_path / "rgba.png"
    _half_transparent_red().save(p)
    white = load_image(p)
    black = load_image(p, alpha="black")
    np.testing.assert_array_equal(white[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(white[0, 7], [255, 127, 127])
    np.testing.assert_array_equal(black[0, 7], [128, 0, 0])
    with pytest.raises(ImageInputError, match="transparency.*alpha='white'"):
        load_image(p, alpha="error")
    opaque = tmp_path / "opaque.png"
    Image.new("RGBA", (4, 4), (1, 2, 3, 255)).save(opaque)
    np.testing.assert_array_equal(load_image(opaque, alpha="error")[0, 0], [1, 2, 3])
    with pytest.raises(ImageInputError, match="alpha must be"):
        load_image(p, alpha="grey")


def test_la_and_palette_transparency(tmp_path):
    la = tmp_path / "la.png"
    Image.fromarray(np.dstack([np.full((4, 4), 50, np.uint8), np.zeros((4, 4), np.uint8)])).save(la)
    np.testing.assert_array_equal(load_image(la)[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(load_image(la, alpha="black")[0, 0], [0, 0, 0])

    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([10, 20, 30] + [200, 0, 0] * 255)
    pal.putpixel((0, 0), 1)
    pp = tmp_path / "p.png"
    pal.save(pp, transparency=0)  # palette entry 0 fully transparent (tRNS chunk)
    out = load_image(pp)
    np.testing.assert_array_equal(out[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(out[1, 1], [255, 255, 255])
    with pytest.raises(ImageInputError, match="transparency"):
        load_image(pp, alpha="error")


def test_grey_and_1bit(tmp_path):
    g = tmp_path / "l.png"
    Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4) * 16).save(g)
    out = load_image(g)
    assert out.shape == (4, 4, 3)
    assert out[3, 3].tolist() == [240, 240, 240]
    b = tmp_path / "1.png"
    Image.fromarray(np.eye(4, dtype=bool)).convert("1").save(b)
    out = load_image(b)
    assert out[0, 0].tolist() == [255, 255, 255] and out[0, 1].tolist() == [0, 0, 0]


def test_exif_orientation_applied(tmp_path):
    a = np.zeros((10, 20, 3), np.uint8)  # H=10, W=20 as stored
    a[:, :10] = (255, 0, 0)  # left half red
    a[:, 10:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = tmp_path / "rot.jpg"
    Image.fromarray(a).save(p, "JPEG", exif=exif, quality=95)
    out = load_image(p)
    assert out.shape == (20, 10, 3)  # displayed: H=20, W=10
    assert out[2, 5, 0] > 200 and out[2, 5, 2] < 60  # top is the stored left (red)
    assert out[17, 5, 2] > 200 and out[17, 5, 0] < 60  # bottom is the stored right (blue)


# ------------------------------------------------------------------------------------------------
# arrays and other sources


def test_arrays():
    u8 = RNG.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    out = load_image(u8)
    np.testing.assert_array_equal(out, u8)
    assert out is not u8 and not np.shares_memory(out, u8)
    f = np.array([[[0.0, 0.5, 1.0]]])
    np.testing.assert_array_equal(load_image(f)[0, 0], [0, 128, 255])
    np.testing.assert_array_equal(load_image(f.astype(np.float32))[0, 0], [0, 128, 255])
    assert load_image(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert load_image(np.zeros((4, 5, 1), np.float32)).shape == (4, 5, 3)
    rgba = np.zeros((2, 2, 4), np.uint8)
    np.testing.assert_array_equal(load_image(rgba)[0, 0], [255, 255, 255])
    u16 = np.full((2, 2, 3), 65535, np.uint16)
    assert (load_image(u16) == 255).all()


@pytest.mark.parametrize(
    ("arr", "pattern"),
    [
        (np.zeros((3, 32, 32), np.uint8), "channels-first.*transpose"),
        (np.zeros((8, 8, 2), np.uint8), r"shape \(8, 8, 2\)"),
        (np.zeros((2, 8, 8, 3), np.uint8), "shape"),
        (np.zeros(7, np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "no pixels"),
        (np.full((4, 4, 3), 200.0), r"\[0, 1\].*divide by 255"),
        (np.full((4, 4, 3), -0.1), r"\[0, 1\]"),
        (np.full((4, 4, 3), np.nan), "NaN"),
        (np.zeros((4, 4, 3), np.int64), "dtype int64.*astype"),
        (np.zeros((4, 4, 3), bool), "dtype bool"),
    ],
)
def test_bad_arrays(arr, pattern):
    with pytest.raises(ImageInputError, match=pattern):
        load_image(arr)


def test_pil_bytes_fileobj_sources(tmp_path):
    im = Image.new("RGB", (7, 3), (10, 20, 30))
    assert load_image(im)[0, 0].tolist() == [10, 20, 30]
    data = _save(im, tmp_path / "a.png", "PNG")
    assert load_image(data).shape == (3, 7, 3)
    with open(tmp_path / "a.png", "rb") as f:
        assert load_image(f).shape == (3, 7, 3)
    assert load_image(io.BytesIO(data)).shape == (3, 7, 3)
    with pytest.raises(ImageInputError, match="binary mode"), open(tmp_path / "t.txt", "w+") as f:
        f.write("x")
        f.seek(0)
        load_image(f)
    with pytest.raises(ImageInputError, match="cannot load an image from int"):
        load_image(42)


def test_error_is_a_value_error():
    assert issubclass(ImageInputError, ValueError)


# ------------------------------------------------------------------------------------------------
# saving


def test_metadata_round_trip(tmp_path):
    img = RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    mask = np.zeros((20, 30), np.float32)
    mask[5:15, 10:20] = 1.0
    mask[0, 0] = 0.5
    meta = {
        "instruction": "turn the square blue",
        "seed": "1234",
        "method": "feather",
        "model_id": "regionedit/tiny-inpaint@0.1",
        "note": "ünïcödé — 日本語",  # not Latin-1: stored as iTXt
        "long": "x" * 5000,  # compressed
    }
    out = save_png(tmp_path / "out.png", img, meta, mask=mask)
    assert out == tmp_path / "out.png"
    back = read_png_metadata(out)
    for k, v in meta.items():
        assert back[k] == v
    np.testing.assert_allclose(mask_from_text(back[MASK_KEY]), mask, atol=1 / 255)
    np.testing.assert_array_equal(load_image(out), img)


def test_mask_text_round_trip():
    m = RNG.random((13, 7)) > 0.5
    np.testing.assert_array_equal(mask_from_text(mask_to_text(m)), m.astype(np.float32))
    with pytest.raises(ImageInputError):
        mask_from_text("not base64 png!")


def test_atomic_write_leaves_no_temp_files(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    save_png(tmp_path / "a.png", img, {"k": "v"})
    save_png(tmp_path / "a.png", img + 1, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["a.png"]
    assert load_image(tmp_path / "a.png")[0, 0, 0] == 1


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(saving_mod.os, "replace", boom)
    monkeypatch.setattr(saving_mod.os, "link", boom)
    with pytest.raises(OSError, match="disk full"):
        save_png(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    assert os.listdir(tmp_path) == []


def test_overwrite_rule(tmp_path):
    p = tmp_path / "a.png"
    save_png(p, np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ImageInputError, match="already exists.*overwrite=True"):
        save_png(p, np.ones((4, 4, 3), np.uint8))
    assert load_image(p).max() == 0  # untouched
    save_png(p, np.ones((4, 4, 3), np.uint8), overwrite=True)
    assert load_image(p).max() == 1


def test_protect_inputs(tmp_path, monkeypatch):
    src = tmp_path / "input.png"
    Image.new("RGB", (4, 4), (7, 7, 7)).save(src)
    before = src.read_bytes()
    img = np.zeros((4, 4, 3), np.uint8)
    for protect in ([src], str(src), src, (str(src), "other.png")):
        with pytest.raises(ImageInputError, match="input image.*different output path"):
            save_png(src, img, overwrite=True, protect=protect)
    link = tmp_path / "link.png"
    link.symlink_to(src)
    with pytest.raises(ImageInputError, match="input image"):
        save_png(link, img, overwrite=True, protect=[src])
    hard = tmp_path / "hard.png"
    os.link(src, hard)
    with pytest.raises(ImageInputError, match="input image"):
        save_png(hard, img, overwrite=True, protect=[src])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImageInputError, match="input image"):
        save_png("input.png", img, overwrite=True, protect=[src])
    assert src.read_bytes() == before
    save_png(tmp_path / "out.png", img, protect=[src])  # other paths are fine
    with pytest.raises(ImageInputError, match="protect must list file paths"):
        save_png(tmp_path / "out2.png", img, protect=[img])


def test_save_bad_arguments(tmp_path):
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ImageInputError, match=".png extension"):
        save_png(tmp_path / "a.jpg", img)
    with pytest.raises(ImageInputError, match="does not exist.*create it"):
        save_png(tmp_path / "missing" / "a.png", img)
    with pytest.raises(ImageInputError, match="values must be str"):
        save_png(tmp_path / "a.png", img, {"seed": 3})
    with pytest.raises(ImageInputError, match="1-79"):
        save_png(tmp_path / "a.png", img, {"k" * 80: "v"})
    with pytest.raises(ImageInputError, match="Latin-1"):
        save_png(tmp_path / "a.png", img, {"ключ": "v"})
    with pytest.raises(ImageInputError, match="shape"):
        save_png(tmp_path / "a.png", np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageInputError, match=r"\[0, 1\]"):
        save_png(tmp_path / "a.png", np.full((4, 4, 3), 3.0))
    with pytest.raises(ImageInputError, match="does not match"):
        save_png(tmp_path / "a.png", img, mask=np.zeros((5, 5)))
    assert os.listdir(tmp_path) == []


def test_read_metadata_errors(tmp_path):
    with pytest.raises(ImageInputError, match="not found"):
        read_png_metadata(tmp_path / "x.png")
    p = tmp_path / "x.jpg"
    Image.new("RGB", (4, 4)).save(p)
    with pytest.raises(ImageInputError, match="not PNG"):
        read_png_metadata(p)


# ------------------------------------------------------------------------------------------------
# instructions


def test_validate_instruction():
    assert validate_instruction("  make the sky blue \n") == "make the sky blue"
    assert validate_instruction("x" * 500) == "x" * 500
    for bad, pattern in [
        ("", "empty"),
        ("   \n\t", "empty"),
        (None, "must be a str"),
        (42, "must be a str"),
        (b"make it red", "decode"),
        ("x" * 501, "501 characters.*limit of 500"),
        ("red\x00circle", "control characters"),
    ]:
        with pytest.raises(ImageInputError, match=pattern):
            validate_instruction(bad)
    with pytest.raises(ValueError):
        validate_instruction("")
    assert validate_instruction("x" * 600, max_chars=600)


# ------------------------------------------------------------------------------------------------
# issue 33: the pixel limit's CLI flag, alpha="keep", stale temp files, unwritable folders


def test_max_pixels_limit_context_and_message_names_the_flag(tmp_path):
    from regionedit.io import max_pixels_limit

    p = tmp_path / "a.png"
    Image.fromarray(np.zeros((200, 300, 3), np.uint8)).save(p)
    with max_pixels_limit(50_000):
        with pytest.raises(ImageInputError, match=r"--max-pixels 60000"):
            load_image(p)  # the default limit is the block's
        assert load_image(p, max_pixels=None).shape == (200, 300, 3)  # an explicit argument wins
    assert load_image(p).shape == (200, 300, 3)  # restored after the block
    with max_pixels_limit(10):
        with pytest.raises(ImageInputError, match="max_pixels"):
            load_image(np.zeros((300, 200, 3), np.uint8))
    with pytest.raises(ImageInputError, match="positive"):
        with max_pixels_limit(0):
            pass


def test_alpha_keep_returns_rgba_only_for_transparent_images(tmp_path):
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    p = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(p)
    assert np.array_equal(load_image(p, alpha="keep"), rgba)
    Image.fromarray(rgba[..., :3]).save(tmp_path / "b.png")
    assert load_image(tmp_path / "b.png", alpha="keep").shape == (4, 5, 3)


def test_remove_stale_temp_files_only_ours(tmp_path):
    from regionedit.io import remove_stale_temp_files, temp_files_for

    dest = tmp_path / "out.png"
    ours = tmp_path / ".out.png.0123456789ab.tmp"
    keep = [tmp_path / ".out.png.tmp", tmp_path / ".other.png.0123456789ab.tmp", tmp_path / "out.png.0123456789ab.tmp",
            tmp_path / ".out.png.0123456789AB.tmp"]
    for f in [ours, *keep]:
        f.write_bytes(b"x")
    assert temp_files_for(dest) == [ours]
    assert remove_stale_temp_files([dest]) == [ours] and not ours.exists() and all(f.exists() for f in keep)


def test_save_png_unwritable_folder_is_an_input_error(tmp_path, monkeypatch):
    import regionedit.io.saving as saving

    real_open = os.open

    def denied(path, *a, **k):
        if str(path).endswith(".tmp"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(saving.os, "open", denied)
    with pytest.raises(ImageInputError, match="no permission to write.*writable"):
        save_png(tmp_path / "o.png", np.zeros((2, 2, 3), np.uint8))

"""The frozen-generator interface: shapes, seeding, and latent blending (Appendix A of seed 001)."""

import pytest
import torch

from regionedit import models
from regionedit.generate import InpaintConfig, InpaintGenerator
from regionedit.world.tiny import save_tiny_models


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return models.load(save_tiny_models(tmp_path_factory.mktemp("tiny")))


def _inputs():
    g = torch.Generator().manual_seed(1)
    img = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    region = torch.zeros(2, 1, 32, 32)
    region[:, :, 8:24, 8:24] = 1
    return img, region


def test_shapes_range_and_seeding(tiny):
    gen = InpaintGenerator(tiny, InpaintConfig(steps=2))
    assert gen.native_size == 32
    img, region = _inputs()
    a = gen(img, region, ["a red star", "background"], generator=torch.Generator().manual_seed(0))
    b = gen(img, region, ["a red star", "background"], generator=torch.Generator().manual_seed(0))
    c = gen(img, region, ["a red star", "background"], generator=torch.Generator().manual_seed(1))
    assert a.shape == (2, 3, 32, 32) and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    with pytest.raises(ValueError, match="one prompt per image"):
        gen(img, region, ["only one"])


def test_latent_blending_keeps_the_outside(tiny):
    """With blending, the final latents outside the region are exactly the source latents (eq. 23);
    without it, they are not."""
    img, region = _inputs()
    blended = InpaintGenerator(tiny, InpaintConfig(steps=2, blend=True))
    free = InpaintGenerator(tiny, InpaintConfig(steps=2, blend=False))
    _, lat_b = blended(img, region, ["x", "y"], generator=torch.Generator().manual_seed(0), return_latents=True)
    _, lat_f = free(img, region, ["x", "y"], generator=torch.Generator().manual_seed(0), return_latents=True)
    src = blended.encode(img)
    outside = torch.ones_like(src, dtype=torch.bool)
    outside[:, :, 4:12, 4:12] = False  # region 8:24 in pixels -> 4:12 in latents (f = 2)
    assert torch.equal(lat_b[outside], src[outside])
    assert not torch.allclose(lat_f[outside], src[outside])
    assert not torch.allclose(lat_b[~outside], src[~outside])  # the region was regenerated

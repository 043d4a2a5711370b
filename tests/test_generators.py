"""Generators: DeePSim fc6 architecture / post-processing / weight files, pixel and Fourier parametrisations."""

from __future__ import annotations

import time

import pytest
import torch

from neuroalign.core.errors import ConfigError, MissingFileError
from lightning_modules.evolution import DeepSimGenerator, FourierGenerator, Generator, PixelGenerator
from lightning_modules.evolution.generators.deepsim import DEEPSIM_FC6_FILE, WEIGHTS_CONFIG_KEY

# docs/recipes.md section 3: (name, in, out, kernel) in order; 4x4 kernels double the size
DEEPSIM_LAYERS = [
    ("defc7", 4096, 4096, None), ("defc6", 4096, 4096, None), ("defc5", 4096, 4096, None),
    ("deconv5", 256, 256, 4), ("conv5_1", 256, 512, 3), ("deconv4", 512, 256, 4), ("conv4_1", 256, 256, 3),
    ("deconv3", 256, 128, 4), ("conv3_1", 128, 128, 3), ("deconv2", 128, 64, 4), ("deconv1", 64, 32, 4),
    ("deconv0", 32, 3, 4),
]  # fmt: skip


@pytest.fixture(scope="module")
def deepsim() -> DeepSimGenerator:
    """One randomly initialised fc6 generator (224 MB) for the whole module."""
    return DeepSimGenerator(pretrained=False)


def test_deepsim_architecture_matches_recipes(deepsim):
    n_params = sum(p.numel() for p in deepsim.parameters())
    expected = sum(i * o * (k * k if k else 1) + o for _, i, o, k in DEEPSIM_LAYERS)
    assert n_params == expected and abs(n_params - 56.1e6) < 0.05e6
    weighted = [name for name, m in deepsim.named_children() if any(True for _ in m.parameters())]
    assert weighted == [name for name, *_ in DEEPSIM_LAYERS]
    slopes = {m.negative_slope for m in deepsim.modules() if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.3} and sum(isinstance(m, torch.nn.LeakyReLU) for m in deepsim.modules()) == 11
    assert deepsim.code_dim == 4096 and deepsim.image_size == 256
    assert not any(p.requires_grad for p in deepsim.parameters())


def test_deepsim_output_shape_and_range(deepsim):
    with torch.no_grad():
        images = deepsim(3.0 * torch.randn(2, 4096))
    assert images.shape == (2, 3, 256, 256) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert deepsim.init_codes(3).shape == (3, 4096)
    with pytest.raises(ValueError, match="4096"):
        deepsim(torch.zeros(2, 10))


def test_deepsim_post_processing_bgr_mean_clamp(deepsim):
    """A constant raw output (b, g, r) becomes RGB (r + 123, g + 117, b + 104) / 255, clamped."""
    last = deepsim.deconv0
    saved = last.weight.clone(), last.bias.clone()
    try:
        last.weight.zero_()
        last.bias.copy_(torch.tensor([10.0, -117.0, 200.0]))  # B, G, R
        with torch.no_grad():
            image = deepsim(torch.zeros(1, 4096))[0]
    finally:
        last.weight.copy_(saved[0])
        last.bias.copy_(saved[1])
    assert torch.all(image[0] == 1.0)  # R: 200 + 123 clamped to 255
    assert torch.all(image[1] == 0.0)  # G: -117 + 117
    torch.testing.assert_close(image[2], torch.full((256, 256), 114.0 / 255))  # B: 10 + 104


def test_deepsim_loads_state_dict_file(deepsim, tmp_path):
    path = tmp_path / DEEPSIM_FC6_FILE
    torch.save({f"G.{k}": v for k, v in deepsim.state_dict().items()}, path)  # upconvGAN's prefix
    try:
        loaded = DeepSimGenerator(weights_path=str(path))
    finally:
        path.unlink()
    codes = torch.randn(1, 4096)
    with torch.no_grad():
        assert torch.equal(loaded(codes), deepsim(codes))
    assert not any(p.is_meta for p in loaded.parameters()) and not loaded.rgb_mean.is_meta


@pytest.mark.parametrize(
    "state, problem",
    [
        ({"defc7.weight": torch.zeros(10, 10)}, "defc7.weight"),  # wrong shape
        ({"defc7.weight": torch.zeros(4096, 4096)}, "defc7.bias"),  # missing key
        ("not a state dict", "state dict"),
    ],
)
def test_deepsim_wrong_file_is_one_clear_error(tmp_path, state, problem):
    path = tmp_path / "other.pt"
    torch.save(state, path)
    with pytest.raises(ConfigError) as info:
        DeepSimGenerator(weights_path=str(path))
    message = str(info.value)
    assert "other.pt" in message and problem in message and WEIGHTS_CONFIG_KEY in message
    assert "\n" not in message


def test_deepsim_offline_without_file_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROALIGN_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(MissingFileError) as info:
        DeepSimGenerator(weights_path=str(tmp_path / DEEPSIM_FC6_FILE))
    with pytest.raises(MissingFileError, match=DEEPSIM_FC6_FILE):
        DeepSimGenerator()  # default: torch hub checkpoint folder (TORCH_HOME isolated by conftest)
    assert time.perf_counter() - start < 5
    assert DEEPSIM_FC6_FILE in str(info.value) and WEIGHTS_CONFIG_KEY in str(info.value)


@pytest.mark.parametrize("size", [5, 16])
def test_pixel_generator_sigmoid_and_clamp(size):
    sig = PixelGenerator(image_size=size)
    assert isinstance(sig, Generator) and sig.code_dim == 3 * size * size
    codes = 4 * torch.randn(6, sig.code_dim)
    images = sig(codes)
    assert images.shape == (6, 3, size, size) and 0 < images.min() and images.max() < 1
    torch.testing.assert_close(images.flatten(1), torch.sigmoid(codes))  # code layout = (3, H, W)
    assert torch.all(sig(sig.init_codes(2)) == 0.5)

    clamp = PixelGenerator(image_size=size, activation="clamp")
    assert torch.all(clamp(clamp.init_codes(1)) == 0.5)
    clipped = clamp(codes)
    assert clipped.min() == 0 and clipped.max() == 1
    inside = (codes > 0) & (codes < 1)
    assert torch.equal(clipped.flatten(1)[inside], codes[inside])
    with pytest.raises(ConfigError, match="activation"):
        PixelGenerator(activation="tanh")


def test_weight_free_generators_follow_the_codes_device():
    meta_codes = torch.zeros(2, 3 * 4 * 4, device="meta")  # a tensor-free generator keeps the device
    assert PixelGenerator(image_size=4)(meta_codes).device.type == "meta"
    fourier = FourierGenerator(image_size=8).to(torch.float64)  # buffers set device and dtype
    assert fourier(torch.zeros(1, fourier.code_dim)).dtype == torch.float64


@pytest.mark.parametrize("size", [16, 33])
def test_fourier_generator_shapes_and_unit_scale(size):
    gen = FourierGenerator(image_size=size)
    assert isinstance(gen, Generator) and gen.code_dim == 2 * 3 * size * (size // 2 + 1)
    torch.manual_seed(0)
    codes = torch.randn(64, gen.code_dim)
    images = gen(codes)
    assert images.shape == (64, 3, size, size) and 0 < images.min() and images.max() < 1
    assert gen._spatial(codes).std().item() == pytest.approx(1.0, abs=0.05)  # normalised inverse FFT
    assert torch.all(gen(gen.init_codes(1)) == 0.5)


def test_fourier_decay_makes_smooth_images_and_colours_are_mixed():
    torch.manual_seed(1)

    def roughness(decay: float) -> float:
        gen = FourierGenerator(image_size=32, decay=decay)
        pre = gen._spatial(torch.randn(16, gen.code_dim))
        return (pre[..., 1:] - pre[..., :-1]).abs().mean().item()

    assert roughness(1.5) < 0.5 * roughness(0.0)

    code = torch.zeros(1, FourierGenerator(16).code_dim)
    code[0, 10] = 5.0  # a coefficient of the first decorrelated channel only
    mixed = FourierGenerator(16)(code)[0] - 0.5
    plain = FourierGenerator(16, decorrelate=False)(code)[0] - 0.5
    assert all(mixed[c].abs().max() > 1e-3 for c in range(3))
    assert plain[0].abs().max() > 1e-3 and plain[1:].abs().max() < 1e-6

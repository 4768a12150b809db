"""Model registry and loading: names, devices and checkpoint errors that name the file and model."""
import pytest
import torch

from napari_sam_mis.errors import ModelError
from napari_sam_mis.model.backend import resolve_device
from napari_sam_mis.model.build import build_model
from napari_sam_mis.model.engine import SamEngine
from napari_sam_mis.model.registry import REGISTRY, get_spec

from ..helpers import malicious_checkpoint


def test_registry_names():
    assert {"litemedsam", "sam_vit_b", "sam_vit_l", "sam_vit_h", "medsam_vit_b"} <= set(REGISTRY)
    assert get_spec("litemedsam").input_size == 256
    assert get_spec("medsam_vit_b").input_size == 1024


def test_unknown_model_lists_the_choices():
    with pytest.raises(ModelError, match="unknown model 'sam_vit_x'.*litemedsam"):
        get_spec("sam_vit_x")


def test_sam_needs_a_checkpoint():
    with pytest.raises(ModelError, match="sam_vit_b.*needs a checkpoint file.*sam_vit_b_01ec64.pth"):
        build_model("sam_vit_b")


def test_missing_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "nothere.pth"
    with pytest.raises(ModelError, match=f"{path}.*'medsam_vit_b'.*not found"):
        build_model("medsam_vit_b", path)


def test_garbage_checkpoint(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ModelError, match="broken.pth is not a readable PyTorch checkpoint"):
        build_model("sam_vit_b", path)


@pytest.mark.parametrize("loader", ["sam_vit_b checkpoint", "litemedsam checkpoint", "litemedsam_clicks weights"])
def test_a_checkpoint_whose_pickle_runs_code_is_refused_unrun(loader, tmp_path):
    marker = tmp_path / "code_ran"
    path = malicious_checkpoint(tmp_path / "evil.pt", marker)
    name = loader.split()[0]
    with pytest.raises(ModelError, match=r"evil.pt is not a readable .*could run code") as info:
        if loader.endswith("weights"):
            SamEngine.load(name, checkpoint=str(path), device="cpu")
        else:
            build_model(name, path)
    assert "\n" not in str(info.value) and not marker.exists()


def test_every_torch_load_reads_tensors_only():
    """Each ``torch.load`` in the package passes weights_only=True: no checkpoint can run code."""
    import ast
    from pathlib import Path

    import napari_sam_mis

    calls = []
    for source in Path(napari_sam_mis.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                safe = any(k.arg == "weights_only" and getattr(k.value, "value", None) is True for k in node.keywords)
                calls.append((f"{source.name}:{node.lineno}", safe))
    assert calls and all(safe for _, safe in calls), calls


def test_mismatched_checkpoint_says_what_it_is(tmp_path, lite_engine):
    path = tmp_path / "lite_as_sam.pth"
    torch.save(lite_engine.module.state_dict(), path)
    with pytest.raises(ModelError, match=r"does not match model 'sam_vit_b'.*LiteMedSAM \(TinyViT\) checkpoint"):
        build_model("sam_vit_b", path)


def test_truncated_state_dict_for_litemedsam(tmp_path, lite_engine):
    state = {k: v for k, v in lite_engine.module.state_dict().items() if not k.startswith("mask_decoder.")}
    path = tmp_path / "partial.pth"
    torch.save({"model": state}, path)
    with pytest.raises(ModelError, match="partial.pth does not match model 'litemedsam'"):
        build_model("litemedsam", path)


def test_bundled_litemedsam_loads_offline(lite_engine):
    assert lite_engine.name == "litemedsam"
    assert lite_engine.device.type == "cpu"
    assert len(lite_engine.weights_sha256) == 64
    n_params = sum(p.numel() for p in lite_engine.module.image_encoder.parameters())
    assert 5.0e6 < n_params < 6.5e6  # TinyViT, about 5.7 M


def test_device_auto_and_unavailable():
    assert resolve_device("auto").type in ("cuda", "mps", "cpu")
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_engine_matches_cpu(lite_engine):
    import numpy as np

    gpu = SamEngine.load("litemedsam", device="cuda")
    img = (np.arange(200 * 180) % 251).reshape(200, 180).astype(np.uint8)
    a = lite_engine.embed_slices([img])[0].features
    b = gpu.embed_slices([img])[0].features.cpu()
    assert torch.allclose(a, b, atol=1e-2)

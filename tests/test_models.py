"""The Inception I3D builder (published keys, shapes and size; small clips; width) and weight
loading (the PyTorch port's checkpoints, pytorchvideo's and skr's formats, head replacement,
refusals that name the keys)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from skr_cli.cli import validate
from skr_cli.engine.checkpoint import save_state
from skr_cli.models import WeightsError
from skr_cli.models.i3d import InceptionI3d, i3d, same_padding
from skr_cli.models.pytorchvideo_resnet import i3d_r50
from skr_cli.pipeline import UserError, build_model

FIXTURES = Path(__file__).parent / "fixtures"


def published_keys() -> dict[str, tuple[int, ...]]:
    """The state-dict keys and shapes of the PyTorch port of DeepMind's I3D, at 400 classes."""
    keys = {}
    for line in (FIXTURES / "i3d_keys.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split()
            keys[key] = () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))
    return keys


def port_checkpoint(path: Path, *, counters: bool) -> dict[str, torch.Tensor]:
    """Saves a checkpoint in the port's format (random values); ``counters=False`` leaves out the
    batch norms' num_batches_tracked, as in files older than that counter."""
    generator = torch.Generator().manual_seed(0)
    state = {
        key: torch.randn(shape, generator=generator)
        if shape
        else torch.tensor(5)  # num_batches_tracked
        for key, shape in published_keys().items()
        if counters or not key.endswith("num_batches_tracked")
    }
    torch.save(state, path)
    return state


def build_i3d(num_classes: int = 400, width: float = 1.0, weights: Path | None = None):
    return i3d(num_classes=num_classes, width=width, dropout=0.5, in_channels=3, weights=weights)


def test_every_key_and_shape_matches_the_published_architecture() -> None:
    model = InceptionI3d(num_classes=400, width=1.0, dropout=0.5, in_channels=3)
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert shapes == published_keys()


def test_full_size_i3d_has_the_published_parameter_count() -> None:
    model = InceptionI3d(num_classes=400, width=1.0, dropout=0.5, in_channels=3)
    assert sum(p.numel() for p in model.parameters()) == 12_697_264  # 12.70 M


def test_full_size_i3d_classifies_8x112_clips() -> None:
    model = build_i3d(num_classes=400).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 8, 112, 112)).shape == (1, 400)


def test_64x224_clips_reach_the_published_head() -> None:
    """At 64×224² the last block's map is 8×7×7 and the (2, 7, 7) pool leaves 7 time steps, as
    published. The map's size does not depend on the width, so a narrow network checks it fast."""
    model = build_i3d(num_classes=400, width=0.125).eval()
    seen = {}
    model.logits.register_forward_hook(lambda _m, inputs, _o: seen.update(x=inputs[0].shape))
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 224, 224)).shape == (1, 400)
    assert seen["x"] == (1, 128, 7, 1, 1)


def test_tiny_model_takes_small_clips() -> None:
    model = InceptionI3d(num_classes=5, width=0.125, dropout=0.0, in_channels=3).eval()
    assert model(torch.randn(2, 3, 4, 32, 32)).shape == (2, 5)


def test_width_multiplier_scales_channels() -> None:
    tiny = InceptionI3d(num_classes=5, width=0.125, dropout=0.0, in_channels=3)
    assert tiny.Conv3d_1a_7x7.conv3d.out_channels == 8
    assert tiny.Mixed_5c.out_channels == 128


def test_same_padding_matches_tensorflow() -> None:
    assert same_padding(224, 7, 2) == (2, 3)
    assert same_padding(32, 3, 1) == (1, 1)
    assert same_padding(8, 2, 2) == (0, 0)
    assert same_padding(7, 3, 2) == (1, 1)


@pytest.mark.parametrize("counters", [True, False], ids=["with-counters", "2018-file"])
def test_a_checkpoint_of_the_port_loads_unchanged(tmp_path: Path, counters: bool) -> None:
    state = port_checkpoint(tmp_path / "rgb_imagenet.pt", counters=counters)
    model = build_i3d(weights=tmp_path / "rgb_imagenet.pt")
    loaded = model.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


def test_another_number_of_classes_replaces_only_the_classifier(tmp_path: Path) -> None:
    state = port_checkpoint(tmp_path / "rgb_imagenet.pt", counters=True)
    torch.manual_seed(0)
    fresh = build_i3d(num_classes=7).state_dict()
    torch.manual_seed(0)
    model = build_i3d(num_classes=7, weights=tmp_path / "rgb_imagenet.pt")
    loaded = model.state_dict()
    assert loaded["logits.conv3d.weight"].shape == (7, 1024, 1, 1, 1)
    assert torch.equal(loaded["logits.conv3d.weight"], fresh["logits.conv3d.weight"])
    assert torch.equal(loaded["Mixed_5c.b3b.conv3d.weight"], state["Mixed_5c.b3b.conv3d.weight"])
    assert model(torch.randn(1, 3, 8, 64, 64)).shape == (1, 7)


def test_a_checkpoint_with_an_unexpected_key_is_refused_naming_it(tmp_path: Path) -> None:
    state = build_i3d(width=0.125).state_dict() | {"Mixed_3b.b4.conv3d.weight": torch.zeros(1)}
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(WeightsError, match=r"unexpected keys: Mixed_3b\.b4\.conv3d\.weight"):
        build_i3d(width=0.125, weights=tmp_path / "odd.pt")


def test_a_checkpoint_with_missing_or_reshaped_keys_is_refused_naming_them(
    tmp_path: Path,
) -> None:
    state = build_i3d(width=0.125).state_dict()
    del state["Mixed_4c.b2a.bn.weight"]
    state["Conv3d_1a_7x7.conv3d.weight"] = torch.zeros(9, 3, 7, 7, 7)
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(WeightsError) as caught:
        build_i3d(width=0.125, weights=tmp_path / "odd.pt")
    message = str(caught.value)
    assert "missing keys: Mixed_4c.b2a.bn.weight" in message
    assert "Conv3d_1a_7x7.conv3d.weight 9x3x7x7x7 vs the model's 8x3x7x7x7" in message
    assert "\n" not in message


def test_a_file_without_tensors_is_refused(tmp_path: Path) -> None:
    torch.save({"epoch": 3}, tmp_path / "meta.pt")
    with pytest.raises(WeightsError, match="holds no state dict"):
        build_i3d(width=0.125, weights=tmp_path / "meta.pt")


def test_skr_dense_checkpoint_loads(tmp_path: Path) -> None:
    dense = build_i3d(num_classes=5, width=0.125)
    save_state(tmp_path / "dense.pt", {"model": dense.state_dict(), "losses": [1.0, 0.5]})
    loaded = build_i3d(num_classes=5, width=0.125, weights=tmp_path / "dense.pt")
    for key, value in dense.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_pytorchvideo_model_state_loads_into_i3d_r50(tmp_path: Path) -> None:
    source = i3d_r50(num_classes=400, width=0.125, dropout=0.5, weights=None)
    torch.save({"model_state": source.state_dict(), "epoch": 196}, tmp_path / "I3D_8x8_R50.pyth")
    model = i3d_r50(num_classes=6, width=0.125, dropout=0.5, weights=tmp_path / "I3D_8x8_R50.pyth")
    assert model.blocks[6].proj.out_features == 6
    key = "blocks.1.res_blocks.0.branch2.conv_a.weight"
    assert torch.equal(model.state_dict()[key], source.state_dict()[key])


def test_config_weights_reach_the_built_model(make_cfg, tmp_path: Path) -> None:
    dense = build_i3d(num_classes=4, width=0.0625)
    save_state(tmp_path / "dense.pt", {"model": dense.state_dict()})
    cfg = make_cfg("model=i3d", "debug=smoke", f"model.weights={tmp_path / 'dense.pt'}")
    model = instantiate(cfg.model)
    assert torch.equal(model.Mixed_5c.b0.conv3d.weight, dense.Mixed_5c.b0.conv3d.weight)


def test_a_missing_weights_file_stops_validation_in_one_line(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("model=r3d_18", f"model.weights={tmp_path / 'nope.pt'}")
    with pytest.raises(UserError, match=r"^model\.weights=.*nope\.pt .*no such file"):
        validate(cfg)


def test_weights_that_do_not_fit_become_one_user_error(make_cfg, tmp_path: Path) -> None:
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    cfg = make_cfg("model=i3d_tiny", f"model.weights={tmp_path / 'other.pt'}")
    with pytest.raises(UserError, match=r"^model\.weights: .*unexpected keys: fc\.weight"):
        build_model(cfg.model)

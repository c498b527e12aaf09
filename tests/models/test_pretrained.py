"""torchvision-format state dicts load by name onto our modules.

The state dicts are built here from torchvision's published architectures
(module names and shapes written out independently of cnnlab's code); their
parameter totals are checked against torchvision's documented counts, so the
key lists are the real ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from safetensors.torch import save_file

from cnnlab.errors import CnnlabError
from cnnlab.models import create, load_pretrained, match_state_dict

Shapes = dict[str, tuple[int, ...]]


def conv(prefix: str, cin: int, cout: int, k: int, bias: bool = True) -> Shapes:
    out: Shapes = {f"{prefix}.weight": (cout, cin, k, k)}
    if bias:
        out[f"{prefix}.bias"] = (cout,)
    return out


def bn(prefix: str, c: int) -> Shapes:
    return {f"{prefix}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")} | {
        f"{prefix}.num_batches_tracked": ()
    }


def linear(prefix: str, fin: int, fout: int) -> Shapes:
    return {f"{prefix}.weight": (fout, fin), f"{prefix}.bias": (fout,)}


def tv_alexnet() -> Shapes:
    s: Shapes = {}
    for index, (cin, cout, k) in zip((0, 3, 6, 8, 10), [(3, 64, 11), (64, 192, 5), (192, 384, 3), (384, 256, 3), (256, 256, 3)]):
        s |= conv(f"features.{index}", cin, cout, k)
    return s | linear("classifier.1", 9216, 4096) | linear("classifier.4", 4096, 4096) | linear("classifier.6", 4096, 1000)


VGG = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


def tv_vgg(config: list[int | str], batch_norm: bool) -> Shapes:
    s: Shapes = {}
    index, cin = 0, 3
    for item in config:
        if item == "M":
            index += 1
            continue
        s |= conv(f"features.{index}", cin, int(item), 3)
        if batch_norm:
            s |= bn(f"features.{index + 1}", int(item))
        index += 3 if batch_norm else 2
        cin = int(item)
    return s | linear("classifier.0", 25088, 4096) | linear("classifier.3", 4096, 4096) | linear("classifier.6", 4096, 1000)


def tv_resnet(bottleneck: bool, layers: list[int]) -> Shapes:
    s = conv("conv1", 3, 64, 7, bias=False) | bn("bn1", 64)
    expansion = 4 if bottleneck else 1
    cin = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers), start=1):
        for block in range(blocks):
            p = f"layer{stage}.{block}"
            if bottleneck:
                s |= conv(f"{p}.conv1", cin, planes, 1, False) | bn(f"{p}.bn1", planes)
                s |= conv(f"{p}.conv2", planes, planes, 3, False) | bn(f"{p}.bn2", planes)
                s |= conv(f"{p}.conv3", planes, planes * 4, 1, False) | bn(f"{p}.bn3", planes * 4)
            else:
                s |= conv(f"{p}.conv1", cin, planes, 3, False) | bn(f"{p}.bn1", planes)
                s |= conv(f"{p}.conv2", planes, planes, 3, False) | bn(f"{p}.bn2", planes)
            if block == 0 and (stage > 1 or cin != planes * expansion):
                s |= conv(f"{p}.downsample.0", cin, planes * expansion, 1, False) | bn(f"{p}.downsample.1", planes * expansion)
            cin = planes * expansion
    return s | linear("fc", 512 * expansion, 1000)


def tv_densenet(growth: int, blocks: tuple[int, ...], init: int) -> Shapes:
    s = conv("features.conv0", 3, init, 7, False) | bn("features.norm0", init)
    c = init
    for b, n in enumerate(blocks, start=1):
        for i in range(1, n + 1):
            p = f"features.denseblock{b}.denselayer{i}"
            cin = c + (i - 1) * growth
            s |= bn(f"{p}.norm1", cin) | conv(f"{p}.conv1", cin, 4 * growth, 1, False)
            s |= bn(f"{p}.norm2", 4 * growth) | conv(f"{p}.conv2", 4 * growth, growth, 3, False)
        c += n * growth
        if b < len(blocks):
            s |= bn(f"features.transition{b}.norm", c) | conv(f"features.transition{b}.conv", c, c // 2, 1, False)
            c //= 2
    return s | bn("features.norm5", c) | linear("classifier", c, 1000)


def tv_googlenet(aux: bool) -> Shapes:
    def basic(p: str, cin: int, cout: int, k: int) -> Shapes:
        return conv(f"{p}.conv", cin, cout, k, False) | bn(f"{p}.bn", cout)

    s = basic("conv1", 3, 64, 7) | basic("conv2", 64, 64, 1) | basic("conv3", 64, 192, 3)
    modules = {
        "3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
        "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
        "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
        "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
        "5b": (832, 384, 192, 384, 48, 128, 128),
    }  # fmt: skip
    for name, (cin, c1, c3r, c3, c5r, c5, pp) in modules.items():
        p = f"inception{name}"
        s |= basic(f"{p}.branch1", cin, c1, 1)
        s |= basic(f"{p}.branch2.0", cin, c3r, 1) | basic(f"{p}.branch2.1", c3r, c3, 3)
        s |= basic(f"{p}.branch3.0", cin, c5r, 1) | basic(f"{p}.branch3.1", c5r, c5, 3)  # torchvision's 3x3
        s |= basic(f"{p}.branch4.1", cin, pp, 1)
    if aux:
        for name, cin in (("aux1", 512), ("aux2", 528)):
            s |= basic(f"{name}.conv", cin, 128, 1) | linear(f"{name}.fc1", 2048, 1024) | linear(f"{name}.fc2", 1024, 1000)
    return s | linear("fc", 1024, 1000)


def parameter_total(shapes: Shapes) -> int:
    return sum(
        torch.Size(shape).numel()
        for key, shape in shapes.items()
        if not key.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )


# (our name, torchvision state dict shapes, torchvision's documented parameter count)
CASES = [
    ("alexnet", tv_alexnet, 61_100_840),
    ("vgg11", lambda: tv_vgg(VGG["vgg11"], False), 132_863_336),
    ("vgg16", lambda: tv_vgg(VGG["vgg16"], False), 138_357_544),
    ("vgg16_bn", lambda: tv_vgg(VGG["vgg16"], True), 138_365_992),
    ("resnet18", lambda: tv_resnet(False, [2, 2, 2, 2]), 11_689_512),
    ("resnet34", lambda: tv_resnet(False, [3, 4, 6, 3]), 21_797_672),
    ("resnet50", lambda: tv_resnet(True, [3, 4, 6, 3]), 25_557_032),
    ("resnet101", lambda: tv_resnet(True, [3, 4, 23, 3]), 44_549_160),
    ("resnet152", lambda: tv_resnet(True, [3, 8, 36, 3]), 60_192_808),
    ("densenet121", lambda: tv_densenet(32, (6, 12, 24, 16), 64), 7_978_856),
    ("densenet161", lambda: tv_densenet(48, (6, 12, 36, 24), 96), 28_681_000),
    ("densenet169", lambda: tv_densenet(32, (6, 12, 32, 32), 64), 14_149_480),
    ("densenet201", lambda: tv_densenet(32, (6, 12, 48, 32), 64), 20_013_928),
    ("googlenet", lambda: tv_googlenet(False), 6_624_904),
]


def meta_state(shapes: Shapes) -> dict[str, torch.Tensor]:
    return {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}


@pytest.mark.parametrize(("name", "make", "documented"), CASES, ids=[c[0] for c in CASES])
def test_every_torchvision_tensor_lands_on_ours(name: str, make, documented: int) -> None:
    shapes = make()
    assert parameter_total(shapes) == documented  # the key list is torchvision's real one
    with torch.device("meta"):
        model = create(name, conv_bias=False) if name.startswith("resnet") else create(name)
    updates, report = match_state_dict(model, meta_state(shapes))
    assert report.skipped == [] and report.fresh == [] and report.zero_filled == []
    assert len(updates) == len(shapes)
    ours = model.state_dict()
    assert set(updates) == set(ours)  # nothing of ours left unfilled


def test_keras_style_resnet_gets_zero_conv_biases() -> None:
    shapes = tv_resnet(True, [3, 4, 6, 3])
    with torch.device("meta"):
        model = create("resnet50")
    updates, report = match_state_dict(model, meta_state(shapes))
    assert len(updates) == len(shapes)
    assert len(report.zero_filled) == 53  # 49 convs + 4 projection shortcuts
    assert all(key.endswith(".bias") for key in report.zero_filled)


def test_googlenet_aux_heads_load_or_are_skipped() -> None:
    shapes = tv_googlenet(True)
    assert parameter_total(shapes) == 13_004_888
    with torch.device("meta"):
        with_aux = create("googlenet", aux_logits=True)
        without = create("googlenet")
    updates, report = match_state_dict(with_aux, meta_state(shapes))
    assert len(updates) == len(shapes) and report.skipped == []
    updates, report = match_state_dict(without, meta_state(shapes))
    assert len(report.skipped) == len([k for k in shapes if k.startswith("aux")])


def random_state(shapes: Shapes) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        key: torch.randint(0, 100, shape, generator=generator)
        if key.endswith("num_batches_tracked")
        else torch.randn(shape, generator=generator)
        for key, shape in shapes.items()
    }


def _pairs(shapes: Shapes, ours: dict[str, torch.Tensor]) -> Iterator[tuple[str, str]]:
    for key in shapes:
        target = "head." + key if key.startswith(("fc.", "classifier")) else key
        if target not in ours:
            target = "features." + key
        yield key, target


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_values_round_trip_from_a_file(tmp_path, suffix: str) -> None:
    shapes = tv_resnet(False, [2, 2, 2, 2])
    state = random_state(shapes)
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        save_file(state, str(path))
    model = create("resnet18")
    report = load_pretrained(model, path)
    ours = model.state_dict()
    assert len(report.loaded) == len(shapes)
    for key, target in _pairs(shapes, ours):
        assert torch.equal(ours[target], state[key]), key
    assert all(torch.count_nonzero(ours[key]) == 0 for key in report.zero_filled)


def test_densenet_values_and_new_top_for_other_classes(tmp_path) -> None:
    shapes = tv_densenet(32, (6, 12, 24, 16), 64)
    state = random_state(shapes)
    # Old torchvision checkpoints spell 'norm.1' for 'norm1'; DDP adds 'module.'.
    old = {"module." + k.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2."): v for k, v in state.items()}
    path = tmp_path / "densenet121.pth"
    torch.save({"state_dict": old}, path)
    model = create("densenet121", num_classes=5)
    report = load_pretrained(model, path)
    assert sorted(report.skipped) == ["classifier.bias", "classifier.weight"]  # 1000 classes, not 5
    assert sorted(report.fresh) == ["head.classifier.bias", "head.classifier.weight"]
    ours = model.state_dict()
    for key, target in _pairs(shapes, ours):
        if not key.startswith("classifier"):
            assert torch.equal(ours[target], state[key]), key
    model.eval()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5)


def test_backbone_skips_the_top(tmp_path) -> None:
    shapes = tv_vgg(VGG["vgg11"], False)
    with torch.device("meta"):
        model = create("vgg11", include_top=False)
    updates, report = match_state_dict(model, meta_state(shapes))
    assert sorted(report.skipped) == sorted(k for k in shapes if k.startswith("classifier"))
    assert len(updates) == len(shapes) - 6


def test_missing_unexpected_and_mismatched_keys_are_listed() -> None:
    shapes = tv_resnet(False, [2, 2, 2, 2])
    del shapes["layer3.0.conv1.weight"]
    shapes["layer9.0.conv1.weight"] = (3, 3, 3, 3)
    shapes["conv1.weight"] = (64, 1, 7, 7)
    with torch.device("meta"):
        model = create("resnet18")
    with pytest.raises(CnnlabError) as caught:
        match_state_dict(model, meta_state(shapes), source="w.pth")
    message = str(caught.value)
    assert "w.pth" in message
    assert "1 unexpected keys in the file: layer9.0.conv1.weight" in message
    assert "features.layer3.0.conv1.weight" in message
    assert "conv1.weight (64, 1, 7, 7) -> features.conv1.weight (64, 3, 7, 7)" in message


def test_wrong_depth_is_refused() -> None:
    with torch.device("meta"):
        model = create("resnet34")
    with pytest.raises(CnnlabError, match="keys of resnet34 not in the file"):
        match_state_dict(model, meta_state(tv_resnet(False, [2, 2, 2, 2])))


def test_bad_files(tmp_path) -> None:
    model = create("resnet20")
    with pytest.raises(CnnlabError, match="no weights file"):
        load_pretrained(model, tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CnnlabError, match="cannot read it as a PyTorch state dict"):
        load_pretrained(model, junk)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 20)
    with pytest.raises(CnnlabError, match="cannot read safetensors"):
        load_pretrained(model, broken)
    with pytest.raises(CnnlabError, match="no torchvision counterpart"):
        path = tmp_path / "other.pth"
        torch.save({"x": torch.zeros(1)}, path)
        load_pretrained(model, path)


def test_cnnlab_saved_weights_load_as_is(tmp_path) -> None:
    source = create("resnet20", num_classes=4)
    path = tmp_path / "ours.safetensors"
    save_file(source.state_dict(), str(path))
    target = create("resnet20", num_classes=4)
    report = load_pretrained(target, path)
    assert len(report.loaded) == len(source.state_dict())
    x = torch.randn(2, 3, 32, 32)
    source.eval(), target.eval()
    torch.testing.assert_close(target(x), source(x))

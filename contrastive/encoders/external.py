"""Backbones from the ecosystem as encoders: any torchvision classification model or timm model by name, its
classifier removed, optionally starting from a local weight file (nothing is downloaded at run time)."""
from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn


def read_weights(path: str) -> dict[str, torch.Tensor]:
    """The state dict in a weight file: a plain state dict, or a checkpoint holding one under `state_dict`,
    `model` or `module` (a `module.` prefix from DataParallel/DDP dropped)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"encoder.weights={path} does not exist; give a state dict or checkpoint file "
                                "saved with torch.save (or a .safetensors file)")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        state: Any = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"encoder.weights={path} holds no state dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_backbone_weights(net: nn.Module, state: dict[str, torch.Tensor], head: str, path: str) -> None:
    """Load `state` into `net`; the classifier's weights (names starting with `head`) may be absent or extra,
    anything else that does not match is an error naming the keys."""
    def in_head(key: str) -> bool:
        return key == head or key.startswith(head + ".")

    own = net.state_dict()
    state = {k: v for k, v in state.items() if not in_head(k)}
    wrong = [f"{k} {list(v.shape)} (the model has {list(own[k].shape)})" for k, v in state.items()
             if k in own and v.shape != own[k].shape]
    missing = [k for k in own if k not in state and not in_head(k)]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected or wrong:
        raise ValueError(f"encoder.weights={path} does not fit this model: missing {missing[:5]}, unexpected "
                         f"{unexpected[:5]}, other shapes {wrong[:3]} (the weights of another architecture?)")
    net.load_state_dict(state, strict=False)


def _last_linear(net: nn.Module) -> tuple[str, nn.Linear]:
    """The name and module of the classifier: the last `nn.Linear` registered in `net`."""
    found = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ValueError(f"{type(net).__name__} has no linear classifier to remove")
    return found[-1]


def _set_module(net: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, leaf, module)


def _adapt_first_conv(net: nn.Module, in_channels: int) -> None:
    """Give the first convolution `in_channels` inputs; pretrained RGB filters are summed for one channel (a
    grayscale image seen as R = G = B gives the same response) and repeated cyclically otherwise."""
    name, conv = next((n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d))
    if conv.in_channels == in_channels:
        return
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    conv.groups, conv.bias is not None, conv.padding_mode)
    with torch.no_grad():
        w = conv.weight
        new.weight.copy_(w.sum(1, keepdim=True) if in_channels == 1 else
                         w[:, [c % w.shape[1] for c in range(in_channels)]] * w.shape[1] / in_channels)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    _set_module(net, name, new)


class TorchvisionEncoder(nn.Module):
    """A torchvision classification model by name (`resnet50`, `vit_b_16`, `convnext_tiny`, ...) without its
    classifier: `[B, C, H, W]` -> `[B, out_dim]`. `weights`: a local weight file, or a torchvision weights name
    (`IMAGENET1K_V2`, `ResNet50_Weights.IMAGENET1K_V2`) whose file is already in the torch hub cache."""

    def __init__(self, name: str, weights: str | None = None, in_channels: int = 3) -> None:
        super().__init__()
        import torchvision
        known = torchvision.models.list_models(module=torchvision.models)
        if name not in known:
            raise ValueError(f"encoder.name={name!r} is not a torchvision classification model; valid: "
                             f"{', '.join(known[:12])}, ... ({len(known)} in all)")
        net = torchvision.models.get_model(name, weights=None)
        head, linear = _last_linear(net)
        if weights:
            path = weights if _looks_like_file(weights) else _cached_torchvision_file(name, weights)
            load_backbone_weights(net, read_weights(path), head, path)
        _set_module(net, head, nn.Identity())
        _adapt_first_conv(net, in_channels)
        self.name, self.out_dim, self.net = name, linear.in_features, net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _looks_like_file(weights: str) -> bool:
    """A path (an existing file, a folder separator or a weight file's extension), not a weights name."""
    return os.path.isfile(weights) or os.sep in weights or weights.endswith((".pt", ".pth", ".bin", ".ckpt",
                                                                             ".safetensors"))


def _cached_torchvision_file(name: str, weights: str) -> str:
    """The torch hub cache file of torchvision weights `weights` for model `name`; an error if absent (the
    project never downloads)."""
    import torchvision
    try:
        enum = torchvision.models.get_model_weights(name)
        w = torchvision.models.get_weight(weights) if "." in weights else enum[weights]
    except (KeyError, ValueError, AttributeError):
        raise ValueError(f"encoder.weights={weights!r} is neither a file nor weights of {name}; valid names: "
                         f"{', '.join(e.name for e in torchvision.models.get_model_weights(name))}") from None
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(w.url))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"encoder.weights={weights}: {path} is not in the torch hub cache and nothing is "
                                "downloaded during a run; fetch it once where there is network (torchvision."
                                f"models.get_model({name!r}, weights={weights!r})) or pass a local file")
    return path


class TimmEncoder(nn.Module):
    """A timm model by name (`resnet18`, `vit_small_patch16_224`, ...) built with `num_classes=0`:
    `[B, C, H, W]` -> `[B, num_features]`; `weights`: a local weight file (its classifier may be in it)."""

    def __init__(self, name: str, weights: str | None = None, in_channels: int = 3, **kwargs: Any) -> None:
        super().__init__()
        try:
            import timm
        except ImportError:
            raise ImportError("encoder=timm needs timm: pip install timm") from None
        if not timm.is_model(name):
            raise ValueError(f"encoder.name={name!r} is not a timm model; list them with timm.list_models()")
        net = timm.create_model(name, pretrained=False, num_classes=0, in_chans=3, **kwargs)
        if weights:
            head = net.pretrained_cfg.get("classifier", "head")
            load_backbone_weights(net, read_weights(weights), head, weights)
        _adapt_first_conv(net, in_channels)
        self.name, self.out_dim, self.net = name, net.num_features, net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

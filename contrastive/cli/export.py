"""Use a trained encoder elsewhere: `load_encoder(RUN_DIR)` and `contrastive-export RUN_DIR OUT.pt`
(or `OUT.safetensors`); ResNet weights are written under torchvision's own parameter names, a text encoder's
tokenizer beside it (`load_tokenizer`)."""
from __future__ import annotations

import argparse
import json
import os
from typing import Any

import hydra
import torch
from omegaconf import OmegaConf
from torch import nn

from contrastive.cli.run_dir import Run, add_trust_option, opened
from contrastive.encoders import ResNet
from contrastive.encoders.external import TimmEncoder, TorchvisionEncoder
from contrastive.encoders.hf_text import HFTextEncoder
from contrastive.runtime.safe_config import load_run_config, trusting


def _part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def load_encoder(source: str | Run, checkpoint: str = "last.ckpt", with_projector: bool = False) -> nn.Module:
    """The trained encoder of an image run (a run directory, or a checkpoint file of one) in eval mode on the
    CPU; `with_projector=True`: `nn.Sequential(encoder, projector)`. Builds only what the run's config names
    (no code from the run directory runs)."""
    run = opened(source, checkpoint)
    cfg, run_dir = run.config, run.path
    if cfg.get("encoder") is None:
        raise ValueError(f"{run_dir} has no encoder (a word-vector run?): its vectors are in vectors.txt")
    state = run.state["state_dict"]
    # the checkpoint holds every weight: a starting weight file the config names is not read again
    encoder = hydra.utils.instantiate(cfg.encoder, **({"weights": None} if "weights" in cfg.encoder else {}))
    encoder.load_state_dict(_part(state, "encoder."))
    if not with_projector:
        return encoder.eval()
    if cfg.get("projector") is None:
        raise ValueError(f"{run_dir} has no projection head")
    head = _part(state, "projector.")
    in_dim = next(v.shape[1] for k, v in head.items() if k.endswith("weight") and v.dim() == 2)
    projector = hydra.utils.instantiate(cfg.projector, in_dim=in_dim)
    projector.load_state_dict(head)
    return nn.Sequential(encoder, projector).eval()


# encoders that wrap a library's model: the library, and the attribute holding the model
LIBRARY_MODELS = ((HFTextEncoder, "transformers", "model."), (TimmEncoder, "timm", "net."),
                  ((ResNet, TorchvisionEncoder), "torchvision", "net."))


def _library(encoder: nn.Module) -> tuple[str, str]:
    """(whose parameter names the exported weights carry, the prefix that leaves them): ("contrastive", "") for
    the project's own encoders."""
    return next(((lib, prefix) for kind, lib, prefix in LIBRARY_MODELS if isinstance(encoder, kind)),
                ("contrastive", ""))


def library_names(encoder: nn.Module) -> str:
    """Whose parameter names the exported weights carry: torchvision, timm, transformers or contrastive."""
    return _library(encoder)[0]


def export_state_dict(encoder: nn.Module) -> dict[str, torch.Tensor]:
    """The encoder's weights alone; a wrapped library model's under its library's names (`conv1.weight`,
    `layer1.0...`)."""
    state = {k: v for k, v in encoder.state_dict().items() if isinstance(v, torch.Tensor)}  # no extra state
    return {k: v.detach().contiguous() for k, v in _part(state, _library(encoder)[1]).items()}


def export_encoder(source: str, out: str, checkpoint: str = "last.ckpt") -> dict[str, str]:
    """Write the encoder of `source` to `out` (.pt: a plain state dict; .safetensors: with the encoder's config as
    metadata) and `<out>.json` (the config); returns the metadata."""
    if not out.endswith((".pt", ".pth", ".safetensors")):
        raise ValueError(f"{out}: the output must end in .pt, .pth or .safetensors")
    run = opened(source, checkpoint)
    encoder, cfg = load_encoder(run), run.config
    meta = {"encoder": json.dumps(dict(cfg.encoder)), "checkpoint": os.path.abspath(run.checkpoint),
            "names": library_names(encoder)}
    state = export_state_dict(encoder)
    if out.endswith(".safetensors"):
        from safetensors.torch import save_file
        save_file(state, out, metadata=meta)
    else:
        torch.save(state, out)
    if getattr(encoder, "brings_tokenizer", False):  # a Hugging Face model: its tokenizer, as tokenizers saves it
        meta["tokenizer"] = out + ".tokenizer.json"
        encoder.tokens.backend.save(meta["tokenizer"])
    elif cfg.get("data") is not None and hasattr(hydra.utils.get_class(cfg.data._target_), "pad"):
        meta["tokenizer"] = export_tokenizer(run, out)
    with open(out + ".json", "w") as f:
        json.dump(meta, f, indent=2)
    return meta


def export_tokenizer(run: Run, out: str) -> str:
    """Write a text run's tokenizer to `<out>.tokenizer.yaml` (the run's data options and a learned subword
    vocabulary): the encoder's weights take token ids, and only this file turns texts into the same ids."""
    dm = hydra.utils.instantiate(run.config.data)
    dm.load_state_dict(run.state.get(type(dm).__qualname__, {}))
    path = out + ".tokenizer.yaml"
    OmegaConf.save(OmegaConf.create({"data": run.config.data, "state": dm.state_dict()}), path)
    return path


def load_tokenizer(path: str) -> Any:
    """The tokenizer `contrastive-export` wrote beside a text encoder: `.batch(texts)` gives token-id lists
    (`load_tokenizer(p).batch(["a text"])`); builds only project classes, as `load_run_config`."""
    saved = load_run_config(path)
    dm = hydra.utils.instantiate(saved.data)
    dm.load_state_dict(OmegaConf.to_container(saved.state))
    return dm.tokenizer


def main() -> None:
    ap = argparse.ArgumentParser(description="Write a trained image encoder's weights alone (.pt or .safetensors)")
    ap.add_argument("run_dir", help="a run directory of contrastive-train, or one of its checkpoint files")
    ap.add_argument("out", help="OUT.pt or OUT.safetensors")
    ap.add_argument("--checkpoint", default="last.ckpt", help="which file in <run_dir>/checkpoints")
    add_trust_option(ap)
    a = ap.parse_args()
    with trusting(a.trust.split(",")):
        meta = export_encoder(a.run_dir, a.out, a.checkpoint)
    print(f"wrote {a.out} ({meta['names']} parameter names) and {a.out}.json")
    if "tokenizer" in meta:
        print(f"and its tokenizer {meta['tokenizer']} (contrastive.cli.export.load_tokenizer; to embed texts exactly "
              f"as the run does, use contrastive-embed {a.run_dir} TEXTS.txt OUT.npy)")


if __name__ == "__main__":
    main()

"""Contrastive objectives: pure functions first, thin nn.Module wrappers second."""
from contrastive.losses.info_nce import clip_loss, info_nce, nt_xent
from contrastive.losses.modules import ClipLoss, InfoNCE, NTXent, Temperature

__all__ = ["info_nce", "nt_xent", "clip_loss", "InfoNCE", "NTXent", "ClipLoss", "Temperature"]

"""Contrastive objectives: pure functions first, thin nn.Module wrappers second."""
from contrastive.losses.contrastive import ClipLoss, InfoNCE, NTXent, Temperature
from contrastive.losses.info_nce import clip_loss, info_nce, nt_xent
from contrastive.losses.nce import NCELoss, SampledSoftmaxLoss
from contrastive.losses.sampled import (
           compute_accidental_hits,
           nce_loss,
           sampled_softmax_loss,
)
from contrastive.losses.word2vec import FullSoftmaxLoss, NegativeSamplingLoss

__all__ = [
           "ClipLoss",
           "FullSoftmaxLoss",
           "InfoNCE",
           "NCELoss",
           "NTXent",
           "NegativeSamplingLoss",
           "SampledSoftmaxLoss",
           "Temperature",
           "clip_loss",
           "compute_accidental_hits",
           "info_nce",
           "nce_loss",
           "nt_xent",
           "sampled_softmax_loss",
]

"""Contrastive objectives: pure functions first, thin nn.Module wrappers second."""
from contrastive.losses.alignment import AlignUniform, align_uniform
from contrastive.losses.contrastive import ClipLoss, InfoNCE, NTXent, Temperature
from contrastive.losses.debiased import HCL, Debiased, debiased_nt_xent
from contrastive.losses.decoupled import DCL, DCLW, dcl
from contrastive.losses.info_nce import clip_loss, info_nce, nt_xent
from contrastive.losses.nce import NCELoss, SampledSoftmaxLoss
from contrastive.losses.sampled import (
           compute_accidental_hits,
           nce_loss,
           sampled_softmax_loss,
)
from contrastive.losses.sigmoid import SigmoidLoss, sigmoid_pairs
from contrastive.losses.supervised import SupCon, supcon
from contrastive.losses.word2vec import FullSoftmaxLoss, NegativeSamplingLoss

__all__ = [
           "DCL",
           "DCLW",
           "HCL",
           "AlignUniform",
           "ClipLoss",
           "Debiased",
           "FullSoftmaxLoss",
           "InfoNCE",
           "NCELoss",
           "NTXent",
           "NegativeSamplingLoss",
           "SampledSoftmaxLoss",
           "SigmoidLoss",
           "SupCon",
           "Temperature",
           "align_uniform",
           "clip_loss",
           "compute_accidental_hits",
           "dcl",
           "debiased_nt_xent",
           "info_nce",
           "nce_loss",
           "nt_xent",
           "sampled_softmax_loss",
           "sigmoid_pairs",
           "supcon",
]

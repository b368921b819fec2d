"""LightningModules: wiring of encoders, heads and objectives."""
from contrastive.models.optim import LARS, warmup_cosine
from contrastive.models.simclr import SimCLR

__all__ = ["SimCLR", "LARS", "warmup_cosine"]

"""LightningModules: wiring of encoders, heads, objectives and negative sources."""
from contrastive.models.base import ContrastiveModule
from contrastive.models.dual_encoder import DualEncoder
from contrastive.models.moco import MoCo
from contrastive.models.simclr import SimCLR
from contrastive.models.word2vec import Word2Vec

__all__ = ["ContrastiveModule", "DualEncoder", "MoCo", "SimCLR", "Word2Vec"]

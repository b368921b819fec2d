"""Encoders (backbones that map inputs to `[B, out_dim]`) and projection heads."""
from contrastive.encoders.cnn import DigitsCNN
from contrastive.encoders.heads import MLPHead
from contrastive.encoders.resnet import ResNet
from contrastive.encoders.text import BagOfTokens, TransformerText

__all__ = ["BagOfTokens", "DigitsCNN", "MLPHead", "ResNet", "TransformerText"]

"""Data modules: two augmented views per image for training, plain images for evaluation."""
from contrastive.data.cifar10 import Cifar10DataModule
from contrastive.data.digits import DigitsDataModule
from contrastive.data.image_folder import ImageFolderDataModule
from contrastive.data.skipgram import SkipGramDataModule
from contrastive.data.text_pairs import TextPairDataModule
from contrastive.data.transforms import SimCLRTransform

__all__ = ["Cifar10DataModule", "DigitsDataModule", "ImageFolderDataModule", "SimCLRTransform", "SkipGramDataModule", "TextPairDataModule"]

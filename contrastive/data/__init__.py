"""Data modules: two augmented views per image for training, plain images for evaluation."""
from contrastive.data.images.cifar10 import Cifar10DataModule
from contrastive.data.images.digits import DigitsDataModule
from contrastive.data.images.image_folder import ImageFolderDataModule
from contrastive.data.images.transforms import SimCLRTransform
from contrastive.data.text.skipgram import SkipGramDataModule
from contrastive.data.text.text_pairs import TextPairDataModule

__all__ = ["Cifar10DataModule", "DigitsDataModule", "ImageFolderDataModule", "SimCLRTransform", "SkipGramDataModule", "TextPairDataModule"]

"""Tasks: one class per kind of run (`task=image|word2vec|text_pairs`); each builds its objects from the config
and evaluates them."""
from contrastive.tasks.base import Task
from contrastive.tasks.image import ImageTask
from contrastive.tasks.text_pairs import TextPairsTask
from contrastive.tasks.word2vec import Word2VecTask

__all__ = ["ImageTask", "Task", "TextPairsTask", "Word2VecTask"]

"""Evaluation of frozen features: k-NN, low-label k-NN, reports."""
from contrastive.eval.knn import embed, knn_accuracy, low_label_knn

__all__ = ["embed", "knn_accuracy", "low_label_knn"]

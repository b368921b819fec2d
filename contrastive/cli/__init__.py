"""The entry points besides `contrastive-train`: `contrastive-eval`, `contrastive-export`, `contrastive-embed`."""

"""Text data modules: corpora, skip-gram pairs, text pairs and the hashing tokenizer."""

"""Word2vec outside Lightning: the compiled per-pair SGD step (`hogwild`) and word-vector pretraining for
text encoders (`pretrain`)."""

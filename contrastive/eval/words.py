"""Word-vector evaluation: human similarity judgements (Spearman), analogies, nearest neighbours, export."""
from __future__ import annotations

import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from contrastive.gensim_files import ANALOGIES, SIMLEX999, WORDSIM353, gensim_path


def read_pairs(path: str) -> list[tuple[str, str, float]]:
    """`word1<TAB>word2<TAB>score` lines (comments start with #)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.strip().split("\t")
            if len(parts) >= 3 and not line.startswith("#"):
                out.append((parts[0].lower(), parts[1].lower(), float(parts[2])))
    return out


def similarity_spearman(vectors: torch.Tensor, index: dict[str, int], path: str) -> tuple[float, float]:
    """Spearman correlation of cosine similarity with the human scores over the pairs in the vocabulary,
    and the fraction of pairs covered."""
    pairs = read_pairs(path)
    known = [(a, b, s) for a, b, s in pairs if a in index and b in index]
    if len(known) < 3:
        warnings.warn(f"{len(known)} of the {len(pairs)} word pairs of {os.path.basename(path)} are in the "
                      f"vocabulary ({len(index)} words): its Spearman correlation is not measured (null)")
        return float("nan"), len(known) / max(1, len(pairs))
    v = F.normalize(vectors.float(), dim=1)
    a = torch.tensor([index[x] for x, _, _ in known])
    b = torch.tensor([index[y] for _, y, _ in known])
    cos = (v[a] * v[b]).sum(1).numpy()
    return float(spearmanr(cos, [s for _, _, s in known]).statistic), len(known) / len(pairs)


def analogy_accuracy(vectors: torch.Tensor, index: dict[str, int], path: str, chunk: int = 1024) -> tuple[float, float]:
    """3CosAdd accuracy on `a b c d` questions whose four words are in the vocabulary (a, b, c excluded from
    the answers), and the fraction of questions covered."""
    questions, total = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(":"):
                continue
            words = line.lower().split()
            if len(words) == 4:
                total += 1
                if all(w in index for w in words):
                    questions.append([index[w] for w in words])
    if not questions:
        warnings.warn(f"none of the {total} analogy questions has its four words in the vocabulary "
                      f"({len(index)} words): accuracy not measured (null)")
        return float("nan"), 0.0
    q = torch.tensor(questions)
    v = F.normalize(vectors.float(), dim=1)
    correct = 0
    for part in q.split(chunk):
        target = F.normalize(v[part[:, 1]] - v[part[:, 0]] + v[part[:, 2]], dim=1)
        sims = target @ v.T
        sims.scatter_(1, part[:, :3], -2.0)
        correct += int((sims.argmax(1) == part[:, 3]).sum())
    return correct / len(questions), len(questions) / total


def write_word2vec(path: str, words: list[str], vectors: torch.Tensor) -> None:
    """Word2vec text format: a `<count> <dim>` header, then `word v1 v2 ...` per line (atomic write)."""
    tmp = path + ".tmp"
    arr = vectors.float().cpu().numpy()
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{len(words)} {arr.shape[1]}\n")
        f.writelines(w + " " + " ".join(f"{x:.6f}" for x in row) + "\n" for w, row in zip(words, arr))
    os.replace(tmp, path)


def word_metrics(vectors: torch.Tensor, words: list[str], prefix: str = "") -> dict[str, float]:
    """wordsim353 / simlex999 Spearman and analogy accuracy with the files shipped in gensim."""
    index = {w: i for i, w in enumerate(words)}
    ws, ws_cov = similarity_spearman(vectors, index, gensim_path(WORDSIM353))
    sl, sl_cov = similarity_spearman(vectors, index, gensim_path(SIMLEX999))
    acc, cov = analogy_accuracy(vectors, index, gensim_path(ANALOGIES))
    return {f"{prefix}wordsim353_spearman": ws, f"{prefix}wordsim353_coverage": ws_cov,
            f"{prefix}simlex999_spearman": sl, f"{prefix}simlex999_coverage": sl_cov,
            f"{prefix}analogy_accuracy": acc, f"{prefix}analogy_coverage": cov}


def nearest_table(vectors: torch.Tensor, words: list[str], queries: list[str], k: int = 5) -> dict[str, list[str]]:
    """The `k` nearest neighbours (cosine) of each query word in the vocabulary."""
    index = {w: i for i, w in enumerate(words)}
    v = F.normalize(vectors.float(), dim=1)
    out = {}
    for w in queries:
        if w in index:
            sims = v @ v[index[w]]
            sims[index[w]] = -2
            out[w] = [words[i] for i in sims.topk(k).indices.tolist()]
    return out


def gensim_baseline(sentences: list[list[str]], dim: int, window: int, min_count: int, negative: int,
                    epochs: int, sample: float, seed: int, workers: int = 2) -> tuple[torch.Tensor, list[str], float]:
    """gensim's skip-gram negative sampling on the same sentences: (vectors, words, raw corpus words per
    second of training; the vocabulary is built before the clock starts, as ours is)."""
    import time

    from gensim.models import Word2Vec as GensimWord2Vec
    # gensim truncates a sentence at 10,000 words; articles are longer, so feed them in pieces
    pieces = [s[i:i + 10_000] for s in sentences for i in range(0, len(s), 10_000)]
    m = GensimWord2Vec(vector_size=dim, window=window, min_count=min_count, sg=1, negative=negative,
                       epochs=epochs, sample=sample, seed=seed, workers=workers)
    m.build_vocab(pieces)
    t = time.perf_counter()
    m.train(pieces, total_examples=m.corpus_count, epochs=epochs)
    seconds = time.perf_counter() - t
    words = list(m.wv.index_to_key)
    return torch.from_numpy(np.array(m.wv.vectors)), words, sum(map(len, sentences)) * epochs / seconds

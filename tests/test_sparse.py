"""The sparse lexical block gives the numbers the dense `[lexical ; dense]` vectors give."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastive.encoders import BagOfTokens
from contrastive.losses import ClipLoss, InfoNCE
from contrastive.sparse import Hybrid, cat, cosine, cosine_matrix, from_tokens


def _rows(n: int, seed: int, vocab: int = 40, length: int = 7) -> Hybrid:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (n, length), generator=g)  # repeats and padding (0) included
    w = torch.rand(n, length, generator=g) * (ids != 0)
    return from_tokens(ids, w, torch.randn(n, 3, generator=g).requires_grad_(), vocab)


def test_from_tokens_sums_repeats_and_is_unit_length():
    ids = torch.tensor([[3, 5, 3, 0], [7, 0, 0, 0], [0, 0, 0, 0]])
    w = torch.tensor([[1.0, 2.0, 2.0, 0.0], [4.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    h = from_tokens(ids, w, torch.zeros(3, 2), 10)
    lex = h.to_dense()[:, :10]
    assert torch.allclose(lex[0, [3, 5]], torch.tensor([3.0, 2.0]) / 13 ** 0.5)
    assert lex[1, 7] == 1 and lex[2].abs().sum() == 0 and (lex != 0).sum() == 3
    assert h.ids.shape == (3, 2)  # distinct ids per row, padded to the longest row


def test_cosine_and_loss_gradients_equal_the_dense_vectors():
    q, k = _rows(5, 0), _rows(6, 1)
    qd, kd = q.to_dense(), k.to_dense()
    assert torch.allclose(cosine(q, k), F.normalize(qd, dim=1) @ F.normalize(kd, dim=1).T, atol=1e-6)
    ids = torch.tensor([0, 1, 0, 2, 3])
    for loss in (ClipLoss(0.1), InfoNCE(0.2)):
        a, b = _rows(5, 2), _rows(5, 3)
        extra = _rows(4, 4)
        got = loss(a, b, ids=ids, extra_negatives=extra)
        grads = torch.autograd.grad(got, [a.dense, b.dense, extra.dense])
        dense = [x.dense.detach().clone().requires_grad_() for x in (a, b, extra)]
        full = [torch.cat([x.to_dense()[:, :40], d], 1) for x, d in zip((a, b, extra), dense)]
        want = loss(full[0], full[1], ids=ids, extra_negatives=full[2])
        assert got.item() == pytest.approx(want.item(), abs=1e-6)
        for g, w in zip(grads, torch.autograd.grad(want, dense), strict=True):
            assert torch.allclose(g, w, atol=1e-6)


def test_cat_pads_rows_and_csr_is_the_lexical_block():
    scipy = pytest.importorskip("scipy.sparse")
    a, b = _rows(2, 5, length=3), _rows(3, 6, length=9)
    both = cat([a, b])
    assert torch.equal(both.to_dense(), torch.cat([a.to_dense(), b.to_dense()]))
    indptr, indices, data = both.csr()
    m = scipy.csr_matrix((data, indices, indptr), shape=(5, 40)).toarray()
    assert torch.allclose(torch.from_numpy(m), both.to_dense()[:, :40].detach())


def test_bag_of_tokens_lexical_output_is_hybrid_and_mixing_is_refused():
    enc = BagOfTokens(vocab_size=64, dim=4, out_dim=4, lexical=True)
    h = enc(torch.tensor([[1, 2, 2, 0], [5, 0, 0, 0]]))
    assert isinstance(h, Hybrid) and h.width == enc.out_dim == 68 and h.ids.shape == (2, 2)
    with pytest.raises(ValueError, match="in-batch negatives and hard negatives only"):
        InfoNCE(0.1)(h, h, negative_keys=torch.randn(3, 68))
    with pytest.raises(TypeError, match="hybrid .* plain tensor"):
        cosine_matrix(h, torch.randn(2, 68))
    with pytest.raises(ValueError, match="vocab_size 64 vs 40"):
        cosine(h, _rows(2, 0))


def test_learned_token_weights_get_the_gradients_the_dense_vectors_give():
    enc = BagOfTokens(vocab_size=40, dim=3, out_dim=3, idf=torch.rand(40) + 0.5, lexical=True, train_weights=True)
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randint(0, 40, (5, 7), generator=g) for _ in range(2))
    loss = ClipLoss(0.1)
    got = loss(enc(a), enc(b), ids=torch.tensor([0, 1, 0, 2, 3]))
    scale, = torch.autograd.grad(got, [enc.token_scale])
    assert scale.abs().sum() > 0 and (scale[torch.cat([a, b]).unique()] != 0).any()
    assert (scale[~torch.isin(torch.arange(40), torch.cat([a, b]))] == 0).all()  # unseen tokens get nothing

    def full(ids):
        h = enc(ids)
        return torch.cat([h.to_dense()[:, :40], h.dense], 1)
    want = loss(full(a), full(b), ids=torch.tensor([0, 1, 0, 2, 3]))
    assert got.item() == pytest.approx(want.item(), abs=1e-6)
    assert torch.allclose(scale, torch.autograd.grad(want, [enc.token_scale])[0], atol=1e-6)
    before = BagOfTokens(vocab_size=40, dim=3, out_dim=3, idf=enc.idf, lexical=True)
    before.load_state_dict({k: v for k, v in enc.state_dict().items() if k != "token_scale"})
    assert torch.allclose(cosine(before(a), before(b)), cosine(enc(a), enc(b)).detach(), atol=1e-6)  # scale 0: the IDF itself

"""Write tests/fixtures/tf_sampled.npz: TensorFlow's nce_loss / sampled_softmax_loss (values and gradients)
and its candidate samplers' expected counts, for the parity tests. Needs TensorFlow, which is not a project
dependency; run it in a throwaway venv:

    python3 -m venv tf-venv && tf-venv/bin/pip install tensorflow-cpu numpy
    tf-venv/bin/python scripts/make_tf_fixtures.py          # writes tests/fixtures/tf_sampled.npz
"""
from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "tf_sampled.npz")
rng = np.random.default_rng(1234)
arrays: dict[str, np.ndarray] = {}
meta: dict[str, dict] = {}


def sampler(kind: str, labels: np.ndarray, num_true: int, s: int, unique: bool, r: int, seed: int, **kw):
    t = tf.constant(labels, tf.int64)
    fn = {"log_uniform": tf.random.log_uniform_candidate_sampler, "uniform": tf.random.uniform_candidate_sampler,
          "learned_unigram": tf.random.learned_unigram_candidate_sampler,
          "fixed_unigram": tf.random.fixed_unigram_candidate_sampler}
    if kind == "all":
        out = tf.random.all_candidate_sampler(t, num_true, s, unique, seed=seed)
    else:
        out = fn[kind](t, num_true, s, unique, r, seed=seed, **kw)
    return tuple(np.asarray(o) for o in out)


def loss_case(name: str, *, b: int, d: int, c: int, t: int, s: int, remove: bool, sampled_values=None,
              shards: int = 1, shard_biases: bool = False, strategy: str = "mod", dtype=np.float32,
              sampler_kind: str = "log_uniform", unique: bool = True, sampler_kw: dict | None = None) -> None:
    x = rng.normal(size=(b, d)).astype(dtype)
    w = (0.5 * rng.normal(size=(c, d))).astype(dtype)
    bias = (0.1 * rng.normal(size=c)).astype(dtype)
    labels = np.stack([rng.choice(c, t, replace=False) for _ in range(b)]).astype(np.int64)
    if sampled_values is None:
        sampled_values = sampler(sampler_kind, labels, t, s, unique, c, seed=len(meta) + 1, **(sampler_kw or {}))
    sv = [np.asarray(v) for v in sampled_values]
    if dtype != np.float32:  # TF needs the counts in the inputs' dtype
        sv = [sv[0], sv[1].astype(dtype), sv[2].astype(dtype)]
    # logical matrix -> shards the way embedding_lookup expects them
    if shards == 1:
        w_parts = [w]
    elif strategy == "mod":
        w_parts = [w[p::shards] for p in range(shards)]
    else:
        w_parts = np.array_split(w, shards)
    b_parts = ([bias[p::shards] for p in range(shards)] if strategy == "mod" else np.array_split(bias, shards)) \
        if shard_biases else [bias]
    out = {}
    for kind, fn in (("nce", tf.compat.v1.nn.nce_loss), ("ssm", tf.compat.v1.nn.sampled_softmax_loss)):
        xv = tf.Variable(x)
        wv = [tf.Variable(p) for p in w_parts]
        bv = [tf.Variable(p) for p in b_parts]
        with tf.GradientTape() as tape:
            loss = fn(weights=wv if shards > 1 else wv[0], biases=bv if shard_biases else bv[0],
                      labels=tf.constant(labels), inputs=xv, num_sampled=len(sv[0]), num_classes=c,
                      num_true=t, sampled_values=tuple(tf.constant(v) for v in sv),
                      remove_accidental_hits=remove, partition_strategy=strategy)
            mean = tf.reduce_mean(loss)
        grads = tape.gradient(mean, [xv] + wv + bv)
        dense = [np.asarray(tf.convert_to_tensor(g)) for g in grads]
        out[kind] = (np.asarray(loss), dense)
    for i, p in enumerate(w_parts):
        arrays[f"{name}/w{i}"] = p
    for i, p in enumerate(b_parts):
        arrays[f"{name}/b{i}"] = p
    arrays.update({f"{name}/x": x, f"{name}/labels": labels, f"{name}/sampled": sv[0],
                   f"{name}/true_expected": sv[1], f"{name}/sampled_expected": sv[2]})
    for kind, (loss, dense) in out.items():
        arrays[f"{name}/{kind}_loss"] = loss
        arrays[f"{name}/{kind}_dx"] = dense[0]
        for i in range(len(w_parts)):
            arrays[f"{name}/{kind}_dw{i}"] = dense[1 + i]
        for i in range(len(b_parts)):
            arrays[f"{name}/{kind}_db{i}"] = dense[1 + len(w_parts) + i]
    meta[name] = {"kind": "loss", "num_true": t, "num_classes": c, "remove": remove, "shards": shards,
                      "bias_shards": len(b_parts), "strategy": strategy}


def count_case(name: str, kind: str, labels: np.ndarray, s: int, unique: bool, r: int, seed: int, **kw) -> None:
    """Sampler outputs plus num_tries, recovered from the non-unique stream of the same seed."""
    t = labels.shape[1]
    sampled, qt, qs = sampler(kind, labels, t, s, unique, r, seed, **kw)
    num_tries = s
    if unique and kind != "all":
        stream = sampler(kind, labels, t, 64 * s, False, r, seed, **kw)[0]
        _, first = np.unique(stream, return_index=True)
        order = np.sort(first)
        if len(order) >= s and np.array_equal(stream[order[:s]], sampled):
            num_tries = int(order[s - 1]) + 1
        else:
            num_tries = -1  # could not recover; the test then checks only the no-rejection shortcut
    arrays.update({f"{name}/labels": labels, f"{name}/sampled": sampled, f"{name}/true_expected": qt,
                   f"{name}/sampled_expected": qs})
    meta[name] = dict(kind="counts", sampler=kind, num_sampled=s, unique=unique, range_max=r,
                      num_tries=num_tries, **{k: v for k, v in kw.items() if k != "vocab_file"})


# ---- loss cases (values and gradients of the mean loss)
loss_case("t1_basic", b=5, d=4, c=10, t=1, s=4, remove=False)
loss_case("t1_removed", b=6, d=4, c=8, t=1, s=5, remove=True)
loss_case("t3_removed", b=4, d=5, c=12, t=3, s=6, remove=True)
hits = (np.array([5, 3, 5, 9, 5]), np.full((3, 2), 0.3, np.float32), np.array([.2, .4, .2, .1, .2], np.float32))
loss_case("dup_hits", b=3, d=4, c=10, t=2, s=5, remove=True, sampled_values=hits)
loss_case("dup_no_removal", b=3, d=4, c=10, t=2, s=5, remove=False, sampled_values=hits)
loss_case("nonunique", b=6, d=3, c=6, t=1, s=8, remove=True, unique=False)
loss_case("mod_shards", b=5, d=4, c=53, t=2, s=7, remove=True, shards=3, shard_biases=True, strategy="mod")
loss_case("div_shards", b=5, d=4, c=53, t=1, s=7, remove=True, shards=3, shard_biases=False, strategy="div")
loss_case("div_shards_biases", b=4, d=3, c=17, t=1, s=5, remove=False, shards=4, shard_biases=True, strategy="div")
loss_case("fixed_unigram", b=6, d=4, c=9, t=1, s=4, remove=True, sampler_kind="fixed_unigram",
          sampler_kw={"unigrams": [9.0, 7, 5, 4, 3, 2, 2, 1, 1], "distortion": 0.75})
loss_case("uniform_t2", b=5, d=4, c=15, t=2, s=6, remove=True, sampler_kind="uniform")
loss_case("all_candidate", b=4, d=4, c=7, t=1, s=7, remove=True, sampler_kind="all")
loss_case("float64", b=5, d=4, c=11, t=1, s=4, remove=True, dtype=np.float64)
loss_case("large_20k", b=8, d=3, c=20000, t=1, s=64, remove=True)

# ---- expected-count cases for every sampler
lab = np.array([[0], [3], [7], [1]], np.int64)
for i, (s, u) in enumerate([(5, False), (5, True), (9, True)]):
    count_case(f"cnt_logu_{i}", "log_uniform", lab, s, u, 10, seed=11 + i)
count_case("cnt_logu_big", "log_uniform", np.array([[0, 5], [17, 99999]], np.int64), 50, True, 100000, seed=5)
count_case("cnt_logu_r2", "log_uniform", np.array([[0], [1]], np.int64), 2, True, 2, seed=3)
count_case("cnt_uniform", "uniform", np.array([[0], [3], [6], [1]], np.int64), 3, False, 7, seed=2)
count_case("cnt_uniform_u", "uniform", lab, 6, True, 8, seed=4)
uni = [5.0, 0.0, 3.0, 1.0, 8.0, 2.0, 2.0, 1.0]
for i, (dist, res, ns, sh) in enumerate([(1.0, 0, 1, 0), (0.75, 0, 1, 0), (0.0, 2, 1, 0), (0.5, 1, 2, 1)]):
    r = len([v for v in range(res + len(uni)) if v % ns == sh])
    count_case(f"cnt_unigram_{i}", "fixed_unigram", np.array([[0], [r - 1]], np.int64), 3, False, r, seed=7 + i,
               unigrams=uni, distortion=dist, num_reserved_ids=res, num_shards=ns, shard=sh)
count_case("cnt_unigram_u", "fixed_unigram", np.array([[2], [4]], np.int64), 4, True, 8, seed=9,
           unigrams=uni, distortion=0.75)
count_case("cnt_all", "all", np.array([[1], [2]], np.int64), 6, True, 6, seed=1)
# learned unigram: three eager calls on one kernel, state carried between them (R=8, S=3, labels [2,2,5])
ll = np.array([[2], [2], [5]], np.int64)
for k in range(3):
    sampled, qt, qs = sampler("learned_unigram", ll, 1, 3, False, 8, seed=21)
    arrays.update({f"cnt_learned_{k}/labels": ll, f"cnt_learned_{k}/sampled": sampled,
                   f"cnt_learned_{k}/true_expected": qt, f"cnt_learned_{k}/sampled_expected": qs})
    meta[f"cnt_learned_{k}"] = {"kind": "learned", "call": k, "num_sampled": 3, "unique": False, "range_max": 8}

arrays["meta"] = np.array(json.dumps(meta))
arrays["tf_version"] = np.array(tf.__version__)
os.makedirs(os.path.dirname(OUT), exist_ok=True)
np.savez_compressed(OUT, **arrays)
print(f"wrote {OUT}: {len(meta)} cases, {os.path.getsize(OUT) / 1024:.0f} KiB, TF {tf.__version__}")

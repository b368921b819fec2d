"""Milliseconds per training step of TensorFlow's tf.nn.nce_loss (forward, backward, SGD); TensorFlow only,
called by bench_sampled_losses.py in its own process (TF and torch in one process can crash).

    python scripts/tf_nce_step.py VOCAB BATCH DIM SAMPLES REPEATS
"""
import sys
import time

import tensorflow as tf

vocab, batch, dim, samples, repeats = map(int, sys.argv[1:6])
w = tf.Variable(tf.random.normal([vocab, dim]) / dim ** 0.5)
b = tf.Variable(tf.zeros([vocab]))
x = tf.random.normal([batch, dim])
y = tf.random.uniform([batch, 1], 0, vocab, dtype=tf.int64)
opt = tf.keras.optimizers.SGD(0.1)


@tf.function
def step():
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.nn.nce_loss(w, b, y, x, samples, vocab))
    opt.apply_gradients(zip(tape.gradient(loss, [w, b]), [w, b]))


for _ in range(10):
    step()
t = time.perf_counter()
for _ in range(repeats):
    step()
print(f"{1000 * (time.perf_counter() - t) / repeats:.3f}")

"""Synthetic Horovod training loop: the entry script bench_horovod.py starts under each launcher.

A small conv net on random 28x28 images, one fixed batch per rank, a Horovod DistributedGradientTape
(allreduce of every gradient each step): the shape of Horovod's own synthetic benchmark, scaled to
a 2-core machine. Throughput is measured inside the script, between two barriers after the warm-up
steps, so interpreter start-up, TensorFlow's import, graph tracing and the launch itself don't
count: a launcher can only change this number through how it places and connects the ranks, which
is exactly what bench_horovod.py compares.

Rank 0 prints `HVD_SIZE n`, `STEP_MS ms` and last `THROUGHPUT samples_per_s` (all ranks' samples).
Usage: python _horovod_synthetic.py [--batch-size 64] [--warmup-steps 10] [--steps 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import horovod.tensorflow as hvd
import tensorflow as tf


def parse_args() -> argparse.Namespace:
    """Defaults keep a 2-rank run on a shared 2-core machine to a few seconds of stepping."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=64, help="samples per rank per step")
    p.add_argument("--warmup-steps", type=int, default=10, help="untimed steps (tracing, first allreduces)")
    p.add_argument("--steps", type=int, default=200, help="timed steps")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="TensorFlow intra- and inter-op threads per rank: 1 keeps 2 ranks on 2 cores from "
        "oversubscribing, which would turn the number into a measure of scheduler noise",
    )
    return p.parse_args()


def build_model() -> tf.keras.Model:
    """~110k parameters: enough compute per step that the allreduce is not all there is."""
    layers = tf.keras.layers
    return tf.keras.Sequential(
        [
            tf.keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(10),
        ]
    )


def barrier() -> None:
    """An allreduce of a scalar, waited for: every rank has reached this point when it returns."""
    hvd.allreduce(tf.constant(0.0)).numpy()


def main() -> None:
    """Warm up, then time `steps` steps between two barriers; rank 0 reports."""
    args = parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    hvd.init()
    model = build_model()
    optimizer = tf.keras.optimizers.SGD(0.01)
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    x = tf.random.uniform([args.batch_size, 28, 28, 1])
    y = tf.random.uniform([args.batch_size], maxval=10, dtype=tf.int64)

    @tf.function
    def train_step(first: bool) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        tape = hvd.DistributedGradientTape(tape)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        if first:  # after the first step, so that the variables exist (Horovod's own pattern)
            hvd.broadcast_variables(model.variables, root_rank=0)
        return loss

    for i in range(max(args.warmup_steps, 1)):
        train_step(i == 0).numpy()
    barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = train_step(False)
    loss.numpy()
    barrier()
    elapsed = time.perf_counter() - start
    if hvd.rank() == 0:
        print(f"HVD_SIZE {hvd.size()}")
        print(f"STEP_MS {elapsed / args.steps * 1000:.3f}")
        print(f"THROUGHPUT {args.batch_size * hvd.size() * args.steps / elapsed:.2f}", flush=True)


if __name__ == "__main__":
    main()

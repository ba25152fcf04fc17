"""The parameter-server example made repeatable: the same seed gives the same final loss, wherever the tasks run.

ParameterServerStrategy's workers update the variables asynchronously, so `model.fit` over two workers is not
repeatable. Here the chief (coordinator) schedules one step at a time with its own batch and waits for it: which
worker runs a step no longer changes the result. It shows that per-role placement (roles:) changes where the
tasks run and nothing of what they compute: run it with and without roles and compare outputs/metrics.json.
"""

import argparse
import json
import os

import numpy as np
from sklearn.datasets import load_digits

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    tf.random.set_seed(args.seed)
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    strategy = tf.distribute.ParameterServerStrategy(resolver)
    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype("float32"), y.astype("int64")
    order = np.random.RandomState(args.seed).permutation(len(x))
    with strategy.scope():
        model = tf.keras.Sequential(
            [
                tf.keras.Input(shape=(64,)),
                tf.keras.layers.Dense(64, "relu", kernel_initializer=tf.keras.initializers.GlorotUniform(args.seed)),
                tf.keras.layers.Dense(10, kernel_initializer=tf.keras.initializers.GlorotUniform(args.seed + 1)),
            ]
        )
        optimizer = tf.keras.optimizers.SGD(0.1)
        optimizer.build(model.trainable_variables)
    per_example = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

    def loss_fn(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(per_example(labels, logits))

    @tf.function
    def train_step(bx: tf.Tensor, by: tf.Tensor) -> tf.Tensor:
        def replica(bx: tf.Tensor, by: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = loss_fn(by, model(bx, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        return strategy.run(replica, args=(bx, by))

    for step in range(args.steps):
        start = (step * args.batch) % (len(x) - args.batch)
        batch = order[start : start + args.batch]
        coordinator.schedule(train_step, args=(tf.constant(x[batch]), tf.constant(y[batch])))
        coordinator.join()  # one step at a time: the next batch sees this step's update, whichever worker ran it
    logits = model(x, training=False)
    loss = float(loss_fn(y, logits))
    accuracy = float(np.mean(np.argmax(logits.numpy(), axis=1) == y))
    print(f"final loss {loss!r} accuracy {accuracy!r}")
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/metrics.json", "w") as f:
        json.dump({"loss": loss, "accuracy": accuracy, "cluster": resolver.cluster_spec().as_dict()}, f)


if __name__ == "__main__":
    main()

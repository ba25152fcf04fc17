"""ParameterServerStrategy + ClusterCoordinator custom loop (runs on the chief).

--steps N training steps; --slow S seconds of sleep per scheduled step (so a test can act mid-run);
writes outputs/started after the first step and outputs/ps.json at the end.
"""

import argparse
import json
import os
import time

import numpy as np
import tensorflow as tf

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--slow", type=float, default=0.0)
args = parser.parse_args()

resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
strategy = tf.distribute.ParameterServerStrategy(resolver)
coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
with strategy.scope():
    w = tf.Variable(tf.zeros((4, 1)))
    b = tf.Variable(0.0)


def dataset_fn():
    x = np.random.default_rng(0).random((256, 4)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, x.sum(axis=1, keepdims=True))).repeat().batch(16)


iterator = iter(coordinator.create_per_worker_dataset(dataset_fn))


@tf.function
def step(it):
    def replica_fn(batch):
        x, y = batch
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((tf.matmul(x, w) + b - y) ** 2)
        gw, gb = tape.gradient(loss, [w, b])
        w.assign_sub(0.05 * gw)
        b.assign_sub(0.05 * gb)
        return loss

    return strategy.run(replica_fn, args=(next(it),))


os.makedirs("outputs", exist_ok=True)
results = []
for i in range(args.steps):
    results.append(coordinator.schedule(step, args=(iterator,)))
    if i == 0:
        results[0].fetch()
        open("outputs/started", "w").close()
    if args.slow:
        time.sleep(args.slow)
coordinator.join()
loss = float(results[-1].fetch())
print(f"ps training done: {len(results)} steps, last loss {loss:.4f}", flush=True)
with open("outputs/ps.json", "w") as f:
    json.dump({"loss": loss, "steps": len(results), "tf_config": json.loads(os.environ["TF_CONFIG"])}, f)

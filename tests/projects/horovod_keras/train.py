"""Horovod's Keras API as its published examples use it: DistributedOptimizer, the broadcast and
metric-averaging callbacks (which import `keras` directly), and `model.fit` with a metric."""

import json
import os

os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # like the examples' --no-cuda

import horovod.tensorflow.keras as hvd
import numpy as np
import tensorflow as tf

hvd.init()
x = np.random.default_rng(hvd.rank()).random((64, 4)).astype("float32")
y = (x.sum(axis=1) > 2).astype("int64")
model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])
model.compile(
    optimizer=hvd.DistributedOptimizer(tf.optimizers.SGD(0.01)),
    loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
    experimental_run_tf_function=False,
)
callbacks = [hvd.callbacks.BroadcastGlobalVariablesCallback(0), hvd.callbacks.MetricAverageCallback()]
hist = model.fit(x, y, batch_size=16, epochs=2, callbacks=callbacks, verbose=0)
os.makedirs("outputs", exist_ok=True)
with open(f"outputs/keras-{hvd.rank()}.json", "w") as f:
    json.dump({"rank": hvd.rank(), "size": hvd.size(), "accuracy": [float(a) for a in hist.history["accuracy"]]}, f)
print(f"rank {hvd.rank()}/{hvd.size()} accuracy {hist.history['accuracy'][-1]:.3f}", flush=True)

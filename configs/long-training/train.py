"""A Keras classifier on scikit-learn's digits whose training outlives its time limit (configs/long-training.yaml).

`hpc_tf.keras.Checkpointing` restores the newest complete save at the start of fit (none on the first attempt),
saves at the end of every epoch, and, when hpc_tf asks (Slurm's warning signal came), saves at the batch it is at and
ends the script with exit code 75: hpc_tf requeues the run and the next attempt goes on from that save. Outside
hpc_tf it checkpoints into ./checkpoints and never stops early.
"""

import argparse
import json
import os
import time

from sklearn.datasets import load_digits

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

import hpc_tf.checkpoint
from hpc_tf.keras import Checkpointing, MetricsLogger


class BatchDelay(tf.keras.callbacks.Callback):
    """Seconds of sleep after every batch: a small model that trains as long as a big one."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, batch, logs=None):
        time.sleep(self.seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batch-delay", type=float, default=0.0)
    args = parser.parse_args()

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    tf.random.set_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(64,)),
            tf.keras.layers.Dense(64, activation="relu"),
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print(f"attempt {hpc_tf.checkpoint.restart_count()}", flush=True)
    history = model.fit(
        x,
        y,
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=2,
        callbacks=[Checkpointing(), MetricsLogger(), BatchDelay(args.batch_delay)],
    )
    os.makedirs("outputs", exist_ok=True)
    model.save_weights("outputs/final.weights.h5")
    with open("outputs/metrics.json", "w") as f:
        json.dump(
            {
                "epochs": args.epochs,
                "last_epoch": history.epoch[-1] if history.epoch else None,
                "accuracy": float(history.history["accuracy"][-1]) if history.epoch else None,
                "attempts": hpc_tf.checkpoint.restart_count() + 1,
            },
            f,
        )


if __name__ == "__main__":
    main()

"""MultiWorkerMirroredStrategy: every worker runs this script with its TF_CONFIG; worker 0 is the chief."""

import json
import os

from sklearn.datasets import load_digits

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf


def main() -> None:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    with strategy.scope():
        model = tf.keras.Sequential(
            [
                tf.keras.Input(shape=(64,)),
                tf.keras.layers.Dense(64, activation="relu"),
                tf.keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(
            optimizer=tf.keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
    history = model.fit(x, y, batch_size=64, epochs=3, verbose=2)
    task = json.loads(os.environ["TF_CONFIG"])["task"]
    if task["index"] == 0:
        os.makedirs("outputs", exist_ok=True)
        with open("outputs/metrics.json", "w") as f:
            json.dump({"workers": strategy.num_replicas_in_sync, "accuracy": float(history.history["accuracy"][-1])}, f)


if __name__ == "__main__":
    main()

"""Train a small Keras classifier on scikit-learn's bundled digits (no download needed).

The seed example's script parameters: --batch-size and --learning-rate.
Logs every epoch's metrics with hpc_tf's Keras callback (`python -m hpc_tf metrics RUN`) and writes
the final ones to ./outputs/metrics.json (gathered into the run directory).
"""

import argparse
import json
import os

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

import hpc_tf
from hpc_tf.keras import MetricsLogger


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    tf.random.set_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(64,)),
            tf.keras.layers.Dense(64, activation="relu"),
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=tf.keras.optimizers.Adam(args.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=2,
        validation_data=(x_test, y_test),
        callbacks=[MetricsLogger()],
    )  # epoch metrics → hpc_tf
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    hpc_tf.log("test_accuracy", accuracy)
    print(f"test accuracy: {accuracy:.3f}")
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/metrics.json", "w") as f:
        json.dump(
            {
                "loss": float(loss),
                "accuracy": float(accuracy),
                "batch_size": args.batch_size,
                "learning_rate": args.learning_rate,
            },
            f,
        )


if __name__ == "__main__":
    main()

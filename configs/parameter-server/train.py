"""Parameter servers (TF2 ParameterServerStrategy): this script runs on the chief (coordinator).

hpc_tf computes TF_CONFIG for every task and, in the default `ps_mode: managed`, runs the ps and
worker TensorFlow servers itself and stops them when this script ends, so the job ends with this
script's exit code.
"""

import json
import os

from sklearn.datasets import load_digits

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf


def main() -> None:
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    strategy = tf.distribute.ParameterServerStrategy(resolver)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")

    def dataset_fn(input_context):
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(2000).repeat()
        return ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id).batch(50)

    with strategy.scope():
        model = tf.keras.Sequential(
            [
                tf.keras.Input(shape=(64,)),
                tf.keras.layers.Dense(64, activation="relu"),
                tf.keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(
            optimizer=tf.keras.optimizers.Adam(0.01),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            steps_per_execution=5,
        )
    history = model.fit(tf.keras.utils.experimental.DatasetCreator(dataset_fn), epochs=3, steps_per_epoch=20, verbose=2)
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/metrics.json", "w") as f:
        json.dump({"loss": float(history.history["loss"][-1]), "cluster": resolver.cluster_spec().as_dict()}, f)


if __name__ == "__main__":
    main()

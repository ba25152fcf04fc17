"""In-job: the TensorFlow server of a 'ps' or 'worker' task in managed 'ps' mode.

It serves until hpc_tf's runtime stops it (when the chief has ended); it reads its cluster and
its own task from TF_CONFIG, which the runtime computed for this task.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    config = json.loads(os.environ["TF_CONFIG"])
    task = config["task"]
    import tensorflow as tf

    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    server = tf.distribute.Server(
        resolver.cluster_spec(),
        job_name=task["type"],
        task_index=task["index"],
        protocol=resolver.rpc_layer or "grpc",
        start=True,
    )
    print(f"hpc_tf: {task['type']} {task['index']} serving at {server.target}", flush=True)
    server.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())

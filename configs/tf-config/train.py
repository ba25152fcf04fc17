"""The seed's pattern: a script that reads TF_CONFIG and builds its own tf.train.ClusterSpec.

With `ps_mode: script` hpc_tf runs this script on every task, each with its own TF_CONFIG.
"""

import json
import os

import tensorflow as tf

tf_config = os.environ.get("TF_CONFIG")
if not tf_config or tf_config == "":
    raise ValueError("TF_CONFIG not found.")
tf_config_json = json.loads(tf_config)
cluster = tf_config_json.get("cluster")
cluster_spec = tf.train.ClusterSpec(cluster)
task = tf_config_json["task"]
print(f"{task['type']} {task['index']} of {cluster_spec.as_dict()}", flush=True)
os.makedirs("outputs", exist_ok=True)
with open(f"outputs/{task['type']}-{task['index']}.json", "w") as f:
    json.dump({"task": task, "cluster": cluster_spec.as_dict(), "jobs": sorted(cluster_spec.jobs)}, f)

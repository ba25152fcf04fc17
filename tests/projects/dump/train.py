import json
import os
import socket

os.makedirs("outputs", exist_ok=True)
r = os.environ["HPC_TF_RANK"]
json.dump(
    {
        "tf_config": json.loads(os.environ.get("TF_CONFIG", "null")),
        "host": socket.gethostname(),
        "cvd": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "legacy": os.environ.get("TF_USE_LEGACY_KERAS"),
    },
    open(f"outputs/rank-{r}.json", "w"),
)

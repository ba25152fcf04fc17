import json
import os
import socket

import horovod.tensorflow.keras as hvd
import numpy as np
import tensorflow as tf
from mpi4py import MPI  # MPI itself, beside Horovod: the ranks must agree

hvd.init()
mpi_rank, mpi_size = MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()
mpi_sum = MPI.COMM_WORLD.allreduce(mpi_rank + 1)
total = hvd.allreduce(tf.constant(float(hvd.rank() + 1)), op=hvd.Sum).numpy()
x = np.random.default_rng(hvd.rank()).random((64, 4)).astype("float32")
y = x.sum(axis=1, keepdims=True)
model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(1)])
model.compile(optimizer=hvd.DistributedOptimizer(tf.keras.optimizers.SGD(0.01 * hvd.size())), loss="mse")
hist = model.fit(
    x,
    y,
    batch_size=16,
    epochs=2,
    verbose=2 if hvd.rank() == 0 else 0,
    callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0)],
)
os.makedirs("outputs", exist_ok=True)
with open(f"outputs/hvd-{hvd.rank()}.json", "w") as f:
    json.dump(
        {
            "rank": hvd.rank(),
            "size": hvd.size(),
            "local_rank": hvd.local_rank(),
            "local_size": hvd.local_size(),
            "allreduce": float(total),
            "mpi_rank": mpi_rank,
            "mpi_size": mpi_size,
            "mpi_allreduce": mpi_sum,
            "loss": float(hist.history["loss"][-1]),
            "host": socket.gethostname(),
            "slurm_procid": os.environ.get("SLURM_PROCID"),
            "slurm_localid": os.environ.get("SLURM_LOCALID"),
            "ompi_rank": os.environ.get("OMPI_COMM_WORLD_RANK"),
            "fusion_threshold": os.environ.get("HOROVOD_FUSION_THRESHOLD"),
        },
        f,
    )
print(f"rank {hvd.rank()}/{hvd.size()} done, loss {hist.history['loss'][-1]:.4f}", flush=True)

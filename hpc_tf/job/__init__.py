"""The in-job side: what runs inside a job on every task (`python -m hpc_tf.job RUN_DIR`).

It reads its place in the job from the launcher's environment (`context`), sets up the task (role,
TF_CONFIG, GPUs, packages), runs the entry script under supervision (`supervise`) and records what
happened (`runtime`, with the pure decisions of `core.lifecycle`). It never imports TensorFlow, and
nothing on the submit side imports it.
"""

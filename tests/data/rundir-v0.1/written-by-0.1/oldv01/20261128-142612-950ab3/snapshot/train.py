import os, sys
import hpc_tf
hpc_tf.log("loss", 0.5, step=0)
hpc_tf.log("loss", 0.25, step=1)
print("argv", sys.argv[1:], flush=True)
os.makedirs("outputs", exist_ok=True)
open("outputs/model.txt", "w").write("weights")
print("oops", file=sys.stderr)
sys.exit(int(os.environ.get("CODE", "0")))

"""The sweep's pure core (the architecture test holds it to hpc_tf.core's rules): the hyperdrive block's schema
(`spec`), its parsing (`parse`, `exprs`, `policy_parse`, `fields`), random and grid draws (`sampling`), the
early-termination rules (`policies`), job arrays and a trial's argv (`arrays`), sweep.json's transitions."""

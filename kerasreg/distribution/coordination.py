"""TensorFlow's settings that bound a cluster's waits, all at --peer-timeout (no timer of ours).

The coordination service's registration barrier bounds the cluster forming, and its
heartbeat a peer that dies or stops answering during training. The exchanges at a
run's start (kerasreg/distribution/cluster.py) carry a timeout of their own; the
training's collectives none (TensorFlow spends a thread on each timed one:
kerasreg/distribution/strategy.py).
"""

from __future__ import annotations


def configure_coordination(peer_timeout: float) -> None:
    """Set TensorFlow's coordination service to wait `peer_timeout` for the cluster to form and for a heartbeat.

    Call before the MultiWorkerMirroredStrategy is built (it keeps a service already configured). The
    registration barrier makes the first worker wait for the others with that timeout; without it, it
    waited forever (TF 2.21), silent and deaf to Ctrl-C.
    """
    import tensorflow as tf
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    spec = tf.distribute.cluster_resolver.TFConfigClusterResolver().cluster_spec()
    jobs = [
        coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
        for job in ("chief", "worker")
        if job in spec.jobs
    ]
    milliseconds = int(peer_timeout * 1000)
    ctx = context.context()
    ctx.configure_coordination_service(
        service_type="standalone",
        service_leader=f"/job:{'chief' if 'chief' in spec.jobs else 'worker'}/replica:0/task:0",
        cluster_register_timeout_in_ms=milliseconds,
        heartbeat_timeout_in_ms=milliseconds,
        shutdown_barrier_timeout_in_ms=milliseconds,
        coordinated_jobs=jobs,
    )
    ctx.coordination_service.cluster_register_with_barrier = True

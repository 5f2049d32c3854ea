"""A worker library for spark-mesos-executor closure tasks, in pure standard-library Python.

::

    from spark_mesos_worker import Worker

    worker = Worker("my-worker")

    @worker.function("upper")
    def upper(payload: bytes, context) -> bytes:
        return payload.upper()

    worker.run()

See the executor's README, "Closures in Python". :mod:`spark_mesos_worker.client` builds
closure tasks and mini-task batches on the framework's side.
"""

from .worker import Cancelled, Context, Worker, current_context, describe

__all__ = ["Worker", "Context", "Cancelled", "current_context", "describe"]
__version__ = "0.1.0"

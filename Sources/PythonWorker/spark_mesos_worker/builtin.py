"""Functions every :class:`~spark_mesos_worker.Worker` offers unless built with
``builtins=False``.

``python.cloudpickle`` (when the ``cloudpickle`` module imports): the payload is a cloudpickled
``(function, args, kwargs)``; the result is the cloudpickled return value. Unpickling runs code:
the payload must come from the framework that owns the executor (which can run any command on it
anyway); never feed it bytes from anyone else.
"""

from __future__ import annotations

CLOUDPICKLE = "python.cloudpickle"


class PayloadError(ValueError):
    """A ``python.cloudpickle`` payload that is not a cloudpickled (function, args, kwargs)."""


def register_all(worker) -> None:
    try:
        import cloudpickle
    except ImportError:
        return

    def run_cloudpickled(payload: bytes, context) -> bytes:
        try:
            call = cloudpickle.loads(payload)
        except Exception as error:
            raise PayloadError(f"the payload could not be unpickled: {type(error).__name__}: {error}") from error
        if not (isinstance(call, tuple) and len(call) == 3):
            raise PayloadError(
                f"the payload must be a cloudpickled (function, args, kwargs) tuple, not {type(call).__name__}"
            )
        function, args, kwargs = call
        if not callable(function) or not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict):
            raise PayloadError(
                "the payload must be a cloudpickled (function, args, kwargs) tuple; got "
                f"({type(function).__name__}, {type(args).__name__}, {type(kwargs).__name__})"
            )
        return cloudpickle.dumps(function(*args, **kwargs))

    worker.register(CLOUDPICKLE, run_cloudpickled)

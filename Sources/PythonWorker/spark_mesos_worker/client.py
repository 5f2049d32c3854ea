"""For framework authors: build closure tasks and mini-task batches for spark-mesos-executor, and
read their results. Standard library only (``cloudpickle`` for the ``*_call`` helpers).

::

    from spark_mesos_worker import client

    factor = 3
    data = client.closure_data_for_call(lambda x: x * factor, 14)   # TaskInfo.data
    batch = client.mini_task_batch([client.mini_task_for_call(f"m{i}", pow, i, 2) for i in range(10)])
    ...
    for result in client.decode_results(message_data):               # an executor MESSAGE
        print(result.id, result.state, client.load_value(result.data) if result.ok else result.error)

Unpickling runs code: results are unpickled by the framework, payloads by the executor's
workers; each side must only ever load bytes produced by the other.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

from . import wire
from .builtin import CLOUDPICKLE
from .wire import Closure, MiniTask, MiniTaskResult

__all__ = [
    "CLOUDPICKLE",
    "Closure",
    "MiniTask",
    "MiniTaskResult",
    "closure_data",
    "closure_data_for_call",
    "pickle_call",
    "mini_task",
    "mini_task_for_call",
    "mini_task_batch",
    "release_results",
    "decode_results",
    "load_value",
]


def _check_environment(environment: Optional[Mapping[str, str]]) -> Dict[str, str]:
    environment = dict(environment or {})
    for key, value in environment.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"environment entries must be str to str, not {key!r}: {value!r}")
    return environment


def _check_payload(payload: Union[bytes, bytearray, memoryview, str]) -> bytes:
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    raise TypeError(f"a payload is bytes or str, not {type(payload).__name__}")


def closure_data(
    function: str,
    payload: Union[bytes, str] = b"",
    environment: Optional[Mapping[str, str]] = None,
    *,
    encoding: str = "protobuf",
) -> bytes:
    """``TaskInfo.data`` for a closure task: the ``Closure`` message (``encoding="protobuf"``) or
    its JSON form (``"json"``) running ``function`` of the worker with ``payload``."""
    if not isinstance(function, str) or not function:
        raise ValueError(f"function must be a non-empty str, not {function!r}")
    closure = Closure(function, _check_payload(payload), _check_environment(environment))
    if encoding == "protobuf":
        return wire.encode_closure(closure)
    if encoding == "json":
        return json.dumps(_closure_json(closure), separators=(",", ":")).encode("utf-8")
    raise ValueError(f'encoding must be "protobuf" or "json", not {encoding!r}')


def _closure_json(closure) -> Dict[str, Any]:
    fields: Dict[str, Any] = {"function": closure.function}
    if closure.payload:
        fields["payload"] = base64.b64encode(closure.payload).decode("ascii")
    if closure.environment:
        fields["environment"] = closure.environment
    return fields


def pickle_call(function, *args, **kwargs) -> bytes:
    """The ``python.cloudpickle`` payload calling ``function(*args, **kwargs)`` (needs
    ``cloudpickle`` here and on the workers, ideally the same versions of it and of Python)."""
    import cloudpickle

    if not callable(function):
        raise TypeError(f"{function!r} is not callable")
    return cloudpickle.dumps((function, tuple(args), dict(kwargs)))


def closure_data_for_call(function, *args, **kwargs) -> bytes:
    """``TaskInfo.data`` (protobuf) of a closure task calling ``function(*args, **kwargs)`` on a
    Python worker; its ``TaskStatus.data`` is the pickled return value (see :func:`load_value`)."""
    return closure_data(CLOUDPICKLE, pickle_call(function, *args, **kwargs))


def mini_task(
    id: str, function: str, payload: Union[bytes, str] = b"", environment: Optional[Mapping[str, str]] = None
) -> MiniTask:
    """One mini-task: ``function`` of the worker with ``payload``; ``id`` comes back in its result."""
    if not isinstance(id, str):
        raise TypeError(f"a mini-task id is a str, not {type(id).__name__}")
    if not isinstance(function, str) or not function:
        raise ValueError(f"function must be a non-empty str, not {function!r}")
    return MiniTask(id, function, _check_payload(payload), _check_environment(environment))


def mini_task_for_call(id: str, function, *args, **kwargs) -> MiniTask:
    """A mini-task calling ``function(*args, **kwargs)`` through ``python.cloudpickle``."""
    return mini_task(id, CLOUDPICKLE, pickle_call(function, *args, **kwargs))


def mini_task_batch(tasks: Iterable[MiniTask], *, release: Iterable[str] = (), encoding: str = "protobuf") -> bytes:
    """A framework MESSAGE's data: the ``MiniTaskBatch`` of ``tasks``, as protobuf or JSON.
    Results come back in the same encoding. ``release`` names result files the framework has
    read (``data_file`` paths, or a closure task's ``TASK_FINISHED`` label ``result.data_file``): the
    executor removes them (see :func:`release_results`)."""
    tasks = list(tasks)
    for task in tasks:
        if not isinstance(task, MiniTask):
            raise TypeError(f"a batch holds MiniTask values (see mini_task), not {type(task).__name__}")
    release = [release] if isinstance(release, str) else list(release)
    for path in release:
        if not isinstance(path, str) or not path:
            raise TypeError(f"a result file to release is a non-empty str path, not {path!r}")
    if encoding == "protobuf":
        return wire.encode_mini_task_batch(tasks, release)
    if encoding == "json":
        document: Dict[str, Any] = {}
        if tasks or not release:
            document["tasks"] = [{"id": task.id, **_closure_json(task)} for task in tasks]
        if release:
            document["release"] = release
        return json.dumps(document, separators=(",", ":")).encode("utf-8")
    raise ValueError(f'encoding must be "protobuf" or "json", not {encoding!r}')


def release_results(paths: Iterable[str], *, encoding: str = "protobuf") -> bytes:
    """A framework MESSAGE's data asking the executor to remove result files the framework has
    read (each a ``data_file`` it sent), as Spark's driver removes a large result once fetched.
    A path that is no result file of the executor comes back as a ``LOST`` result with an empty
    id; one already removed is no error."""
    return mini_task_batch([], release=paths, encoding=encoding)


class _Result(MiniTaskResult):
    @property
    def ok(self) -> bool:
        return self.state == "FINISHED"


def decode_results(data: Union[bytes, bytearray]) -> List[MiniTaskResult]:
    """The results in an executor MESSAGE (``MiniTaskResults``, protobuf or JSON: JSON starts
    with ``{``). Raises ``ValueError`` for anything else. Each result has ``id``, ``state``
    (``FINISHED``, ``FAILED``, ``KILLED``, ``LOST``), ``data``, ``error`` and ``data_file`` (a
    sandbox path, instead of ``data`` for results above the executor's size limit), and ``ok``."""
    data = bytes(data)
    if data.lstrip()[:1] == b"{":
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"not MiniTaskResults JSON: {error}") from None
        if not isinstance(document, dict) or not isinstance(document.get("results", []), list):
            raise ValueError('not MiniTaskResults JSON: expected {"results": [...]}')
        results = []
        for entry in document.get("results", []):
            if not isinstance(entry, dict):
                raise ValueError(f"not a MiniTaskResult: {entry!r}")
            try:
                payload = base64.b64decode(entry.get("data", ""), validate=True)
            except ValueError:
                raise ValueError(f"result {entry.get('id')!r}: data is not base64") from None
            results.append(
                _Result(
                    id=str(entry.get("id", "")),
                    state=str(entry.get("state", "")),
                    data=payload,
                    error=str(entry.get("error", "")),
                    data_file=str(entry.get("data_file", entry.get("dataFile", ""))),
                )
            )
        return results
    try:
        decoded = wire.decode_mini_task_results(data)
    except wire.WireError as error:
        raise ValueError(f"not MiniTaskResults: {error}") from None
    return [_Result(r.id, r.state, r.data, r.error, r.data_file) for r in decoded]


def load_value(data: bytes) -> Any:
    """The return value of a ``python.cloudpickle`` closure, from its result bytes."""
    import cloudpickle

    return cloudpickle.loads(data)

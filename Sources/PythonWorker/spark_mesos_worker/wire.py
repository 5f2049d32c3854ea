"""The worker pipe messages of ``worker.proto`` (package ``sparkmesos.worker.v1``) and the
client-side closure messages, in the protobuf binary format, plus RecordIO framing.

Written by hand, for the standard library only: a worker starts as fast as plain Python. Unknown
fields are skipped, as protobuf requires; anything else that is not a valid message raises
:class:`WireError` with a message saying what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple, Union

PROTOCOL_VERSION = 1
"""The worker protocol version this code speaks (``Hello.protocol_version``)."""

FORK_SERVER_VARIABLE = "SPARK_MESOS_WORKER_FORK_SERVER"
"""Set by the executor in the environment of a worker started as its fork server."""

MAXIMUM_FRAME_SIZE = 256 * 1024 * 1024
"""A cap on one worker message, as the executor's."""

# Result.status values.
OK = 0
ERROR = 1
CANCELLED = 2
UNKNOWN_FUNCTION = 3


class WireError(ValueError):
    """Bytes that are not a valid frame or message."""


# ---- Messages -------------------------------------------------------------------------------


@dataclass
class Hello:
    worker_name: str = ""
    functions: List[str] = field(default_factory=list)
    concurrency: int = 0
    fork_server: bool = False
    fork_server_joins_cgroups: bool = False
    fork_server_creates_in_cgroup: bool = False
    protocol_version: int = PROTOCOL_VERSION


@dataclass
class Run:
    id: int = 0
    task_id: str = ""
    function: str = ""
    payload: bytes = b""
    environment: Dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    id: int = 0
    status: int = OK
    data: bytes = b""
    error: str = ""


@dataclass
class Cancel:
    id: int = 0


@dataclass
class Closure:
    """``TaskInfo.data`` of a closure task."""

    function: str = ""
    payload: bytes = b""
    environment: Dict[str, str] = field(default_factory=dict)


@dataclass
class MiniTask:
    id: str = ""
    function: str = ""
    payload: bytes = b""
    environment: Dict[str, str] = field(default_factory=dict)


@dataclass
class MiniTaskResult:
    id: str = ""
    state: str = ""
    data: bytes = b""
    error: str = ""
    data_file: str = ""


ToWorker = Union[Run, Cancel]
FromWorker = Union[Hello, Result]

# ---- Encoding -------------------------------------------------------------------------------


def _varint(value: int, out: bytearray) -> None:
    if value < 0 or value >= 1 << 64:
        raise WireError(f"{value} does not fit an unsigned 64-bit varint")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _uint(number: int, value: int, out: bytearray) -> None:
    # proto3: zero values are not written.
    if value:
        out.append(number << 3)
        _varint(value, out)


def _bytes(number: int, value: bytes, out: bytearray, always: bool = False) -> None:
    if value or always:
        _varint(number << 3 | 2, out)
        _varint(len(value), out)
        out += value


def _string(number: int, value: str, out: bytearray, always: bool = False) -> None:
    # Text that cannot be UTF-8 (lone surrogates, as from undecodable file names) is sent with
    # replacement characters rather than not at all: a peer would refuse invalid UTF-8.
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        data = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value).encode("utf-8")
    _bytes(number, data, out, always)


def _map(number: int, value: Dict[str, str], out: bytearray) -> None:
    # One entry message per pair, sorted for stable output (as the Swift codec).
    for key in sorted(value):
        entry = bytearray()
        _string(1, key, entry)
        _string(2, value[key], entry)
        _bytes(number, entry, out, always=True)


def _hello_body(hello: Hello) -> bytearray:
    out = bytearray()
    _uint(1, hello.protocol_version, out)
    _string(2, hello.worker_name, out)
    for name in hello.functions:
        _string(3, name, out, always=True)
    _uint(4, hello.concurrency, out)
    _uint(5, 1 if hello.fork_server else 0, out)
    _uint(6, 1 if hello.fork_server_joins_cgroups else 0, out)
    _uint(7, 1 if hello.fork_server_creates_in_cgroup else 0, out)
    return out


def _result_body(result: Result) -> bytearray:
    out = bytearray()
    _uint(1, result.id, out)
    _uint(2, result.status, out)
    _bytes(3, result.data, out)
    _string(4, result.error, out)
    return out


def _run_body(run: Run) -> bytearray:
    out = bytearray()
    _uint(1, run.id, out)
    _string(2, run.task_id, out)
    _string(3, run.function, out)
    _bytes(4, run.payload, out)
    _map(5, run.environment, out)
    return out


def encode_from_worker(message: FromWorker) -> bytes:
    """The protobuf encoding of ``FromWorker`` holding ``message``."""
    out = bytearray()
    if isinstance(message, Hello):
        _bytes(1, _hello_body(message), out, always=True)
    elif isinstance(message, Result):
        _bytes(2, _result_body(message), out, always=True)
    else:
        raise TypeError(f"a FromWorker holds a Hello or a Result, not {type(message).__name__}")
    return bytes(out)


def encode_to_worker(message: ToWorker) -> bytes:
    """The protobuf encoding of ``ToWorker`` holding ``message``."""
    out = bytearray()
    if isinstance(message, Run):
        _bytes(1, _run_body(message), out, always=True)
    elif isinstance(message, Cancel):
        body = bytearray()
        _uint(1, message.id, body)
        _bytes(2, body, out, always=True)
    else:
        raise TypeError(f"a ToWorker holds a Run or a Cancel, not {type(message).__name__}")
    return bytes(out)


def encode_closure(closure: Closure) -> bytes:
    out = bytearray()
    _string(1, closure.function, out)
    _bytes(2, closure.payload, out)
    _map(3, closure.environment, out)
    return bytes(out)


def encode_mini_task_batch(tasks: List[MiniTask], release: Iterable[str] = ()) -> bytes:
    out = bytearray()
    for task in tasks:
        body = bytearray()
        _string(1, task.id, body)
        _string(2, task.function, body)
        _bytes(3, task.payload, body)
        _map(4, task.environment, body)
        _bytes(1, body, out, always=True)
    for path in release:
        _string(2, path, out, always=True)
    return bytes(out)


def encode_mini_task_results(results: List[MiniTaskResult]) -> bytes:
    out = bytearray()
    for result in results:
        body = bytearray()
        _string(1, result.id, body)
        _string(2, result.state, body)
        _bytes(3, result.data, body)
        _string(4, result.error, body)
        _string(5, result.data_file, body)
        _bytes(1, body, out, always=True)
    return bytes(out)


# ---- Decoding -------------------------------------------------------------------------------

_VARINT = 0
_LENGTH = 2


def _fields(data) -> List[Tuple[int, int, object]]:
    """Every field of a message as (number, wire type, value): an int for varints, a
    memoryview for length-delimited fields; fixed-width fields are skipped."""
    view = memoryview(data)
    end = len(view)
    index = 0
    fields = []

    def varint():
        nonlocal index
        result = 0
        shift = 0
        while index < end:
            byte = view[index]
            index += 1
            if shift >= 64:
                raise WireError("varint too long")
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result & 0xFFFFFFFFFFFFFFFF
            shift += 7
        raise WireError("truncated varint")

    while index < end:
        key = varint()
        number = key >> 3
        kind = key & 7
        if number == 0:
            raise WireError("field number 0")
        if kind == _VARINT:
            fields.append((number, kind, varint()))
        elif kind == _LENGTH:
            length = varint()
            if length > end - index:
                raise WireError(f"length {length} of field {number} runs past the end")
            fields.append((number, kind, view[index : index + length]))
            index += length
        elif kind in (1, 5):
            width = 8 if kind == 1 else 4
            if width > end - index:
                raise WireError(f"field {number} runs past the end")
            index += width
        else:
            raise WireError(f"unsupported wire type {kind} for field {number}")
    return fields


def _want(kind: int, expected: int, name: str) -> None:
    if kind != expected:
        what = "a varint" if expected == _VARINT else "length-delimited"
        raise WireError(f"{name} is not {what}")


def _text(kind: int, value, name: str) -> str:
    _want(kind, _LENGTH, name)
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise WireError(f"{name} is not UTF-8") from None


def _data(kind: int, value, name: str) -> bytes:
    _want(kind, _LENGTH, name)
    return bytes(value)


def _number(kind: int, value, name: str) -> int:
    _want(kind, _VARINT, name)
    return value


def _entry(kind: int, value, name: str) -> Tuple[str, str]:
    _want(kind, _LENGTH, name)
    key = item = ""
    for number, inner_kind, inner in _fields(value):
        if number == 1:
            key = _text(inner_kind, inner, f"{name} key")
        elif number == 2:
            item = _text(inner_kind, inner, f"{name} value")
    return key, item


def decode_to_worker(data) -> ToWorker:
    """Decodes ``ToWorker``; raises :class:`WireError` for anything else."""
    decoded: Optional[ToWorker] = None
    for number, kind, value in _fields(data):
        if number == 1:
            _want(kind, _LENGTH, "run")
            run = Run()
            for inner_number, inner_kind, inner in _fields(value):
                if inner_number == 1:
                    run.id = _number(inner_kind, inner, "run.id")
                elif inner_number == 2:
                    run.task_id = _text(inner_kind, inner, "run.task_id")
                elif inner_number == 3:
                    run.function = _text(inner_kind, inner, "run.function")
                elif inner_number == 4:
                    run.payload = _data(inner_kind, inner, "run.payload")
                elif inner_number == 5:
                    key, item = _entry(inner_kind, inner, "run.environment")
                    run.environment[key] = item
            decoded = run
        elif number == 2:
            _want(kind, _LENGTH, "cancel")
            cancel = Cancel()
            for inner_number, inner_kind, inner in _fields(value):
                if inner_number == 1:
                    cancel.id = _number(inner_kind, inner, "cancel.id")
            decoded = cancel
    if decoded is None:
        raise WireError("ToWorker holds neither run nor cancel")
    return decoded


def decode_from_worker(data) -> FromWorker:
    """Decodes ``FromWorker``; raises :class:`WireError` for anything else."""
    decoded: Optional[FromWorker] = None
    for number, kind, value in _fields(data):
        if number == 1:
            _want(kind, _LENGTH, "hello")
            hello = Hello(protocol_version=0)
            for inner_number, inner_kind, inner in _fields(value):
                if inner_number == 1:
                    hello.protocol_version = _number(inner_kind, inner, "hello.protocol_version") & 0xFFFFFFFF
                elif inner_number == 2:
                    hello.worker_name = _text(inner_kind, inner, "hello.worker_name")
                elif inner_number == 3:
                    hello.functions.append(_text(inner_kind, inner, "hello.functions"))
                elif inner_number == 4:
                    hello.concurrency = _number(inner_kind, inner, "hello.concurrency") & 0xFFFFFFFF
                elif inner_number == 5:
                    hello.fork_server = _number(inner_kind, inner, "hello.fork_server") != 0
                elif inner_number == 6:
                    hello.fork_server_joins_cgroups = _number(inner_kind, inner, "hello.fork_server_joins_cgroups") != 0
                elif inner_number == 7:
                    hello.fork_server_creates_in_cgroup = (
                        _number(inner_kind, inner, "hello.fork_server_creates_in_cgroup") != 0
                    )
            decoded = hello
        elif number == 2:
            _want(kind, _LENGTH, "result")
            result = Result()
            for inner_number, inner_kind, inner in _fields(value):
                if inner_number == 1:
                    result.id = _number(inner_kind, inner, "result.id")
                elif inner_number == 2:
                    status = _number(inner_kind, inner, "result.status")
                    if status not in (OK, ERROR, CANCELLED, UNKNOWN_FUNCTION):
                        raise WireError(f"result.status {status} is not a known status")
                    result.status = status
                elif inner_number == 3:
                    result.data = _data(inner_kind, inner, "result.data")
                elif inner_number == 4:
                    result.error = _text(inner_kind, inner, "result.error")
            decoded = result
    if decoded is None:
        raise WireError("FromWorker holds neither hello nor result")
    return decoded


def decode_closure(data) -> Closure:
    closure = Closure()
    for number, kind, value in _fields(data):
        if number == 1:
            closure.function = _text(kind, value, "closure.function")
        elif number == 2:
            closure.payload = _data(kind, value, "closure.payload")
        elif number == 3:
            key, item = _entry(kind, value, "closure.environment")
            closure.environment[key] = item
    return closure


def decode_mini_task_batch(data) -> List[MiniTask]:
    tasks = []
    for number, kind, value in _fields(data):
        if number != 1:
            continue
        _want(kind, _LENGTH, "tasks")
        task = MiniTask()
        for inner_number, inner_kind, inner in _fields(value):
            if inner_number == 1:
                task.id = _text(inner_kind, inner, "task.id")
            elif inner_number == 2:
                task.function = _text(inner_kind, inner, "task.function")
            elif inner_number == 3:
                task.payload = _data(inner_kind, inner, "task.payload")
            elif inner_number == 4:
                key, item = _entry(inner_kind, inner, "task.environment")
                task.environment[key] = item
        tasks.append(task)
    return tasks


def decode_mini_task_results(data) -> List[MiniTaskResult]:
    results = []
    for number, kind, value in _fields(data):
        if number != 1:
            continue
        _want(kind, _LENGTH, "results")
        result = MiniTaskResult()
        for inner_number, inner_kind, inner in _fields(value):
            if inner_number == 1:
                result.id = _text(inner_kind, inner, "result.id")
            elif inner_number == 2:
                result.state = _text(inner_kind, inner, "result.state")
            elif inner_number == 3:
                result.data = _data(inner_kind, inner, "result.data")
            elif inner_number == 4:
                result.error = _text(inner_kind, inner, "result.error")
            elif inner_number == 5:
                result.data_file = _text(inner_kind, inner, "result.data_file")
        results.append(result)
    return results


# ---- RecordIO framing -----------------------------------------------------------------------


def frame(payload: bytes) -> bytes:
    """``payload`` as one RecordIO frame: ``<decimal length>\\n<bytes>``."""
    return b"%d\n" % len(payload) + payload


class FrameDecoder:
    """Splits a byte stream into frames, whatever the read boundaries: feed bytes, take frames."""

    def __init__(self, maximum_frame_size: int = MAXIMUM_FRAME_SIZE):
        self.maximum_frame_size = maximum_frame_size
        self._buffer = bytearray()
        self._start = 0

    def feed(self, data) -> None:
        if self._start:
            del self._buffer[: self._start]
            self._start = 0
        self._buffer += data

    @property
    def pending_byte_count(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buffer) - self._start

    def next(self) -> Optional[bytes]:
        """The next complete frame, or None until more bytes arrive."""
        buffer = self._buffer
        start = self._start
        newline = buffer.find(b"\n", start, start + 21)
        if newline < 0:
            prefix = buffer[start : start + 21]
            if len(prefix) > 20 or not prefix.isdigit() and prefix:
                raise WireError(f"malformed RecordIO framing: length prefix {bytes(prefix[:32])!r}")
            return None
        digits = buffer[start:newline]
        if not digits:
            raise WireError("malformed RecordIO framing: empty length prefix")
        if not digits.isdigit() or not digits.isascii():
            raise WireError(f"malformed RecordIO framing: length prefix {bytes(digits[:32])!r}")
        length = int(digits)
        if length > self.maximum_frame_size:
            raise WireError(f"frame of {length} bytes exceeds the limit of {self.maximum_frame_size} bytes")
        body = newline + 1
        if len(buffer) - body < length:
            return None
        self._start = body + length
        return bytes(buffer[body : self._start])

    def frames(self):
        """Every complete frame now buffered."""
        while True:
            item = self.next()
            if item is None:
                return
            yield item

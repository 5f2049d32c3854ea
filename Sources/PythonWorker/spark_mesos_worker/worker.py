"""A worker program: named closures the executor runs, served over the worker pipes."""

from __future__ import annotations

import atexit
import collections
import contextvars
import os
import queue
import select
import sys
import threading
import time
import traceback
from typing import Callable, Deque, Dict, Mapping, Optional

from . import wire

Function = Callable[[bytes, "Context"], object]

_current: contextvars.ContextVar = contextvars.ContextVar("spark_mesos_worker_context")


class Cancelled(Exception):
    """Raised by :meth:`Context.check_cancelled` once the executor cancelled the run; a closure
    that lets it escape ends the run as ``CANCELLED``."""


class Context:
    """What a running closure may want to know about its run."""

    __slots__ = ("run_id", "task_id", "function", "environment", "_cancelled", "_event", "_inbox")
    # Guards the creation of `_event`, which most runs never need.
    _lock = threading.Lock()

    def __init__(self, run_id: int, task_id: str, function: str, environment: Mapping[str, str]):
        self.run_id = run_id
        """The executor's id of this run (unique per worker process)."""
        self.task_id = task_id
        """The Mesos task id or mini-task id."""
        self.function = function
        """The name the closure was called by."""
        self.environment = environment
        """The closure's extra environment (``Closure.environment`` / ``MiniTask.environment``)."""
        self._cancelled = False
        self._event: Optional[threading.Event] = None
        # A one-at-a-time session has no reader thread: asking looks at the pipe (see _Inbox).
        self._inbox: Optional[_Inbox] = None

    @property
    def cancelled(self) -> bool:
        """True once the executor asked to cancel this run (a KILL, or the executor went away)."""
        if not self._cancelled and self._inbox is not None:
            self._inbox.look()
        return self._cancelled

    def check_cancelled(self) -> None:
        """Raises :class:`Cancelled` if the run was cancelled."""
        if self.cancelled:
            raise Cancelled(f"run {self.run_id} ({self.task_id}) was cancelled")

    def sleep(self, seconds: float) -> None:
        """Sleeps, waking early to raise :class:`Cancelled` if the run is cancelled meanwhile."""
        inbox = self._inbox
        if inbox is not None:
            deadline = time.monotonic() + seconds
            while not self._cancelled:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                inbox.wait(remaining)
            self.check_cancelled()
            return
        with Context._lock:
            if self._event is None:
                self._event = threading.Event()
                if self._cancelled:
                    self._event.set()
        self._event.wait(seconds)
        self.check_cancelled()

    def _cancel(self) -> None:
        with Context._lock:
            self._cancelled = True
            if self._event is not None:
                self._event.set()

    def __repr__(self) -> str:
        return f"Context(run_id={self.run_id}, task_id={self.task_id!r}, function={self.function!r})"


def current_context() -> Optional[Context]:
    """The :class:`Context` of the run this thread is executing, or None outside a run. Useful in
    code that is not handed the context, such as a cloudpickled function."""
    return _current.get(None)


class Worker:
    """A worker program: closures registered by name, served to the executor by :meth:`run`.

    ::

        worker = Worker("my-worker")

        @worker.function("upper")
        def upper(payload: bytes, context) -> bytes:
            return payload.upper()

        worker.run()

    A closure takes the payload (bytes) and a :class:`Context` and returns bytes (``str`` is sent
    as UTF-8, ``None`` as no bytes). An exception fails the run with ``"TypeName: message"``
    (the traceback goes to the worker's stderr); :class:`Cancelled` ends it as cancelled.

    ``concurrency`` closures run at once, each on a thread of its own (later runs wait in
    arrival order). With ``builtins`` (the default), the worker also offers
    ``python.cloudpickle`` when the ``cloudpickle`` module can be imported.
    """

    def __init__(self, name: str, concurrency: int = 1, builtins: bool = True):
        if not isinstance(name, str):
            raise TypeError(f"the worker name must be a str, not {type(name).__name__}")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an int of at least 1, not {concurrency!r}")
        self.name = name
        self.concurrency = concurrency
        self._functions: Dict[str, Function] = {}
        if builtins:
            from . import builtin

            builtin.register_all(self)

    def register(self, name: str, body: Function) -> Function:
        """Offers ``body`` under ``name``; registering a name again replaces the first."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a function name must be a non-empty str, not {name!r}")
        if not callable(body):
            raise TypeError(f"the body of function {name!r} is not callable")
        self._functions[name] = body
        return body

    def function(self, name: Optional[str] = None) -> Callable[[Function], Function]:
        """Decorator form of :meth:`register`: ``@worker.function("name")``; written
        ``@worker.function()`` or ``@worker.function``, the function's own ``__name__``."""
        if callable(name):
            return self.register(name.__name__, name)

        def decorate(body: Function) -> Function:
            return self.register(name or body.__name__, body)

        return decorate

    @property
    def function_names(self):
        """The registered names, sorted (as the hello lists them)."""
        return sorted(self._functions)

    def run(self) -> None:
        """Serves the executor until it is done with this process, then exits the process (0, or
        1 if the executor's messages could not be read). Call it last, from the main thread.

        When the executor starts the program as a fork server (fine mode), this process forks a
        fresh worker per task instead: everything done before ``run()`` (imports, loading data,
        registering closures) is paid once and inherited by every worker.
        """
        from . import forkserver

        forkserver.serve_forks_if_asked(self)
        _exit(self.serve())

    def serve(self, input_fd: int = 3, output_fd: int = 4) -> int:
        """Says hello, runs what arrives on ``input_fd`` until the executor closes it, and returns
        the exit status for the process. Never a fork server (see :meth:`run`)."""
        return _Session(self, input_fd, output_fd).serve()

    # For the session.
    def _lookup(self, name: str) -> Optional[Function]:
        return self._functions.get(name)


def _exit(status: int) -> None:
    """Ends the process as the interpreter would, minus its teardown: non-daemon threads are
    awaited, atexit handlers run (logging flushes its handlers there), stdout and stderr are
    flushed, then os._exit. Tearing down the modules touches every object; in a forked worker
    that copies most of the server's memory page by page (25-30 ms with a dozen stdlib modules
    imported, far more with big libraries)."""
    shutdown = getattr(threading, "_shutdown", None)
    try:
        if shutdown is not None:
            shutdown()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):
                pass
        os._exit(status)


class _Writer:
    """Writes frames to the executor, one writer at a time. After EPIPE (the executor has
    gone) frames are dropped."""

    def __init__(self, fd: int):
        self._fd = fd
        self._lock = threading.Lock()
        self._broken = False

    def send(self, message) -> None:
        data = wire.frame(wire.encode_from_worker(message))
        with self._lock:
            if self._broken:
                return
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError:
                self._broken = True


class _Registry:
    """Runs queued and running, shared by the pipe reader (which cancels) and the threads that
    execute runs. A cancel for a queued run is remembered, one for an ended run is dropped."""

    def __init__(self):
        self._lock = threading.Lock()
        self._queued = set()
        self._cancelled_queued = set()
        self._running: Dict[int, Context] = {}
        self._closed = False

    def queued(self, run_id: int) -> None:
        with self._lock:
            self._queued.add(run_id)

    def begin(self, run: wire.Run) -> Optional[Context]:
        """The run's context, or None if it was cancelled before it began."""
        with self._lock:
            self._queued.discard(run.id)
            if run.id in self._cancelled_queued or self._closed:
                self._cancelled_queued.discard(run.id)
                return None
            context = Context(run.id, run.task_id, run.function, run.environment)
            self._running[run.id] = context
            return context

    def end(self, run_id: int) -> None:
        with self._lock:
            self._running.pop(run_id, None)

    def cancel(self, run_id: int) -> None:
        with self._lock:
            context = self._running.get(run_id)
            if context is None and run_id in self._queued:
                self._cancelled_queued.add(run_id)
        if context is not None:
            context._cancel()

    def cancel_all(self) -> None:
        """The executor closed the pipe: cancel everything, now and later."""
        with self._lock:
            self._closed = True
            running = list(self._running.values())
        for context in running:
            context._cancel()


class _Session:
    def __init__(self, worker: Worker, input_fd: int, output_fd: int):
        self.worker = worker
        self.input_fd = input_fd
        self.writer = _Writer(output_fd)
        self.registry = _Registry()
        self.runs: "queue.SimpleQueue[Optional[wire.Run]]" = queue.SimpleQueue()
        self.failure: Optional[str] = None

    def serve(self) -> int:
        worker = self.worker
        self.writer.send(
            wire.Hello(worker_name=worker.name, functions=worker.function_names, concurrency=worker.concurrency)
        )
        if worker.concurrency == 1:
            return self._serve_one_at_a_time()
        reader = threading.Thread(target=self._read, name="spark-mesos-worker-reader", daemon=True)
        reader.start()
        helpers = [
            threading.Thread(target=self._execute_all, name=f"spark-mesos-worker-{n}", daemon=True)
            for n in range(1, worker.concurrency)
        ]
        for helper in helpers:
            helper.start()
        self._execute_all()
        for helper in helpers:
            helper.join()
        reader.join()
        if self.failure:
            _say(f"worker {worker.name}: {self.failure}")
            return 1
        return 0

    def _serve_one_at_a_time(self) -> int:
        """Concurrency 1 needs no threads: runs execute on this thread, and the pipe is read
        between runs and whenever the running closure asks whether it was cancelled. (A thread,
        its start-up handshake and a hand-over of the GIL per message cost a fork-served worker
        more than its closure.)"""
        inbox = _Inbox(self.input_fd, self.registry)
        while True:
            run = inbox.next_run()
            if run is None:
                break
            try:
                self._execute(run, inbox)
            except BaseException as error:  # a bug of ours must cost one run, not the worker
                _report(run, error)
                self.writer.send(wire.Result(id=run.id, status=wire.ERROR, error=f"worker failure: {describe(error)}"))
        failure = inbox.failure
        if failure:
            _say(f"worker {self.worker.name}: {failure}")
            return 1
        return 0

    def _read(self) -> None:
        inbox = _Inbox(self.input_fd, self.registry, deliver=self.runs.put)
        try:
            inbox.read_to_end()
        finally:
            self.failure = inbox.failure
            self.registry.cancel_all()
            for _ in range(self.worker.concurrency):
                self.runs.put(None)

    def _execute_all(self) -> None:
        while True:
            run = self.runs.get()
            if run is None:
                return
            try:
                self._execute(run)
            except BaseException as error:  # a bug of ours must cost one run, not the worker
                _report(run, error)
                self.writer.send(wire.Result(id=run.id, status=wire.ERROR, error=f"worker failure: {describe(error)}"))

    def _execute(self, run: wire.Run, inbox: Optional[_Inbox] = None) -> None:
        send = self.writer.send
        context = self.registry.begin(run)
        if context is None:
            send(wire.Result(id=run.id, status=wire.CANCELLED, error="cancelled before it started"))
            return
        context._inbox = inbox
        try:
            body = self.worker._lookup(run.function)
            if body is None:
                offered = ", ".join(self.worker.function_names)
                send(
                    wire.Result(
                        id=run.id,
                        status=wire.UNKNOWN_FUNCTION,
                        error=f"worker '{self.worker.name}' has no function '{run.function}' (it offers: {offered})",
                    )
                )
                return
            token = _current.set(context)
            try:
                value = body(run.payload, context)
                data = _as_bytes(value, run.function)
            except Cancelled:
                send(wire.Result(id=run.id, status=wire.CANCELLED, error="cancelled"))
                return
            except BaseException as error:  # a closure must never end the serve loop
                _report(run, error)
                send(wire.Result(id=run.id, status=wire.ERROR, error=describe(error)))
                return
            finally:
                _current.reset(token)
            send(wire.Result(id=run.id, status=wire.OK, data=data))
        finally:
            self.registry.end(run.id)


class _Inbox:
    """The executor's pipe: runs go to `deliver` (by default a queue of its own, for a session
    that reads on its serving thread), cancels to the registry. `look` reads what is there without
    waiting, at most once a millisecond (a closure may ask `cancelled` in a tight loop)."""

    def __init__(self, fd: int, registry: _Registry, deliver: Optional[Callable[[wire.Run], None]] = None):
        self._fd = fd
        self._registry = registry
        self._decoder = wire.FrameDecoder()
        self._runs: Deque[wire.Run] = collections.deque()
        self._deliver = deliver or self._runs.append
        self._ended = False
        self._last_look = 0.0
        self.failure: Optional[str] = None

    def next_run(self) -> Optional[wire.Run]:
        """The next run, waiting for one; None once the executor closed the pipe and every run
        that came before is taken. Reads what is there first, so a cancel of a queued run
        arrives before the run is started."""
        self._drain()
        while not self._runs and not self._ended:
            self._read()
        return self._runs.popleft() if self._runs else None

    def read_to_end(self) -> None:
        """Reads, waiting for the executor, until it closes the pipe (a session's reader thread)."""
        while not self._ended:
            self._read()

    def look(self) -> None:
        now = time.monotonic()
        if now - self._last_look >= 0.001:
            self._last_look = now
            self._drain()

    def wait(self, seconds: float) -> None:
        """Waits up to `seconds` for the executor to say something, and takes it."""
        if self._ended:
            time.sleep(seconds)
            return
        try:
            readable, _, _ = select.select([self._fd], [], [], seconds)
        except InterruptedError:
            return
        except (OSError, ValueError) as error:
            self._end(f"waiting for the executor's pipe failed: {error}")
            return
        if readable:
            self._read()
            self._drain()

    def _drain(self) -> None:
        while not self._ended:
            try:
                readable, _, _ = select.select([self._fd], [], [], 0)
            except InterruptedError:
                continue
            except (OSError, ValueError) as error:
                self._end(f"waiting for the executor's pipe failed: {error}")
                return
            if not readable:
                return
            self._read()

    def _read(self) -> None:
        try:
            chunk = os.read(self._fd, 65536)
        except InterruptedError:
            return
        except OSError as error:
            self._end(f"reading the executor's pipe failed: {error}")
            return
        if not chunk:
            self._end("the executor's pipe ended inside a message" if self._decoder.pending_byte_count else None)
            return
        try:
            self._decoder.feed(chunk)
            for data in self._decoder.frames():
                message = wire.decode_to_worker(data)
                if isinstance(message, wire.Run):
                    self._registry.queued(message.id)
                    self._deliver(message)
                else:
                    self._registry.cancel(message.id)
        except wire.WireError as error:
            self._end(f"malformed message from the executor: {error}")

    def _end(self, failure: Optional[str]) -> None:
        """The executor closed the pipe (or it broke): every run, now and later, is cancelled."""
        self._ended = True
        if failure and not self.failure:
            self.failure = failure
        self._registry.cancel_all()


class ResultTypeError(TypeError):
    """A closure returned something that cannot be sent as bytes."""


# Room for the result's other fields within the executor's limit on one worker message.
_MAXIMUM_RESULT = wire.MAXIMUM_FRAME_SIZE - 4096


def _as_bytes(value, function: str) -> bytes:
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, (bytearray, memoryview)):
        data = bytes(value)
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogateescape")
    elif value is None:
        return b""
    else:
        raise ResultTypeError(
            f"function '{function}' returned {type(value).__name__}; expected bytes, bytearray, memoryview, str or None"
        )
    if len(data) > _MAXIMUM_RESULT:
        raise ResultTooLarge(
            f"function '{function}' returned {len(data)} bytes; a worker message holds at most "
            f"{wire.MAXIMUM_FRAME_SIZE} bytes (write large results to a file in the sandbox)"
        )
    return data


class ResultTooLarge(ValueError):
    """A closure returned more than one worker message can carry."""


def describe(error: BaseException) -> str:
    """``"TypeName: message"``, or the type name alone when the message is empty."""
    text = str(error)
    name = type(error).__name__
    return f"{name}: {text}" if text else name


def _report(run: wire.Run, error: BaseException) -> None:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    _say(f"run {run.id} (task {run.task_id!r}) of function '{run.function}' raised:\n{text.rstrip()}")


def _say(text: str) -> None:
    """One message on stderr, written whole (threads may be writing too)."""
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    data = (text + "\n").encode("utf-8", "replace")
    try:
        while data:
            data = data[os.write(2, data) :]
    except OSError:
        pass

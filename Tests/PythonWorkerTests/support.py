"""Shared by the Python worker tests: paths, spawning a worker on pipes, reading its messages."""

import os
import select
import socket
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
LIBRARY = os.path.join(ROOT, "Sources", "PythonWorker")
TEST_WORKER = os.path.join(HERE, "workers", "test-worker.py")
FIXTURES = os.path.join(HERE, "fixtures")

sys.path.insert(0, LIBRARY)

from spark_mesos_worker import wire  # noqa: E402

# Generous: the tests must pass on a machine whose cores are all busy.
PATIENCE = 120


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as file:
        return file.read()


def environment(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEST_WORKER")}
    env.pop(wire.FORK_SERVER_VARIABLE, None)
    env["PYTHONPATH"] = LIBRARY
    env.update(extra)
    return env


def _high(fd):
    import fcntl

    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 20)
    os.close(fd)
    return high


class WorkerPipes:
    """Our ends of a worker's protocol pipes: we write its fd 3 and read its fd 4."""

    def __init__(self, to_worker, from_worker):
        self.to_worker = to_worker
        self.from_worker = from_worker
        self.decoder = wire.FrameDecoder()

    def send(self, *messages):
        data = b"".join(wire.frame(wire.encode_to_worker(m)) for m in messages)
        while data:
            data = data[os.write(self.to_worker, data) :]

    def close_input(self):
        if self.to_worker >= 0:
            os.close(self.to_worker)
            self.to_worker = -1

    def receive(self):
        """The next message, or None when the worker closed its pipe."""
        while True:
            data = self.decoder.next()
            if data is not None:
                return wire.decode_from_worker(data)
            ready, _, _ = select.select([self.from_worker], [], [], PATIENCE)
            if not ready:
                raise AssertionError(f"no message from the worker within {PATIENCE} s")
            chunk = os.read(self.from_worker, 65536)
            if not chunk:
                return None
            self.decoder.feed(chunk)

    def results(self, count):
        found = {}
        while len(found) < count:
            message = self.receive()
            if message is None:
                raise AssertionError(f"the worker closed its pipe after {len(found)} of {count} results")
            if not isinstance(message, wire.Result):
                raise AssertionError(f"expected a result, got {message}")
            if message.id in found:
                raise AssertionError(f"run {message.id} answered twice")
            found[message.id] = message
        return found


class SpawnedWorker(WorkerPipes):
    """A worker program started as the executor starts one: fd 3 in, fd 4 out (plus fd 5)."""

    def __init__(self, program=TEST_WORKER, env=None, control=None):
        to_read, to_worker = map(_high, os.pipe())
        from_worker, from_write = map(_high, os.pipe())
        super().__init__(to_worker, from_worker)
        self.stderr_read, stderr_write = map(_high, os.pipe())
        self.stdout_read, stdout_write = map(_high, os.pipe())
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, stdout_write, 1),
            (os.POSIX_SPAWN_DUP2, stderr_write, 2),
            (os.POSIX_SPAWN_DUP2, to_read, 3),
            (os.POSIX_SPAWN_DUP2, from_write, 4),
        ]
        if control is not None:
            import fcntl

            control = fcntl.fcntl(control, fcntl.F_DUPFD_CLOEXEC, 20)
            actions.append((os.POSIX_SPAWN_DUP2, control, 5))
        # A Python worker runs under the interpreter running the tests, so that they test it.
        argv = [sys.executable, program] if program.endswith(".py") else [program]
        self.pid = os.posix_spawn(argv[0], argv, env or environment(), file_actions=actions, setsid=True)
        for fd in (to_read, from_write, stderr_write, stdout_write) + ((control,) if control is not None else ()):
            os.close(fd)
        self.status = None

    def wait(self):
        """Exit status (os.waitstatus_to_exitcode form: negative for a signal)."""
        if self.status is None:
            _, status = os.waitpid(self.pid, 0)
            self.status = os.waitstatus_to_exitcode(status)
        return self.status

    def stderr(self):
        return _read_all(self.stderr_read)

    def stdout(self):
        return _read_all(self.stdout_read)

    def close(self):
        self.close_input()
        for fd in (self.from_worker, self.stderr_read, self.stdout_read):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.status is None:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass
            self.wait()


def _read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks).decode("utf-8", "replace")
        chunks.append(chunk)


def harness():
    """The harness program, or None: $SPARK_MESOS_HARNESS, else this tree's debug build."""
    candidate = os.environ.get("SPARK_MESOS_HARNESS") or os.path.join(ROOT, ".build", "debug", "spark-mesos-harness")
    return candidate if os.access(candidate, os.X_OK) else None


def require_harness(test):
    return unittest.skipUnless(
        harness(), "no spark-mesos-harness: build it (swift build) or set SPARK_MESOS_HARNESS"
    )(test)

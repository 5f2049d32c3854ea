#!/usr/bin/python3
"""The worker the Python tests drive, directly and under the real executor."""

import atexit
import json
import os
import random
import signal
import sys
import threading
import time

try:
    import spark_mesos_worker
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "../../../Sources/PythonWorker"))
    import spark_mesos_worker

from spark_mesos_worker import Worker

SERVER_PID = os.getpid()
hooks = {"before": 0, "parent": 0, "child": 0}
os.register_at_fork(
    before=lambda: hooks.__setitem__("before", hooks["before"] + 1),
    after_in_parent=lambda: hooks.__setitem__("parent", hooks["parent"] + 1),
    after_in_child=lambda: hooks.__setitem__("child", hooks["child"] + 1),
)
# TEST_WORKER_HELLO_GATE names a FIFO: while it exists, a forked worker stops before its hello
# until somebody opens the FIFO for writing (the executor sees the worker exist, not say hello).
HELLO_GATE = os.environ.get("TEST_WORKER_HELLO_GATE")


def _wait_at_gate():
    if HELLO_GATE and os.path.exists(HELLO_GATE):
        try:
            os.close(os.open(HELLO_GATE, os.O_RDONLY))
        except OSError:
            pass


os.register_at_fork(after_in_child=_wait_at_gate)

if os.environ.get("TEST_WORKER_FORK_SERVER_JOINS") == "0":
    # A fork server as SDKs before `fork_server_joins_cgroups` were: its hello does not say it,
    # so the executor moves each forked worker into its cgroups by pid.
    from spark_mesos_worker import wire

    _encode = wire.encode_from_worker

    def _encode_as_before(message):
        if isinstance(message, wire.Hello):
            message.fork_server_joins_cgroups = False
        return _encode(message)

    wire.encode_from_worker = _encode_as_before
# A lock held across a fork by the forking thread itself must come out usable in the copy.
lock = threading.Lock()

worker = Worker("test-worker", concurrency=int(os.environ.get("TEST_WORKER_CONCURRENCY", "1")))
if os.environ.get("TEST_WORKER_THREAD") == "1":
    idle = threading.Event()
    threading.Thread(target=idle.wait, daemon=True).start()

peer_started = threading.Event()
# Runs in every worker process at its end (after the last run), forked or spawned.
atexit.register(lambda: print(f"atexit ran in {os.getpid()}"))


@worker.function("unflushed")
def unflushed(payload, context):
    # stdout is a file or pipe here, so this sits in a buffer until the process ends.
    print("printed by a closure", end="")
    return b""


@worker.function("echo")
def echo(payload, context):
    return payload


@worker.function()
def upper(payload, context):
    return payload.decode().upper()


@worker.function("boom")
def boom(payload, context):
    raise ValueError("bad value: " + payload.decode())


@worker.function("exit3")
def exit3(payload, context):
    os._exit(3)


@worker.function("kill-self")
def kill_self(payload, context):
    os.kill(os.getpid(), signal.SIGKILL)


def announce(payload):
    """A payload names a file to create once the closure runs (tests wait for it)."""
    if payload:
        with open(payload.decode(), "w"):
            pass


@worker.function("await-file")
def await_file(payload, context):
    deadline = time.monotonic() + 120
    while not os.path.exists(payload.decode()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{payload.decode()} did not appear within 120 s")
        context.sleep(0.01)
    return b"seen"


@worker.function("nap")
def nap(payload, context):
    announce(payload)
    context.sleep(3600)
    return b"woke up"


@worker.function("announced-nap")
def announced_nap(payload, context):
    peer_started.set()
    context.sleep(3600)
    return b"woke up"


@worker.function("spin")
def spin(payload, context):
    # Ignores cancellation: only the executor's kill ends it.
    announce(payload)
    while True:
        time.sleep(0.05)


@worker.function
def surrogates(payload, context):
    raise OSError("cannot open " + b"caf\xe9".decode("utf-8", "surrogateescape"))


@worker.function("returns-int")
def returns_int(payload, context):
    return 42


@worker.function("wait-for-peer")
def wait_for_peer(payload, context):
    # Finishes only once "peer" ran: shows two runs at once (concurrency 2).
    peer_started.wait()
    return b"after peer"


@worker.function("peer")
def peer(payload, context):
    peer_started.set()
    return b"peer"


@worker.function("info")
def info(payload, context):
    parent = os.getppid()
    with lock:
        pass
    try:
        parent_exe = os.readlink(f"/proc/{parent}/exe")
    except OSError:
        parent_exe = ""
    return json.dumps(
        {
            "pid": os.getpid(),
            "ppid": parent,
            "parent_exe": parent_exe,
            "server": SERVER_PID,
            "session": os.getsid(0),
            "hooks": hooks,
            "random": random.random(),
            "task_id": context.task_id,
            "environment": context.environment,
            "process_environment": {k: v for k, v in os.environ.items() if k.startswith("TEST_")},
            "fork_server_variable": os.environ.get("SPARK_MESOS_WORKER_FORK_SERVER"),
            "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
            "threads": threading.active_count(),
            "cgroups": _own_cgroups(),
        }
    )


def _own_cgroups():
    try:
        with open("/proc/self/cgroup") as own:
            return own.read().split()
    except OSError:
        return []


@worker.function("await-fork-server")
def await_fork_server(payload, context):
    """Returns once a sibling (another child of the executor) is a fork server that has said hello
    and closed its pipes, so later tasks are forked; within two minutes."""
    parent = os.getppid()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    if int(stat.read().rsplit(b")", 1)[1].split()[1]) != parent:
                        continue
                with open(f"/proc/{entry}/environ", "rb") as environ:
                    if b"SPARK_MESOS_WORKER_FORK_SERVER=" not in environ.read():
                        continue
                if not os.path.exists(f"/proc/{entry}/fd/4"):
                    return entry
            except OSError:
                continue
        context.sleep(0.01)
    raise TimeoutError("no fork server came up within 120 s")


@worker.function("zombies")
def zombies(payload, context):
    """Zombie children of our parent (the executor), once none are left or after a minute."""
    parent = os.getppid()
    deadline = time.monotonic() + 60
    while True:
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent and fields[0] == b"Z":
                found.append(int(entry))
        if not found or time.monotonic() > deadline:
            return json.dumps(found)
        context.sleep(0.01)


worker.run()

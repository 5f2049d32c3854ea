"""The fork server (fine mode): one warm instance of the worker program forks a fresh worker
for each task. The contract is the executor's (README, "Fork server"; ``CForkServer.h``):

- started with a ``SOCK_SEQPACKET`` socket on the fd named by ``SPARK_MESOS_WORKER_FORK_SERVER``;
- it says ``Hello { fork_server: true, fork_server_joins_cgroups: true,
  fork_server_creates_in_cgroup: true }`` on fd 4, then serves requests on the socket: ``"SMEF"``
  and ``NAME=value\\0`` entries carrying four descriptors (stdout, stderr, fd 3, fd 4 of the new
  worker) and up to ``MAXIMUM_JOINS`` more: cgroup files (v1 ``tasks``, v2 ``cgroup.procs``) the
  new worker joins (writes ``0`` to) before anything else, and perhaps one cgroup2 directory, which
  the new worker is created in (clone3's ``CLONE_INTO_CGROUP``; where the kernel refuses that, it
  joins the directory's ``cgroup.procs``); it answers each with the new pid as a 4-byte native
  int, or ``-errno``;
- the new worker is a child of the *executor*: ``clone(CLONE_PARENT)``. ``os.fork`` cannot do
  that, so the clone is a raw system call made between ``PyOS_BeforeFork`` and
  ``PyOS_AfterFork_Child``/``PyOS_AfterFork_Parent``, exactly where ``os.fork`` makes its own:
  Python's fork bookkeeping (its locks, the ``threading`` module, ``os.register_at_fork`` hooks)
  is kept as for any fork;
- the new worker installs the four descriptors as 1-4, closes every descriptor above, sets the
  environment, leads a session of its own and speaks the ordinary protocol.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import platform
import socket
import stat
import struct
import sys
from typing import List, Optional, Tuple

from . import wire

MAGIC = b"SMEF"
MAXIMUM_ENVIRONMENT = 60 * 1024
MAXIMUM_JOINS = 8
# The exit status of a new worker that could not join a cgroup of its request.
JOIN_FAILED_STATUS = 126

_CLONE_PARENT = 0x00008000
_CLONE_CHILD_CLEARTID = 0x00200000
_CLONE_CHILD_SETTID = 0x01000000
_SIGCHLD = 17
_PR_GET_TID_ADDRESS = 40
_SYS_CLONE = {"x86_64": 56, "aarch64": 220}
_SYS_CLONE3 = 435
_CLONE_INTO_CGROUP = 0x200000000
# clone3's answers when it cannot do what is asked at all (an old kernel, a seccomp filter, flags
# it does not know) rather than failing for this cgroup.
_CLONE3_REFUSALS = (errno.ENOSYS, errno.E2BIG, errno.EINVAL, errno.EPERM)
_SYS_CLOSE_RANGE = 436


class ForkUnavailable(Exception):
    """This Python or machine cannot fork the executor's way."""


class _Clone:
    """clone(CLONE_PARENT) around Python's own fork hooks."""

    def __init__(self):
        machine = platform.machine()
        if machine not in _SYS_CLONE:
            raise ForkUnavailable(f"no clone system call number known for {machine}")
        self.number = _SYS_CLONE[machine]
        self.machine = machine
        # PyDLL: the GIL stays held across these calls, as os.fork holds it across fork().
        libc = ctypes.PyDLL(None, use_errno=True)
        self.syscall = libc.syscall
        self.syscall.restype = ctypes.c_long
        self.prctl = libc.prctl
        self.prctl.restype = ctypes.c_int
        api = ctypes.pythonapi
        for name in ("PyOS_BeforeFork", "PyOS_AfterFork_Parent", "PyOS_AfterFork_Child"):
            getattr(api, name).restype = None
            getattr(api, name).argtypes = []
        self.api = api
        # glibc keeps the calling thread's id in its thread descriptor; the kernel writes the
        # child's id there (CLONE_CHILD_SETTID at the address glibc registered), as glibc's fork.
        address = ctypes.c_void_p()
        if self.prctl(_PR_GET_TID_ADDRESS, ctypes.byref(address), 0, 0, 0) == 0 and address.value:
            self.tid_address = address.value
            self.flags = _CLONE_PARENT | _CLONE_CHILD_SETTID | _CLONE_CHILD_CLEARTID | _SIGCHLD
        else:
            self.tid_address = 0
            self.flags = _CLONE_PARENT | _SIGCHLD

    def __call__(self, cgroup_directory: Optional[int] = None) -> Tuple[int, bool]:
        """(0 in the new process, its pid in this one; whether it was created in
        ``cgroup_directory``, a cgroup2 directory). Raises OSError when no process came."""
        c_long = ctypes.c_long
        tid = ctypes.c_void_p(self.tid_address or None)
        in_cgroup = False
        self.api.PyOS_BeforeFork()
        pid = -1
        code = 0
        if cgroup_directory is not None:
            # clone3: flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
            # set_tid, set_tid_size, cgroup. With CLONE_PARENT the exit signal is the parent's.
            flags = (self.flags & ~0xFF) | _CLONE_INTO_CGROUP
            args = (ctypes.c_uint64 * 11)(flags, 0, self.tid_address, 0, 0, 0, 0, 0, 0, 0, cgroup_directory)
            pid = self.syscall(c_long(_SYS_CLONE3), ctypes.byref(args), c_long(ctypes.sizeof(args)))
            if pid >= 0:
                in_cgroup = True
            else:
                code = ctypes.get_errno()
        if pid < 0 and (cgroup_directory is None or code in _CLONE3_REFUSALS):
            if self.machine == "x86_64":
                # clone(flags, stack, parent_tid, child_tid, tls)
                pid = self.syscall(c_long(self.number), c_long(self.flags), None, None, tid, None)
            else:
                # clone(flags, stack, parent_tid, tls, child_tid)
                pid = self.syscall(c_long(self.number), c_long(self.flags), None, None, None, tid)
            code = ctypes.get_errno()
        if pid == 0:
            self.api.PyOS_AfterFork_Child()
            return 0, in_cgroup
        self.api.PyOS_AfterFork_Parent()
        if pid < 0:
            raise OSError(code, os.strerror(code))
        return pid, in_cgroup


def serve_forks_if_asked(worker) -> None:
    """Returns at once unless this process was started as a fork server; then serves until the
    executor closes the control socket and exits, except in each forked worker, where it returns
    (with descriptors 1-4 and the environment in place) for the worker to serve as usual."""
    variable = os.environ.pop(wire.FORK_SERVER_VARIABLE, None)
    if variable is None:
        return
    try:
        control = int(variable)
    except ValueError:
        control = -1
    threads = thread_count()
    if threads > 1:
        # A fork copies only the calling thread; locks other threads held stay locked in every
        # copy. Serve as an ordinary worker: the executor then spawns each one.
        _say(f"worker {worker.name}: {threads} threads before run(), so not a fork server")
        return
    if control <= 4 or not _is_open(control):
        return
    try:
        clone = _Clone()
        server = socket.socket(fileno=control)
        if server.type != socket.SOCK_SEQPACKET:
            server.detach()
            raise ForkUnavailable(f"descriptor {control} is not a SOCK_SEQPACKET socket")
    except (ForkUnavailable, AttributeError, OSError) as problem:
        _say(f"worker {worker.name}: cannot fork the executor's way ({problem}), so not a fork server")
        return
    hello = wire.Hello(
        worker_name=worker.name,
        functions=worker.function_names,
        concurrency=worker.concurrency,
        fork_server=True,
        fork_server_joins_cgroups=True,
        fork_server_creates_in_cgroup=True,
    )
    data = wire.frame(wire.encode_from_worker(hello))
    try:
        while data:
            data = data[os.write(4, data) :]
    except OSError as error:
        _fail(f"worker {worker.name}: the fork server's hello failed ({error})")
    os.close(3)
    os.close(4)
    # Everything allocated so far is left alone by the garbage collector from now on, so that
    # collections in the forked workers do not copy the server's pages.
    gc.freeze()
    outcome = _serve(server, clone)
    if outcome == "worker":
        return
    if outcome:
        _fail(f"worker {worker.name}: the fork server stopped: {outcome}")
    from .worker import _exit

    _exit(0)


def _serve(server: socket.socket, clone: _Clone):
    """Serves requests; "worker" in each forked worker, "" when the executor closed the socket,
    a reason when serving failed."""
    server.setblocking(True)
    ancillary_size = socket.CMSG_SPACE((4 + MAXIMUM_JOINS) * 4)
    while True:
        try:
            data, ancillary, flags, _ = server.recvmsg(
                len(MAGIC) + MAXIMUM_ENVIRONMENT + 1, ancillary_size, socket.MSG_CMSG_CLOEXEC
            )
        except InterruptedError:
            continue
        except OSError as error:
            return str(error)
        received = _descriptors(ancillary)
        if not data and not received:
            return ""
        problem = 0
        # The ancillary buffer holds four descriptors and MAXIMUM_JOINS: more come as MSG_CTRUNC.
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            problem = errno.E2BIG
        elif not data.startswith(MAGIC) or len(received) < 4:
            problem = errno.EPROTO
        if problem:
            for fd in received:
                os.close(fd)
            if not _reply(server, -problem):
                return "the executor's end of the control socket broke"
            continue
        # Unflushed output of the server would otherwise be written again by every worker.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):
                pass
        joins, directory = _split_cgroup_descriptors(received[4:])
        in_cgroup = False
        try:
            pid, in_cgroup = clone(directory)
        except OSError as error:
            pid = -(error.errno or errno.EIO)
        if pid == 0:
            server.detach()
            if directory is not None and not in_cgroup:
                # Created where the server is: the new worker joins the directory's cgroup.procs.
                _join_cgroups([_open_procs(directory, received[1])], received[1])
            _join_cgroups(joins, received[1])
            try:
                _become_worker(received, data[len(MAGIC) :], clone.syscall)
            except BaseException as error:  # nobody else could report it: the pipes are ours
                _say(f"a forked worker could not start: {error}")
                os._exit(127)
            return "worker"
        for fd in received:
            os.close(fd)
        if not _reply(server, pid):
            return "the executor's end of the control socket broke"


def _descriptors(ancillary) -> List[int]:
    fds: List[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % 4
            fds.extend(struct.unpack(f"{usable // 4}i", payload[:usable]))
    most = 4 + MAXIMUM_JOINS
    for fd in fds[most:]:
        os.close(fd)
    return fds[:most]


def _split_cgroup_descriptors(descriptors: List[int]) -> Tuple[List[int], Optional[int]]:
    """The cgroup files of a request, and the cgroup2 directory among them (the first one)."""
    files: List[int] = []
    directory: Optional[int] = None
    for fd in descriptors:
        try:
            is_directory = stat.S_ISDIR(os.fstat(fd).st_mode)
        except OSError:
            is_directory = False
        if is_directory and directory is None:
            directory = fd
        else:
            files.append(fd)
    return files, directory


def _open_procs(directory: int, stderr: int) -> int:
    """In the new worker: the ``cgroup.procs`` of the cgroup2 directory it was not created in; one
    that cannot be opened is named on its stderr, and the new worker exits."""
    try:
        return os.open("cgroup.procs", os.O_WRONLY | os.O_CLOEXEC, dir_fd=directory)
    except OSError as error:
        _cannot_join("cgroup.procs", os.strerror(error.errno or errno.EIO), stderr)


def _join_cgroups(joins: List[int], stderr: int) -> None:
    """In the new worker, first of all: writes ``0`` to each cgroup file of the request (v1
    ``tasks``, v2 ``cgroup.procs``). One that fails is named on the new worker's stderr, and the
    new worker exits: it must not run outside its cgroup."""
    for fd in joins:
        try:
            if os.write(fd, b"0") == 1:
                continue
            reason = "short write"
        except OSError as error:
            reason = os.strerror(error.errno) if error.errno else str(error)
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = "unknown file"
        _cannot_join(target, reason, stderr)


def _cannot_join(what: str, reason: str, stderr: int) -> None:
    """In the new worker: says which cgroup it cannot join on its stderr, and exits."""
    line = f"fork server: the new worker cannot join its cgroup ({what}): {reason}\n"
    try:
        os.write(stderr, line.encode("utf-8", "replace"))
    except OSError:
        pass
    os._exit(JOIN_FAILED_STATUS)


def _reply(server: socket.socket, value: int) -> bool:
    try:
        server.send(struct.pack("=i", value), socket.MSG_NOSIGNAL)
        return True
    except OSError:
        return False


def _become_worker(received: List[int], environment: bytes, syscall) -> None:
    # Park the received descriptors above the targets first, so no dup2 clobbers a source.
    parked = [_dup_above(fd, 16) for fd in received]
    for target, fd in enumerate(parked, start=1):
        os.dup2(fd, target)
    _close_from(5, syscall)
    os.setsid()
    for name, value in parse_environment(environment):
        os.environb[name] = value


def _dup_above(fd: int, lowest: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)


def _close_from(lowest: int, syscall) -> None:
    """Closes every descriptor from `lowest` up: close_range(2) through the server's own `syscall`
    (made once, before any fork: each worker making its own costs it time and copied pages)."""
    try:
        if syscall(ctypes.c_long(_SYS_CLOSE_RANGE), ctypes.c_uint(lowest), ctypes.c_uint(0xFFFFFFFF), 0) == 0:
            return
    except (AttributeError, OSError, ctypes.ArgumentError):
        pass
    os.closerange(lowest, os.sysconf("SC_OPEN_MAX"))


def parse_environment(block: bytes) -> List[Tuple[bytes, bytes]]:
    """``NAME=value\\0`` entries; an unterminated tail, an entry without ``=`` or with an empty
    name is skipped (as the C fork server does)."""
    entries = []
    parts = block.split(b"\0")
    for entry in parts[:-1]:  # the last part is what follows the final NUL: not an entry
        name, equals, value = entry.partition(b"=")
        if equals and name:
            entries.append((name, value))
    return entries


def thread_count() -> int:
    """Threads in this process (any started from C too), from /proc/self/stat."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        import threading

        return threading.active_count()
    fields = text[text.rfind(b")") + 1 :].split()
    # "pid (comm) state ppid …": num_threads is the 18th field after the command.
    return int(fields[17]) if len(fields) > 17 else 0


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _say(text: str) -> None:
    data = (text + "\n").encode("utf-8", "replace")
    try:
        while data:
            data = data[os.write(2, data) :]
    except OSError:
        pass


def _fail(text: str) -> None:
    _say(text)
    os._exit(1)

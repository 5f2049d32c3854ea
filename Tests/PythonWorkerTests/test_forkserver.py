"""The fork server protocol exactly as the executor drives it (CForkServer.h): this test process
plays the executor, so the forked workers must be *its* children."""

import array
import errno
import json
import os
import socket
import struct
import unittest

from support import PATIENCE, SpawnedWorker, WorkerPipes, environment
from spark_mesos_worker import forkserver, wire


def _read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks).decode()
        chunks.append(chunk)


def _own_cgroup2_directory():
    """This process's own directory in the cgroup2 hierarchy, if it may make cgroups there (root,
    a cgroup2 mount)."""
    try:
        with open("/proc/self/mounts") as mounts:
            root = next((f[1] for f in (line.split() for line in mounts) if len(f) > 2 and f[2] == "cgroup2"), None)
        with open("/proc/self/cgroup") as own:
            path = next((line[3:].strip() for line in own if line.startswith("0::")), None)
    except OSError:
        return None
    if root is None or path is None:
        return None
    directory = os.path.join(root, path.lstrip("/"))
    return directory if os.access(directory, os.W_OK) else None


_OWN_CGROUP2 = _own_cgroup2_directory()


class ForkServerProtocol(unittest.TestCase):
    def start_server(self, **env):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(ours.close)
        server = SpawnedWorker(env=environment(SPARK_MESOS_WORKER_FORK_SERVER="5", **env), control=theirs.fileno())
        theirs.close()
        self.addCleanup(server.close)
        ours.settimeout(PATIENCE)
        return ours, server

    def request(self, control, environment=b"", magic=b"SMEF", descriptors=4, joins=()):
        """Asks for a worker; returns (answer, worker handle) with the worker's pipes as ours.
        `joins` are cgroup.procs files (or anything) the new worker is to join."""
        handle = _Pipes()
        fds = handle.child_ends()[:descriptors] + list(joins)
        control.sendmsg([magic + environment], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        handle.close_child_ends()
        answer = struct.unpack("=i", control.recv(4))[0]
        return answer, handle

    def test_forked_workers_are_our_children_with_fresh_state(self):
        control, server = self.start_server()
        hello = server.receive()
        self.assertTrue(hello.fork_server)
        self.assertTrue(hello.fork_server_joins_cgroups)
        self.assertIn("info", hello.functions)
        # It says nothing more on fd 4 and closes it: the pipe ends.
        self.assertIsNone(server.receive())
        infos = []
        for n in range(3):
            pid, worker = self.request(control, b"TEST_A=%d\0TEST_B=b=c\0=skipped\0noequals\0TEST_TAIL=x" % n)
            self.assertGreater(pid, 0)
            hello = worker.receive()
            self.assertFalse(hello.fork_server)
            worker.send(wire.Run(id=1, task_id=f"t{n}", function="info"), wire.Run(id=2, function="unflushed"))
            result, printed = worker.results(2).values()
            self.assertEqual(result.status, wire.OK, result.error)
            worker.close_input()
            self.assertIsNone(worker.receive())
            # Ours to reap: waitpid fails with ECHILD for anyone else's child.
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)
            self.assertEqual(printed.status, wire.OK)
            self.assertEqual(worker.stdout_text(), f"printed by a closureatexit ran in {pid}\n")
            info = json.loads(result.data)
            infos.append(info)
            self.assertEqual(info["pid"], pid)
            self.assertEqual(info["ppid"], os.getpid())
            self.assertEqual(info["server"], server.pid)
            self.assertEqual(info["session"], pid)  # leads a session of its own
            self.assertEqual(info["process_environment"], {"TEST_A": str(n), "TEST_B": "b=c"})
            self.assertIsNone(info["fork_server_variable"])
            self.assertEqual(info["fds"], [0, 1, 2, 3, 4] + [fd for fd in info["fds"] if fd > 4][:1])
            # os.register_at_fork hooks ran: in the server for every fork so far, in the child once.
            self.assertEqual(info["hooks"], {"before": n + 1, "parent": n, "child": 1})
        # random reseeds itself after a fork (a register_at_fork hook): no two workers agree.
        self.assertEqual(len({info["random"] for info in infos}), 3)
        control.shutdown(socket.SHUT_RDWR)
        self.assertEqual(server.wait(), 0)
        self.assertEqual(server.stdout(), f"atexit ran in {server.pid}\n")

    def test_bad_requests_are_answered_and_serving_goes_on(self):
        control, server = self.start_server()
        self.assertTrue(server.receive().fork_server)
        answer, _ = self.request(control, magic=b"NOPE")
        self.assertEqual(answer, -errno.EPROTO)
        answer, _ = self.request(control, descriptors=3)
        self.assertEqual(answer, -errno.EPROTO)
        control.send(b"SMEF")  # no descriptors at all
        self.assertEqual(struct.unpack("=i", control.recv(4))[0], -errno.EPROTO)
        # More cgroup.procs files than a request may carry: refused, none joined.
        nulls = [os.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC) for _ in range(forkserver.MAXIMUM_JOINS + 1)]
        try:
            answer, _ = self.request(control, joins=nulls)
        finally:
            for fd in nulls:
                os.close(fd)
        self.assertEqual(answer, -errno.E2BIG)
        pid, worker = self.request(control)
        self.assertGreater(pid, 0)
        self.assertIsInstance(worker.receive(), wire.Hello)
        worker.send(wire.Run(id=1, function="echo", payload=b"still serving"))
        self.assertEqual(worker.receive().data, b"still serving")
        worker.close_input()
        os.waitpid(pid, 0)
        control.close()
        self.assertEqual(server.wait(), 0)

    def test_a_program_with_threads_declines(self):
        control, server = self.start_server(TEST_WORKER_THREAD="1")
        hello = server.receive()
        self.assertFalse(hello.fork_server)
        server.send(wire.Run(id=1, function="echo", payload=b"plain worker"))
        self.assertEqual(server.receive().data, b"plain worker")
        server.close_input()
        self.assertEqual(server.wait(), 0)
        self.assertIn("threads before run(), so not a fork server", server.stderr())

    def test_a_dead_worker_is_reported_to_us(self):
        control, server = self.start_server()
        server.receive()
        pid, worker = self.request(control)
        worker.receive()
        worker.send(wire.Run(id=1, function="exit3"))
        self.assertIsNone(worker.receive())
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 3)
        control.close()
        self.assertEqual(server.wait(), 0)

    @unittest.skipUnless(_OWN_CGROUP2, "no cgroup2 hierarchy this test may write")
    def test_a_new_worker_joins_the_cgroups_of_its_request_before_its_hello(self):
        """Carried as its cgroup.procs file (written "0" to) or as its directory (created in it, or
        where the kernel refuses that, joined through its cgroup.procs): inside before its hello."""
        control, server = self.start_server()
        hello = server.receive()
        self.assertTrue(hello.fork_server_joins_cgroups and hello.fork_server_creates_in_cgroup)
        for carried in ("procs", "directory"):
            with self.subTest(carried=carried):
                scratch = os.path.join(_OWN_CGROUP2, f"fork-join-test-{os.getpid()}-{carried}")
                os.makedirs(scratch, exist_ok=True)
                self.addCleanup(os.rmdir, scratch)
                if carried == "procs":
                    join = os.open(os.path.join(scratch, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
                else:
                    join = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    pid, worker = self.request(control, joins=[join])
                finally:
                    os.close(join)
                self.assertGreater(pid, 0)
                self.assertIsInstance(worker.receive(), wire.Hello)
                with open(os.path.join(scratch, "cgroup.procs")) as procs:
                    self.assertEqual(procs.read().split(), [str(pid)])
                worker.close_input()
                _, status = os.waitpid(pid, 0)
                self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        # A directory that is no cgroup: no worker in it, and serving goes on.
        plain = os.open("/tmp", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            pid, worker = self.request(control, joins=[plain])
        finally:
            os.close(plain)
        if pid > 0:
            # A kernel without clone3's CLONE_INTO_CGROUP: the new worker finds no cgroup.procs.
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), forkserver.JOIN_FAILED_STATUS)
        pid, worker = self.request(control)
        self.assertIsInstance(worker.receive(), wire.Hello)
        worker.close_input()
        os.waitpid(pid, 0)
        control.close()
        self.assertEqual(server.wait(), 0)

    def test_a_new_worker_that_cannot_join_its_cgroup_says_why_and_exits_before_its_hello(self):
        control, server = self.start_server()
        server.receive()
        unwritable = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        try:
            pid, worker = self.request(control, joins=[unwritable])
        finally:
            os.close(unwritable)
        self.assertGreater(pid, 0)
        self.assertIsNone(worker.receive())
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), forkserver.JOIN_FAILED_STATUS)
        self.assertEqual(
            worker.stderr_text(), "fork server: the new worker cannot join its cgroup (/dev/null): Bad file descriptor\n"
        )
        # The server goes on serving.
        pid, worker = self.request(control)
        self.assertIsInstance(worker.receive(), wire.Hello)
        worker.close_input()
        os.waitpid(pid, 0)
        control.close()
        self.assertEqual(server.wait(), 0)

    def test_environment_block_parsing(self):
        self.assertEqual(
            forkserver.parse_environment(b"A=1\0B=\0=x\0C\0D=a=b\0tail"),
            [(b"A", b"1"), (b"B", b""), (b"D", b"a=b")],
        )
        self.assertEqual(forkserver.parse_environment(b""), [])


class _Pipes(WorkerPipes):
    """A new worker's descriptors (stdout, stderr, its fd 3, its fd 4) and our ends of them."""

    def __init__(self):
        self.stdout_read, stdout_write = os.pipe()
        self.stderr_read, stderr_write = os.pipe()
        to_read, to_worker = os.pipe()
        from_worker, from_write = os.pipe()
        super().__init__(to_worker, from_worker)
        self._child = [stdout_write, stderr_write, to_read, from_write]

    def child_ends(self):
        return list(self._child)

    def close_child_ends(self):
        for fd in self._child:
            os.close(fd)
        self._child = []

    def stdout_text(self):
        return _read_all(self.stdout_read)

    def stderr_text(self):
        return _read_all(self.stderr_read)


if __name__ == "__main__":
    unittest.main()

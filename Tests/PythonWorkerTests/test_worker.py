"""The worker library over real pipes, as the executor drives it: hello, runs, results, cancels,
the end of input, bad input."""

import json
import unittest

from support import SpawnedWorker, environment
from spark_mesos_worker import wire


class WorkerProtocol(unittest.TestCase):
    def start(self, **env):
        worker = SpawnedWorker(env=environment(**env))
        self.addCleanup(worker.close)
        hello = worker.receive()
        self.assertIsInstance(hello, wire.Hello)
        return worker, hello

    def test_hello_then_results(self):
        worker, hello = self.start()
        self.assertEqual(hello.protocol_version, 1)
        self.assertEqual(hello.worker_name, "test-worker")
        self.assertEqual(hello.concurrency, 1)
        self.assertFalse(hello.fork_server)
        self.assertIn("echo", hello.functions)
        self.assertIn("upper", hello.functions)  # decorator without a name: the function's own
        try:
            import cloudpickle  # noqa: F401

            self.assertIn("python.cloudpickle", hello.functions)
        except ImportError:
            self.assertNotIn("python.cloudpickle", hello.functions)
        self.assertEqual(hello.functions, sorted(hello.functions))
        worker.send(
            wire.Run(id=1, task_id="t1", function="echo", payload=b"\0bytes\xff"),
            wire.Run(id=2, task_id="t2", function="upper", payload=b"abc"),
            wire.Run(id=3, task_id="t3", function="boom", payload=b"x"),
            wire.Run(id=4, task_id="t4", function="missing"),
            wire.Run(id=5, task_id="t5", function="returns-int"),
            wire.Run(id=6, task_id="t6", function="info", environment={"K": "V"}),
            wire.Run(id=7, task_id="t7", function="unflushed"),
            wire.Run(id=8, task_id="t8", function="surrogates"),
        )
        results = worker.results(8)
        self.assertEqual(results[1], wire.Result(id=1, status=wire.OK, data=b"\0bytes\xff"))
        self.assertEqual(results[2].data, b"ABC")
        self.assertEqual(results[3], wire.Result(id=3, status=wire.ERROR, error="ValueError: bad value: x"))
        self.assertEqual(results[4].status, wire.UNKNOWN_FUNCTION)
        self.assertIn("worker 'test-worker' has no function 'missing' (it offers: ", results[4].error)
        self.assertEqual(results[5].status, wire.ERROR)
        self.assertIn("ResultTypeError: function 'returns-int' returned int", results[5].error)
        # @worker.function without parentheses registers under the function's name; text that is
        # not UTF-8 arrives with replacement characters.
        self.assertEqual(results[8], wire.Result(id=8, status=wire.ERROR, error="OSError: cannot open caf\ufffd"))
        info = json.loads(results[6].data)
        self.assertEqual((info["task_id"], info["environment"]), ("t6", {"K": "V"}))
        worker.close_input()
        self.assertIsNone(worker.receive())
        self.assertEqual(worker.wait(), 0)
        stderr = worker.stderr()
        self.assertIn("run 3 (task 't3') of function 'boom' raised:\nTraceback", stderr)
        self.assertIn("ValueError: bad value: x", stderr)
        # The process ends without interpreter teardown, but buffers are flushed and atexit runs.
        self.assertEqual(worker.stdout(), f"printed by a closureatexit ran in {worker.pid}\n")

    def test_cancel_running_and_queued_runs(self):
        worker, _ = self.start(TEST_WORKER_CONCURRENCY="2")
        # Run 2 ends only once run 1 has begun; run 3 waits for a free slot.
        worker.send(
            wire.Run(id=1, function="announced-nap"),
            wire.Run(id=2, function="wait-for-peer"),
            wire.Run(id=3, function="nap"),
            wire.Run(id=4, function="echo", payload=b"queued"),
        )
        self.assertEqual(worker.results(1)[2].data, b"after peer")
        worker.send(wire.Cancel(id=4), wire.Cancel(id=1), wire.Cancel(id=99))
        results = worker.results(2)
        self.assertEqual(results[1], wire.Result(id=1, status=wire.CANCELLED, error="cancelled"))
        self.assertEqual(results[4], wire.Result(id=4, status=wire.CANCELLED, error="cancelled before it started"))
        worker.send(wire.Cancel(id=3))
        self.assertEqual(worker.results(1)[3].status, wire.CANCELLED)
        # A cancel for a run that already ended changes nothing.
        worker.send(wire.Run(id=5, function="echo", payload=b"after"), wire.Cancel(id=1))
        self.assertEqual(worker.results(1)[5].data, b"after")
        worker.close_input()
        self.assertEqual(worker.wait(), 0)

    def test_closing_input_cancels_what_runs_and_the_worker_exits(self):
        worker, _ = self.start()
        worker.send(wire.Run(id=1, function="nap"), wire.Run(id=2, function="echo"))
        worker.close_input()
        results = worker.results(2)
        self.assertEqual(results[1].status, wire.CANCELLED)
        self.assertEqual(results[2].status, wire.CANCELLED)
        self.assertIsNone(worker.receive())
        self.assertEqual(worker.wait(), 0)

    def test_concurrency_runs_closures_at_once(self):
        worker, hello = self.start(TEST_WORKER_CONCURRENCY="2")
        self.assertEqual(hello.concurrency, 2)
        # "wait-for-peer" finishes only after "peer" ran, which needs a second slot.
        worker.send(wire.Run(id=1, function="wait-for-peer"), wire.Run(id=2, function="peer"))
        results = worker.results(2)
        self.assertEqual((results[1].data, results[2].data), (b"after peer", b"peer"))
        worker.close_input()
        self.assertEqual(worker.wait(), 0)

    def test_many_runs_each_answered_once(self):
        worker, _ = self.start()
        count = 5000
        worker.send(*(wire.Run(id=n, function="echo", payload=b"%d" % n) for n in range(1, count + 1)))
        results = worker.results(count)
        self.assertEqual(sorted(results), list(range(1, count + 1)))
        self.assertTrue(all(r.data == b"%d" % n for n, r in results.items()))
        worker.close_input()
        self.assertIsNone(worker.receive())
        self.assertEqual(worker.wait(), 0)

    def test_bad_input_ends_the_worker_with_a_reason(self):
        for data, text in {
            b"xyz\n": "malformed RecordIO framing",
            b"3\n\x0b\x00\x00": "unsupported wire type 3",
            b"5\nab": "the executor's pipe ended inside a message",
        }.items():
            with self.subTest(data=data):
                worker, _ = self.start()
                import os

                os.write(worker.to_worker, data)
                worker.close_input()
                self.assertIsNone(worker.receive())
                self.assertEqual(worker.wait(), 1)
                self.assertIn(text, worker.stderr())


if __name__ == "__main__":
    unittest.main()

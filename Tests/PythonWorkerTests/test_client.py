"""The framework-side helpers, and python.cloudpickle in a real worker process."""

import base64
import json
import unittest

from support import SpawnedWorker, fixture
from spark_mesos_worker import client, wire

try:
    import cloudpickle
except ImportError:  # the helpers for pickled calls need it; the rest does not
    cloudpickle = None


class ClosureMessages(unittest.TestCase):
    def test_closure_data_as_protobuf_and_json(self):
        self.assertEqual(
            client.closure_data("python.cloudpickle", b"\x80\x05pickle", {"SEED": "7"}), fixture("closure.bin")
        )
        self.assertEqual(
            json.loads(client.closure_data("pi", "100000", {"SEED": "7"}, encoding="json")),
            {"function": "pi", "payload": "MTAwMDAw", "environment": {"SEED": "7"}},
        )
        self.assertEqual(json.loads(client.closure_data("noop", encoding="json")), {"function": "noop"})

    def test_mini_task_batch(self):
        tasks = [client.mini_task("m1", "echo", "hi"), client.mini_task("m2", "pi", b"1000", {"K": "V"})]
        self.assertEqual(client.mini_task_batch(tasks), fixture("mini-task-batch.bin"))
        self.assertEqual(
            json.loads(client.mini_task_batch(tasks, encoding="json")),
            {
                "tasks": [
                    {"id": "m1", "function": "echo", "payload": "aGk="},
                    {"id": "m2", "function": "pi", "payload": "MTAwMA==", "environment": {"K": "V"}},
                ]
            },
        )

    def test_result_files_to_release(self):
        task = client.mini_task("m4", "echo", "x")
        paths = ["/sandbox/results/mini-m1", "/sandbox/results/t1"]
        self.assertEqual(client.mini_task_batch([task], release=paths), fixture("release-batch.bin"))
        self.assertEqual(client.release_results(["/sandbox/results/mini-m1"]), fixture("release-only.bin"))
        self.assertEqual(client.release_results("/sandbox/results/mini-m1"), fixture("release-only.bin"))
        self.assertEqual(
            json.loads(client.release_results(paths, encoding="json")), {"release": paths}
        )
        self.assertEqual(
            json.loads(client.mini_task_batch([task], release=paths, encoding="json")),
            {"tasks": [{"id": "m4", "function": "echo", "payload": "eA=="}], "release": paths},
        )
        with self.assertRaisesRegex(TypeError, "a result file to release is a non-empty str path"):
            client.release_results([""])

    def test_bad_arguments_are_refused_clearly(self):
        with self.assertRaisesRegex(ValueError, "function must be a non-empty str"):
            client.closure_data("")
        with self.assertRaisesRegex(TypeError, "a payload is bytes or str, not int"):
            client.closure_data("f", 3)
        with self.assertRaisesRegex(TypeError, "environment entries must be str to str"):
            client.closure_data("f", b"", {"A": 1})
        with self.assertRaisesRegex(ValueError, "encoding must be"):
            client.closure_data("f", encoding="xml")
        with self.assertRaisesRegex(TypeError, "a batch holds MiniTask values"):
            client.mini_task_batch([("m1", "echo", b"")])

    def test_decode_results_both_encodings(self):
        results = client.decode_results(fixture("mini-task-results.bin"))
        self.assertEqual([(r.id, r.state, r.ok) for r in results], [("m1", "FINISHED", True), ("m2", "FAILED", False), ("m3", "FINISHED", True)])
        self.assertEqual((results[0].data, results[1].error, results[2].data_file), (b"hi", "closure 'pi' threw: boom", "results/m3"))
        document = {"results": [{"id": "m2", "state": "FINISHED", "data": "aGk="}, {"id": "x", "state": "LOST", "error": "gone", "data_file": ""}]}
        results = client.decode_results(json.dumps(document).encode())
        self.assertEqual([(r.id, r.state, r.data, r.error) for r in results], [("m2", "FINISHED", b"hi", ""), ("x", "LOST", b"", "gone")])
        for bad, text in {b"{nope": "not MiniTaskResults JSON", b'{"results": [{"data": "!!"}]}': "not base64", b"\x0b": "not MiniTaskResults"}.items():
            with self.subTest(bad=bad):
                with self.assertRaisesRegex(ValueError, text):
                    client.decode_results(bad)


@unittest.skipUnless(cloudpickle, "cloudpickle is not installed (Debian: python3-cloudpickle)")
class PickledCalls(unittest.TestCase):
    def test_a_worker_runs_a_pickled_closure_with_captured_variables(self):
        base = 10
        table = {"a": 1, "b": 2}

        def combine(key, scale=1):
            return {"sum": (base + table[key]) * scale, "pair": (key, base)}

        closure = wire.decode_closure(client.closure_data_for_call(combine, "b", scale=3))
        self.assertEqual(closure.function, "python.cloudpickle")
        worker = SpawnedWorker()
        self.addCleanup(worker.close)
        worker.receive()
        worker.send(
            wire.Run(id=1, function=closure.function, payload=closure.payload),
            wire.Run(id=2, function="python.cloudpickle", payload=client.pickle_call(lambda: 1 / 0)),
            wire.Run(id=3, function="python.cloudpickle", payload=b"not a pickle"),
            wire.Run(id=4, function="python.cloudpickle", payload=cloudpickle.dumps([1, 2])),
            wire.Run(id=5, function="python.cloudpickle", payload=client.mini_task_for_call("m", pow, 2, 10).payload),
        )
        results = worker.results(5)
        self.assertEqual(results[1].status, wire.OK, results[1].error)
        self.assertEqual(client.load_value(results[1].data), {"sum": 36, "pair": ("b", 10)})
        self.assertEqual(results[2], wire.Result(id=2, status=wire.ERROR, error="ZeroDivisionError: division by zero"))
        self.assertEqual(results[3].status, wire.ERROR)
        self.assertIn("PayloadError: the payload could not be unpickled", results[3].error)
        self.assertIn("must be a cloudpickled (function, args, kwargs) tuple, not list", results[4].error)
        self.assertEqual(client.load_value(results[5].data), 1024)
        worker.close_input()
        self.assertEqual(worker.wait(), 0)

    def test_mini_task_for_call(self):
        task = client.mini_task_for_call("m7", max, 3, 9)
        self.assertEqual((task.id, task.function), ("m7", "python.cloudpickle"))
        function, args, kwargs = cloudpickle.loads(task.payload)
        self.assertEqual(function(*args, **kwargs), 9)
        self.assertEqual(base64.b64decode(json.loads(client.mini_task_batch([task], encoding="json"))["tasks"][0]["payload"]), task.payload)


if __name__ == "__main__":
    unittest.main()

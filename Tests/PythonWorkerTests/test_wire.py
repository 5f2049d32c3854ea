"""The hand-written codec against protoc's encoding of worker.proto (fixtures/*.bin)."""

import unittest

from support import fixture
from spark_mesos_worker import wire


class GoldenBytes(unittest.TestCase):
    def test_hello_encodes_as_protoc_does(self):
        hello = wire.Hello(worker_name="py-worker", functions=["echo", "python.cloudpickle"], concurrency=4)
        self.assertEqual(wire.encode_from_worker(hello), fixture("hello.bin"))
        self.assertEqual(wire.decode_from_worker(fixture("hello.bin")), hello)

    def test_fork_server_hello(self):
        hello = wire.Hello(worker_name="w", functions=["a"], concurrency=1, fork_server=True)
        self.assertEqual(wire.encode_from_worker(hello), fixture("hello-fork-server.bin"))
        self.assertEqual(wire.decode_from_worker(fixture("hello-fork-server.bin")), hello)
        # Its cgroup flags (fields 6 and 7), both ways.
        flags = wire.Hello(
            worker_name="w",
            functions=[],
            concurrency=1,
            fork_server=True,
            fork_server_joins_cgroups=True,
            fork_server_creates_in_cgroup=True,
        )
        encoded = wire.encode_from_worker(flags)
        self.assertTrue(encoded.endswith(bytes([0x30, 0x01, 0x38, 0x01])))
        self.assertEqual(wire.decode_from_worker(encoded), flags)

    def test_results(self):
        cases = {
            "result-ok.bin": wire.Result(id=300, status=wire.OK, data="résultat".encode() + b"\0\xff"),
            "result-error.bin": wire.Result(id=2**64 - 1, status=wire.ERROR, error="ValueError: café"),
            "result-unknown.bin": wire.Result(id=1, status=wire.UNKNOWN_FUNCTION, error="no such function"),
        }
        for name, result in cases.items():
            with self.subTest(name):
                self.assertEqual(wire.encode_from_worker(result), fixture(name))
                self.assertEqual(wire.decode_from_worker(fixture(name)), result)

    def test_run_and_cancel_decode(self):
        run = wire.decode_to_worker(fixture("run.bin"))
        self.assertEqual(
            run,
            wire.Run(id=129, task_id="task-1", function="echo", payload=b"\0\1\2hello", environment={"A": "1", "B": "x=y"}),
        )
        self.assertEqual(wire.encode_to_worker(run), fixture("run.bin"))
        self.assertEqual(wire.decode_to_worker(fixture("run-empty.bin")), wire.Run())
        self.assertEqual(wire.decode_to_worker(fixture("cancel.bin")), wire.Cancel(id=7))
        self.assertEqual(wire.encode_to_worker(wire.Cancel(id=7)), fixture("cancel.bin"))

    def test_client_messages(self):
        closure = wire.Closure("python.cloudpickle", b"\x80\x05pickle", {"SEED": "7"})
        self.assertEqual(wire.encode_closure(closure), fixture("closure.bin"))
        self.assertEqual(wire.decode_closure(fixture("closure.bin")), closure)
        tasks = [wire.MiniTask("m1", "echo", b"hi"), wire.MiniTask("m2", "pi", b"1000", {"K": "V"})]
        self.assertEqual(wire.encode_mini_task_batch(tasks), fixture("mini-task-batch.bin"))
        self.assertEqual(wire.decode_mini_task_batch(fixture("mini-task-batch.bin")), tasks)
        results = [
            wire.MiniTaskResult("m1", "FINISHED", b"hi"),
            wire.MiniTaskResult("m2", "FAILED", error="closure 'pi' threw: boom"),
            wire.MiniTaskResult("m3", "FINISHED", data_file="results/m3"),
        ]
        self.assertEqual(wire.encode_mini_task_results(results), fixture("mini-task-results.bin"))
        self.assertEqual(wire.decode_mini_task_results(fixture("mini-task-results.bin")), results)


class Robustness(unittest.TestCase):
    def test_unknown_fields_are_skipped(self):
        # field 9 varint, field 10 fixed64, field 11 bytes, field 12 fixed32, then the cancel.
        extra = b"\x48\x05" + b"\x51" + bytes(8) + b"\x5a\x02ab" + b"\x65" + bytes(4)
        self.assertEqual(wire.decode_to_worker(extra + fixture("cancel.bin")), wire.Cancel(id=7))

    def test_malformed_messages_say_what_is_wrong(self):
        cases = {
            b"": "neither run nor cancel",
            b"\x0a": "truncated varint",
            b"\x0a\x05ab": "runs past the end",
            b"\x0b": "unsupported wire type 3",
            b"\x00\x01": "field number 0",
            b"\x08\x01": "run is not length-delimited",
            b"\x0a\x02\x12\x01": "runs past the end",
            b"\x0a\x03\x1a\x01\xff": "run.function is not UTF-8",
            b"\x0a\x0c" + b"\x08" + b"\xff" * 11: "varint too long",
        }
        for data, text in cases.items():
            with self.subTest(data=data):
                with self.assertRaises(wire.WireError) as caught:
                    wire.decode_to_worker(data)
                self.assertIn(text, str(caught.exception))

    def test_unknown_result_status_is_refused(self):
        with self.assertRaisesRegex(wire.WireError, "status 9"):
            wire.decode_from_worker(b"\x12\x02\x10\x09")


class Framing(unittest.TestCase):
    def test_frames_whatever_the_read_boundaries(self):
        frames = [b"", b"x", bytes(range(256)) * 40, b"\n\n12\n"]
        stream = b"".join(wire.frame(f) for f in frames)
        for step in (1, 2, 3, 7, 4096, len(stream)):
            with self.subTest(step=step):
                decoder = wire.FrameDecoder()
                got = []
                for start in range(0, len(stream), step):
                    decoder.feed(stream[start : start + step])
                    got.extend(decoder.frames())
                self.assertEqual(got, frames)
                self.assertEqual(decoder.pending_byte_count, 0)

    def test_bad_prefixes(self):
        for data, text in {
            b"\n": "empty length prefix",
            b"12x\n": "length prefix",
            b"abc": "length prefix",
            b"1" * 21: "length prefix",
            b"-1\n": "length prefix",
        }.items():
            with self.subTest(data=data):
                decoder = wire.FrameDecoder()
                decoder.feed(data)
                with self.assertRaisesRegex(wire.WireError, text):
                    decoder.next()

    def test_oversize_frame(self):
        decoder = wire.FrameDecoder(maximum_frame_size=10)
        decoder.feed(b"11\n")
        with self.assertRaisesRegex(wire.WireError, "exceeds the limit of 10 bytes"):
            decoder.next()


if __name__ == "__main__":
    unittest.main()

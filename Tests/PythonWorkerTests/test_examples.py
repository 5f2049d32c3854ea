"""The Python examples of the harness (Sources/Harness/Examples/python) pass as documented."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

from support import PATIENCE, ROOT, harness, require_harness

EXAMPLES = os.path.join(ROOT, "Sources", "Harness", "Examples", "python")


@require_harness
class PythonExamples(unittest.TestCase):
    def run_harness(self, *arguments):
        process = subprocess.run(
            [*arguments], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=PATIENCE * 3
        )
        output = process.stdout.decode("utf-8", "replace")
        self.assertEqual(process.returncode, 0, output)
        return output

    def report(self, path):
        with open(path) as file:
            report = json.load(file)
        self.assertTrue(report["passed"])
        return report["runs"][0]

    def test_job_files(self):
        with tempfile.TemporaryDirectory() as directory:
            for mode in ("coarse", "fine"):
                with self.subTest(mode):
                    out = os.path.join(directory, f"{mode}.json")
                    self.run_harness(harness(), os.path.join(EXAMPLES, f"{mode}.json"), "--report", out, "--plain")
                    run = self.report(out)
                    tasks = {t["id"]: t for t in run["tasks"]}
                    self.assertEqual(tasks["primes"]["result"], "78498")
                    self.assertIn("RuntimeError: on purpose", tasks["fails"]["error"])
                    self.assertEqual(run["leftover_processes"], [])

    def test_demo_with_pickled_closures(self):
        with tempfile.TemporaryDirectory() as directory:
            self.run_harness(sys.executable, os.path.join(EXAMPLES, "demo.py"), "--harness", harness(), "--report-dir", directory)
            for mode in ("coarse", "fine"):
                run = self.report(os.path.join(directory, f"{mode}.json"))
                self.assertEqual(run["mode"], mode)
                self.assertEqual(len(run["mini_tasks"]), 5)
                self.assertIn("closures in python", {t["id"]: t for t in run["tasks"]}["joined"]["result"])


if __name__ == "__main__":
    unittest.main()

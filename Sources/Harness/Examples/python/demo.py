#!/usr/bin/python3
"""The Python closures demo: what a framework does, end to end, on the harness's local agent.

It pickles closures on the "driver" side with spark_mesos_worker.client (a lambda with captured
variables, and a batch of mini-tasks), writes a job for each mode and runs it under the real
executor with the ready-made worker `python-worker`, which offers python.cloudpickle and nothing
else: the code travels in the payloads. Results are pickles too (a framework reads them with
client.load_value); the harness's table shows their raw bytes.

    Sources/Harness/Examples/python/demo.py [--harness PATH] [--worker PATH] [--report-dir DIR]
"""

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.realpath(__file__))
SOURCE_LIBRARY = os.path.join(HERE, "../../../PythonWorker")

try:
    from spark_mesos_worker import client
except ImportError:
    sys.path.insert(0, SOURCE_LIBRARY)
    from spark_mesos_worker import client


def find_harness(given):
    candidates = [
        given,
        os.environ.get("SPARK_MESOS_HARNESS"),
        os.path.join(HERE, "../../../../.build/debug/spark-mesos-harness"),
        "/usr/libexec/spark-mesos-executor/spark-mesos-harness",
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return os.path.realpath(candidate)
    sys.exit("demo.py: no spark-mesos-harness found: build it (swift build) or pass --harness PATH")


def find_worker(given):
    for candidate in (given, os.path.join(SOURCE_LIBRARY, "python-worker"), "/usr/libexec/spark-mesos-executor/python-worker"):
        if candidate and os.access(candidate, os.X_OK):
            return os.path.realpath(candidate)
    sys.exit("demo.py: no python-worker found")


def payload(data):
    return {"base64": base64.b64encode(data).decode("ascii")}


def job(mode, worker):
    # Driver-side state, captured by the closures and shipped with them.
    rate = 1.07
    years = 10
    grow = lambda amount: round(amount * rate**years, 2)  # noqa: E731 (a lambda on purpose)
    words = ["closures", "in", "python"]
    tasks = [
        {"id": "lambda", "closure": {"function": client.CLOUDPICKLE, "payload": payload(client.pickle_call(grow, 100))}},
        {
            "id": "joined",
            "closure": {"function": client.CLOUDPICKLE, "payload": payload(client.pickle_call(" ".join, words))},
        },
        {
            "id": "raises",
            "closure": {"function": client.CLOUDPICKLE, "payload": payload(client.pickle_call(int, "not a number"))},
            "expect": "failed",
        },
    ]
    minis = [
        {"id": f"square-{n}", "function": client.CLOUDPICKLE, "payload": payload(client.pickle_call(lambda x: x * x, n))}
        for n in range(5)
    ]
    return {
        "name": f"Python closures from the driver ({mode} mode)",
        "executor": {"mode": mode, "worker": worker},
        "tasks": tasks,
        # The batch goes once the tasks have ended: a framework message sent while tasks are still
        # being launched is not answered by this executor version (reported; see the issue notes).
        "steps": [
            {"launch": [t["id"] for t in tasks]},
            {"wait": "all"},
            {"mini_tasks": minis},
            {"wait": "all"},
            {"shutdown": True},
        ],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--harness", help="the spark-mesos-harness program")
    parser.add_argument("--report-dir", help="write <mode>.json reports here")
    parser.add_argument("--worker", help="the python-worker program (default: this tree's, else the installed one)")
    arguments = parser.parse_args()
    harness = find_harness(arguments.harness)
    worker = find_worker(arguments.worker)
    directory = tempfile.mkdtemp(prefix="python-demo-")
    status = 0
    try:
        for mode in ("coarse", "fine"):
            path = os.path.join(directory, f"{mode}.json")
            with open(path, "w") as file:
                json.dump(job(mode, worker), file, indent=1)
            command = [harness, path]
            if arguments.report_dir:
                os.makedirs(arguments.report_dir, exist_ok=True)
                command += ["--report", os.path.join(arguments.report_dir, f"{mode}.json")]
            status = max(status, subprocess.run(command).returncode)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

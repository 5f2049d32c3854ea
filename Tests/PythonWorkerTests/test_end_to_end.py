"""The Python worker under the real executor, driven by the harness (a local agent stand-in):
fine mode with the fork server, and coarse mode. Assertions are on the harness's JSON report."""

import base64
import json
import os
import subprocess
import tempfile
import unittest

from support import LIBRARY, PATIENCE, TEST_WORKER, harness, require_harness
from spark_mesos_worker import client


def closure(task_id, function, payload="", expect=None, **extra):
    task = {"id": task_id, "closure": {"function": function, "payload": payload}}
    if expect:
        task["expect"] = expect
    task.update(extra)
    return task


def pickled(function, *args):
    return {"base64": base64.b64encode(client.pickle_call(function, *args)).decode()}


def scratch(test):
    directory = tempfile.mkdtemp(prefix="python-worker-e2e-")
    test.addCleanup(subprocess.run, ["rm", "-rf", directory])
    return directory


def kills(directory):
    """Tasks killed while their closure surely runs (it made a file another closure waited for):
    one that honours the cancel, one that ignores it (SIGKILL after the grace period)."""
    nap, spin = os.path.join(directory, "nap-runs"), os.path.join(directory, "spin-runs")
    tasks = [
        closure("cooperative", "nap", nap, expect="killed"),
        closure("nap-seen", "await-file", nap),
        closure("stubborn", "spin", spin, expect="killed", kill_grace=1),
        closure("spin-seen", "await-file", spin),
    ]
    steps = [
        {"launch": ["cooperative", "nap-seen"]},
        {"wait": {"nap-seen": "ended"}},
        {"kill": "cooperative"},
        {"launch": ["stubborn", "spin-seen"]},
        {"wait": {"spin-seen": "ended"}},
        {"kill": "stubborn"},
    ]
    return tasks, steps


def run_job(test, job, directory):
    """Runs the job under the harness; returns the run's report (fails the test on a bad run)."""
    os.symlink(TEST_WORKER, os.path.join(directory, "worker.py"))
    executor = job.setdefault("executor", {})
    executor["worker"] = "./worker.py"
    executor.setdefault("properties", {})["spark.executorEnv.PYTHONPATH"] = LIBRARY
    job.setdefault("timeout", PATIENCE)
    path = os.path.join(directory, "job.json")
    with open(path, "w") as file:
        json.dump(job, file)
    report_path = os.path.join(directory, "report.json")
    process = subprocess.run(
        [harness(), path, "--report", report_path, "--plain"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=PATIENCE * 3,
    )
    output = process.stdout.decode("utf-8", "replace")
    test.assertTrue(os.path.exists(report_path), f"no report; harness said:\n{output}")
    with open(report_path) as file:
        report = json.load(file)
    run = report["runs"][0]
    test.assertEqual(run["violations"], [], output)
    test.assertEqual(run["leftover_processes"], [], output)
    test.assertEqual(run["problems"], [], output)
    test.assertTrue(report["passed"], output)
    test.assertEqual(process.returncode, 0, output)
    return run


def by_id(run):
    return {task["id"]: task for task in run["tasks"]}


# Must run where the executor runs it: captured values travel with the function.
FACTOR = 6


def make_closure():
    offset = 0.5
    words = ["captured", "variables"]
    return lambda x: f"{' '.join(words)}: {x * FACTOR + offset}"


FAILURES = [
    closure("raises", "boom", "x", expect="failed"),
    closure("exits", "exit3", expect="failed"),
    closure("signalled", "kill-self", expect="failed"),
    closure("unknown", "no-such-function", expect="error"),
]


@require_harness
class FineMode(unittest.TestCase):
    def test_closures_fork_served(self):
        directory = scratch(self)
        kill_tasks, kill_steps = kills(directory)
        infos = [f"info{n}" for n in range(4)]
        job = {
            "name": "python fine mode",
            "executor": {"mode": "fine"},
            "tasks": [closure("first", "echo", "hello"), closure("server-up", "await-fork-server")]
            + [closure(name, "info") for name in infos]
            + FAILURES
            + [
                closure("after-failures", "upper", "still serving"),
                closure("pickled", "python.cloudpickle", pickled(make_closure(), 7)),
                closure("zombies", "zombies"),
            ]
            + kill_tasks,
            "steps": [{"launch": ["first", "server-up"]}, {"wait": {"first": "ended", "server-up": "ended"}}]
            # One after another, once the fork server has said hello.
            + [step for name in infos for step in ({"launch": name}, {"wait": {name: "ended"}})]
            + [{"launch": [task["id"] for task in FAILURES]}, {"wait": {t["id"]: "ended" for t in FAILURES}}]
            + kill_steps
            + [
                {"launch": ["after-failures", "pickled"]},
                {"mini_tasks": [{"id": f"m{n}", "function": "echo", "payload": f"mini {n}"} for n in range(20)]},
                {"wait": {"after-failures": "ended", "pickled": "ended", "cooperative": "ended", "stubborn": "ended"}},
                {"launch": "zombies"},
                {"wait": "all"},
                {"shutdown": True},
            ],
        }
        run = run_job(self, job, directory)
        tasks = by_id(run)
        self.assertEqual(tasks["first"]["result"], "hello")
        self.assertIn("closure 'boom' threw: ValueError: bad value: x", tasks["raises"]["error"])
        self.assertIn("exited with status 3", tasks["exits"]["error"])
        self.assertIn("signal SIGKILL", tasks["signalled"]["error"])
        self.assertIn("has no function 'no-such-function'", tasks["unknown"]["error"])
        self.assertEqual(tasks["after-failures"]["result"], "STILL SERVING")
        self.assertIn("captured variables: 42.5", tasks["pickled"]["result"])
        self.assertIn("closure 'nap' was cancelled", tasks["cooperative"]["error"])
        self.assertNotIn("before it started", tasks["cooperative"]["error"])
        self.assertIn("SIGKILL after the 1s grace period", tasks["stubborn"]["error"])
        self.assertEqual(json.loads(tasks["zombies"]["result"]), [])
        self.assertEqual({m["id"]: m["result"] for m in run["mini_tasks"]}, {f"m{n}": f"mini {n}" for n in range(20)})

        details = [json.loads(tasks[name]["result"]) for name in infos]
        forked = [d for d in details if d["pid"] != d["server"]]
        self.assertTrue(forked, f"no task was forked by the fork server: {details}")
        executor = {d["ppid"] for d in details}
        self.assertEqual(len(executor), 1, "every worker is a child of the executor")
        for detail in details:
            self.assertEqual(os.path.basename(detail["parent_exe"]), "spark-mesos-executor")
            self.assertEqual(detail["session"], detail["pid"])
        for detail in forked:
            self.assertEqual(detail["hooks"]["child"], 1)
        self.assertEqual(len({d["random"] for d in details}), len(details))


    def test_a_forked_worker_is_running_before_its_hello(self):
        """TASK_RUNNING once the fork server has forked the worker (its program offers the
        function), not once the worker has said hello: here the worker cannot say hello until a
        later task opens the gate, which is launched only after the first task is RUNNING."""
        directory = scratch(self)
        gate = os.path.join(directory, "gate")
        job = {
            "name": "python fine mode, running before hello",
            "executor": {"mode": "fine", "properties": {"spark.executorEnv.TEST_WORKER_HELLO_GATE": gate}},
            "tasks": [
                closure("first", "echo", "hello"),
                closure("server-up", "await-fork-server"),
                {"id": "make-gate", "command": {"value": f"mkfifo '{gate}'"}},
                closure("gated", "info"),
                {"id": "open-gate", "command": {"value": f"exec 3> '{gate}'; rm '{gate}'; exec 3>&-"}},
            ],
            "steps": [
                {"launch": ["first", "server-up"]},
                {"wait": {"first": "ended", "server-up": "ended"}},
                {"launch": "make-gate"},
                {"wait": {"make-gate": "ended"}},
                {"launch": "gated"},
                {"wait": {"gated": "running"}},
                {"launch": "open-gate"},
                {"wait": "all"},
                {"shutdown": True},
            ],
        }
        run = run_job(self, job, directory)
        tasks = by_id(run)
        detail = json.loads(tasks["gated"]["result"])
        self.assertNotEqual(detail["pid"], detail["server"], f"the gated task was not forked: {detail}")
        states = [state["state"] for state in tasks["gated"]["states"]]
        self.assertEqual(states, ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"])
        running = next(s["at_ms"] for s in tasks["gated"]["states"] if s["state"] == "TASK_RUNNING")
        gate_opened = tasks["open-gate"]["launched_at_ms"]
        self.assertLess(running, gate_opened)


    def test_forked_workers_run_in_their_task_cgroups(self):
        """With cgroups (root), a forked worker is in its own task's cgroup in every hierarchy: it
        joins them itself (this SDK's fork server) or is moved in by pid (a server whose hello does
        not say `fork_server_joins_cgroups`, as SDKs before it)."""
        for joins in ("1", "0"):
            with self.subTest(server_joins=joins):
                directory = scratch(self)
                infos = [f"info{n}" for n in range(3)]
                job = {
                    "name": "python fine mode, task cgroups",
                    "executor": {
                        "mode": "fine",
                        "properties": {"spark.executorEnv.TEST_WORKER_FORK_SERVER_JOINS": joins},
                    },
                    "tasks": [closure("first", "info"), closure("server-up", "await-fork-server")]
                    + [closure(name, "info") for name in infos],
                    "steps": [{"launch": ["first", "server-up"]}, {"wait": {"first": "ended", "server-up": "ended"}}]
                    + [step for name in infos for step in ({"launch": name}, {"wait": {name: "ended"}})]
                    + [{"wait": "all"}, {"shutdown": True}],
                }
                tasks = by_id(run_job(self, job, directory))
                first = json.loads(tasks["first"]["result"])
                in_task = [line for line in first["cgroups"] if _task_cgroup(line)]
                if not in_task:
                    self.skipTest("the executor runs without cgroups here (not root?)")
                details = [json.loads(tasks[name]["result"]) for name in infos]
                forked = [d for d in details if d["pid"] != d["server"]]
                self.assertTrue(forked, f"no task was forked by the fork server: {details}")
                for detail in forked:
                    mine = [line for line in detail["cgroups"] if _task_cgroup(line)]
                    self.assertEqual(len(mine), len(in_task), detail["cgroups"])
                    # One task cgroup, the same in every hierarchy; none another task's.
                    self.assertEqual(len({_task_cgroup(line) for line in mine}), 1, detail["cgroups"])


def _task_cgroup(line):
    """The task cgroup's name at the end of a /proc/PID/cgroup line, or None."""
    name = line.rsplit("/", 1)[-1]
    return name if name.startswith("task-") and name[5:].isdigit() else None


@require_harness
class CoarseMode(unittest.TestCase):
    def test_closures_and_a_thousand_mini_tasks(self):
        directory = scratch(self)
        kill_tasks, kill_steps = kills(directory)
        minis = [{"id": f"m{n}", "function": "echo", "payload": f"payload {n}"} for n in range(1000)]
        minis.append({"id": "m-fails", "function": "boom", "payload": "mini", "expect": "failed"})
        minis.append({"id": "m-pickled", "function": "python.cloudpickle", "payload": pickled(make_closure(), 1)})
        job = {
            "name": "python coarse mode",
            # Two warm workers: a closure waits for another one that runs.
            "executor": {"mode": "coarse", "properties": {"spark.executor.cores": "2"}},
            "tasks": [closure("first", "echo", "hello"), closure("info", "info")]
            + FAILURES
            + [
                closure("after-failures", "upper", "still serving"),
                closure("pickled", "python.cloudpickle", pickled(make_closure(), 7)),
            ]
            + kill_tasks,
            "steps": [
                {"launch": ["first", "info"]},
                {"wait": {"first": "ended", "info": "ended"}},
                # Before the failures: a worker that dies takes its pipelined mini-tasks with it (LOST).
                {"mini_tasks": minis},
                {"wait": "all"},
            ]
            + [step for t in FAILURES for step in ({"launch": t["id"]}, {"wait": {t["id"]: "ended"}})]
            + kill_steps
            + [
                {"launch": ["after-failures", "pickled"]},
                {"wait": "all"},
                {"shutdown": True},
            ],
        }
        run = run_job(self, job, directory)
        tasks = by_id(run)
        self.assertEqual(tasks["first"]["result"], "hello")
        info = json.loads(tasks["info"]["result"])
        self.assertEqual(os.path.basename(info["parent_exe"]), "spark-mesos-executor")
        self.assertIn("closure 'boom' threw: ValueError: bad value: x", tasks["raises"]["error"])
        self.assertIn("exited with status 3", tasks["exits"]["error"])
        self.assertIn("signal SIGKILL", tasks["signalled"]["error"])
        self.assertIn("has no function 'no-such-function'", tasks["unknown"]["error"])
        self.assertEqual(tasks["after-failures"]["result"], "STILL SERVING")
        self.assertIn("captured variables: 42.5", tasks["pickled"]["result"])
        self.assertIn("closure 'nap' was cancelled", tasks["cooperative"]["error"])
        self.assertNotIn("before it started", tasks["cooperative"]["error"])
        self.assertIn("SIGKILL after the 1s grace period", tasks["stubborn"]["error"])
        results = {m["id"]: m for m in run["mini_tasks"]}
        self.assertEqual(len(results), 1002)
        for n in range(1000):
            self.assertEqual(results[f"m{n}"]["result"], f"payload {n}")
        self.assertIn("ValueError: bad value: mini", results["m-fails"]["error"])
        self.assertIn("captured variables: 6.5", results["m-pickled"]["result"])
        self.assertEqual(run["mini_tasks_done"] if "mini_tasks_done" in run else 1002, 1002)


if __name__ == "__main__":
    unittest.main()

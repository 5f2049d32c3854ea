#!/usr/bin/python3
"""Python closure benchmarks: the real executor driven by the harness (local agent, loopback).
Prints figures; asserts nothing. Paired in one run: the worker and its fork server driven
directly (no executor), then under the executor fine mode with the fork server and with a spawn
per task, alternating, then coarse mode; --reference-worker adds the same for a Swift worker.

    Tests/Benchmarks/PythonWorker/benchmark.py [--harness PATH] [--tasks 300] [--latency 100]
        [--minis 20000] [--rounds 2]

Times are the harness's: when the agent stand-in launched a task and when it received each
status update (one loopback HTTP POST after the executor sent it). Sandboxes go to TMPDIR; on
this project's VM use TMPDIR=/dev/shm (see README, Performance).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.realpath(os.path.join(HERE, "../../.."))
WORKER = os.path.join(HERE, "bench-worker.py")


def run_job(harness, job, directory):
    path = os.path.join(directory, "job.json")
    report = os.path.join(directory, "report.json")
    with open(path, "w") as file:
        json.dump(job, file)
    process = subprocess.run([harness, path, "--report", report, "--plain"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.decode(errors="replace")
    if not os.path.exists(report):
        sys.exit(f"benchmark job '{job['name']}' failed:\n{output[-4000:]}")
    with open(report) as file:
        run = json.load(file)["runs"][0]
    tasks_ok = all(t["passed"] for t in run["tasks"]) and all(m["passed"] for m in run["mini_tasks"])
    if not tasks_ok:
        sys.exit(f"benchmark job '{job['name']}' failed:\n{output[-4000:]}")
    if process.returncode != 0:
        # Every task and mini-task ended as expected, but the harness found something else.
        problems = "; ".join(run["problems"]) or "see its output"
        print(f"  (note: the harness failed '{job['name']}' although every task passed: {problems})")
    return run


def executor(mode, fork_server=True, cores=2, worker="./bench-worker.py"):
    return {
        "mode": mode,
        "worker": worker,
        "properties": {
            "spark.executor.cores": str(cores),
            "spark.mesos.executor.worker.forkServer": "true" if fork_server else "false",
        },
        "shutdown_grace": 10,
    }


FUNCTION = {"name": "noop"}


def task(task_id, function=None, payload="x"):
    function = function or FUNCTION["name"]
    return {"id": task_id, "closure": {"function": function, "payload": payload}}


def state_at(task_report, state):
    return next(s["at_ms"] for s in task_report["states"] if s["state"] == state)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int((len(ordered) - 1) * p))]


def launch_latency(harness, directory, mode, fork_server, count, until="TASK_RUNNING", worker="./bench-worker.py"):
    """LAUNCH→state, one task at a time (after a warm-up task that also gives the fork server
    time to say hello)."""
    ids = [f"t{n}" for n in range(count)]
    steps = [{"launch": "warm"}, {"wait": {"warm": "ended"}}]
    for task_id in ids:
        steps += [{"launch": task_id}, {"wait": {task_id: "ended"}}]
    job = {
        "name": f"latency {mode}",
        "executor": executor(mode, fork_server, worker=worker),
        "tasks": [task("warm", "import-ms" if worker.endswith(".py") else None)] + [task(i) for i in ids],
        "steps": steps + [{"shutdown": True}],
        "timeout": 600,
    }
    run = run_job(harness, job, directory)
    tasks = {t["id"]: t for t in run["tasks"]}
    latencies = [state_at(tasks[i], until) - tasks[i]["launched_at_ms"] for i in ids]
    return latencies, tasks["warm"]["result"]


def throughput(harness, directory, mode, fork_server, count, worker="./bench-worker.py"):
    """`count` tasks launched at once (after a warm-up task): tasks per second to the last end."""
    ids = [f"t{n}" for n in range(count)]
    job = {
        "name": f"throughput {mode}",
        "executor": executor(mode, fork_server, worker=worker),
        "tasks": [task("warm")] + [task(i) for i in ids],
        "steps": [{"launch": "warm"}, {"wait": {"warm": "ended"}}, {"launch": ids}, {"wait": "all"}, {"shutdown": True}],
        "timeout": 600,
    }
    run = run_job(harness, job, directory)
    tasks = {t["id"]: t for t in run["tasks"]}
    start = min(tasks[i]["launched_at_ms"] for i in ids)
    end = max(tasks[i]["ended_at_ms"] for i in ids)
    return count / ((end - start) / 1000)


def minis(harness, directory, count):
    batch = [{"id": f"m{n}", "function": "noop", "payload": "x"} for n in range(count)]
    job = {
        "name": "mini-tasks",
        "executor": executor("coarse"),
        "tasks": [task("warm")],
        "steps": [{"launch": "warm"}, {"wait": "all"}, {"mini_tasks": batch}, {"wait": "all"}, {"shutdown": True}],
        "timeout": 600,
    }
    run = run_job(harness, job, directory)
    sent = min(m["sent_at_ms"] for m in run["mini_tasks"])
    ended = max(m["ended_at_ms"] for m in run["mini_tasks"])
    return count / ((ended - sent) / 1000)


def direct(worker, function, count=300, runs=20000):
    """Without the executor: this process plays it over the real pipes and fork-server socket.
    Fork server: request→pid (the clone), request→hello, hello→result of one run, and the whole
    cycle to the reaped exit, one worker at a time. Then one worker's runs/s, 32 in flight."""
    import array
    import socket
    import struct
    import time

    sys.path.insert(0, os.path.join(ROOT, "Tests", "PythonWorkerTests"))
    from support import SpawnedWorker, WorkerPipes, environment
    from spark_mesos_worker import wire

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server = SpawnedWorker(program=worker, env=environment(SPARK_MESOS_WORKER_FORK_SERVER="5"), control=theirs.fileno())
    theirs.close()
    if not server.receive().fork_server:
        sys.exit(f"{worker} did not start as a fork server")
    clone, hello, run, cycle = [], [], [], []
    for _ in range(count):
        out_read, out_write = os.pipe()
        to_read, to_write = os.pipe()
        from_read, from_write = os.pipe()
        fds = array.array("i", [out_write, out_write, to_read, from_write])
        started = time.perf_counter()
        ours.sendmsg([b"SMEF"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        pid = struct.unpack("=i", ours.recv(4))[0]
        answered = time.perf_counter()
        for fd in (out_write, to_read, from_write):
            os.close(fd)
        pipes = WorkerPipes(to_write, from_read)
        pipes.receive()
        greeted = time.perf_counter()
        pipes.send(wire.Run(id=1, function=function, payload=b"x"))
        pipes.receive()
        ran = time.perf_counter()
        pipes.close_input()
        pipes.receive()
        os.waitpid(pid, 0)
        ended = time.perf_counter()
        os.close(from_read)
        os.close(out_read)
        clone.append(answered - started)
        hello.append(greeted - started)
        run.append(ran - greeted)
        cycle.append(ended - started)
    ours.close()
    server.wait()
    server.close()

    spawned = SpawnedWorker(program=worker, env=environment())
    spawned.receive()
    frames = [wire.frame(wire.encode_to_worker(wire.Run(id=n, function=function, payload=b"x"))) for n in range(1, runs + 1)]
    started = time.perf_counter()
    sent = done = 0
    while done < runs:
        if sent - done < 32 and sent < runs:
            upto = min(runs, done + 32)
            os.write(spawned.to_worker, b"".join(frames[sent:upto]))
            sent = upto
        spawned.receive()
        done += 1
    rate = runs / (time.perf_counter() - started)
    spawned.close_input()
    spawned.wait()
    spawned.close()

    def ms(values):
        return f"{statistics.median(values) * 1000:.2f} ms"

    return (
        f"fork request→pid {ms(clone)}, →hello {ms(hello)}, one run {ms(run)}, whole worker to its reaped exit "
        f"{ms(cycle)} ({1 / statistics.mean(cycle):.0f}/s one at a time); one worker: {rate:.0f} runs/s (32 in flight)"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--harness", default=os.environ.get("SPARK_MESOS_HARNESS", os.path.join(ROOT, ".build/debug/spark-mesos-harness")))
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--latency", type=int, default=100)
    parser.add_argument("--minis", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--reference-worker", help="a Swift worker (demo-worker) for the same fine-mode latency, as a floor")
    arguments = parser.parse_args()
    harness = arguments.harness
    print(f"direct, Python: {direct(WORKER, 'noop')}")
    if arguments.reference_worker:
        print(f"direct, Swift demo-worker: {direct(os.path.realpath(arguments.reference_worker), 'echo')}")
    directory = tempfile.mkdtemp(prefix="python-bench-")
    try:
        under_executor(arguments, harness, directory)
    finally:
        subprocess.run(["rm", "-rf", directory])


def under_executor(arguments, harness, directory):
    os.symlink(WORKER, os.path.join(directory, "bench-worker.py"))
    print(f"executor: {os.path.realpath(harness)} (its spark-mesos-executor); python: {sys.version.split()[0]}")
    for round_number in range(1, arguments.rounds + 1):
        # Alternating, so that drift of the machine's speed hits both alike.
        order = [True, False] if round_number % 2 else [False, True]
        for fork_server in order:
            name = "fine, fork server   " if fork_server else "fine, spawn per task"
            latencies, import_ms = launch_latency(harness, directory, "fine", fork_server, arguments.latency)
            rate = throughput(harness, directory, "fine", fork_server, arguments.tasks)
            print(
                f"round {round_number} {name}: LAUNCH→TASK_RUNNING p50 {statistics.median(latencies):.2f} ms, "
                f"p90 {percentile(latencies, 0.9):.2f} ms; {rate:.0f} tasks/s ({arguments.tasks} at once, 2 slots); "
                f"worker imports {import_ms} ms at start"
            )
    if arguments.reference_worker:
        FUNCTION["name"] = "echo"
        for fork_server in (True, False):
            reference = os.path.realpath(arguments.reference_worker)
            latencies, _ = launch_latency(harness, directory, "fine", fork_server, arguments.latency, worker=reference)
            rate = throughput(harness, directory, "fine", fork_server, arguments.tasks, worker=reference)
            how = "fork server" if fork_server else "spawn per task"
            print(
                f"reference (Swift demo-worker), fine, {how}: LAUNCH→TASK_RUNNING p50 {statistics.median(latencies):.2f} ms; "
                f"{rate:.0f} tasks/s"
            )
        trips, _ = launch_latency(
            harness, directory, "coarse", True, arguments.latency, until="TASK_FINISHED",
            worker=os.path.realpath(arguments.reference_worker),
        )
        print(f"reference (Swift demo-worker), coarse: LAUNCH→TASK_FINISHED (round trip) p50 {statistics.median(trips):.2f} ms")
        FUNCTION["name"] = "noop"
    round_trips, _ = launch_latency(harness, directory, "coarse", True, arguments.latency, until="TASK_FINISHED")
    running, _ = launch_latency(harness, directory, "coarse", True, arguments.latency)
    print(
        f"coarse: LAUNCH→TASK_RUNNING p50 {statistics.median(running):.2f} ms; "
        f"LAUNCH→TASK_FINISHED (round trip) p50 {statistics.median(round_trips):.2f} ms, p90 {percentile(round_trips, 0.9):.2f} ms"
    )
    print(f"coarse: {throughput(harness, directory, 'coarse', True, arguments.tasks * 3):.0f} closure tasks/s ({arguments.tasks * 3} at once, 2 workers)")
    print(f"mini-tasks: {minis(harness, directory, arguments.minis):.0f}/s ({arguments.minis} in one message, 2 workers)")


if __name__ == "__main__":
    main()

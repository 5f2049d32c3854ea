#!/usr/bin/python3
"""An example Python worker for the harness's Python jobs (python/*.json, demo.py)."""

import collections
import os
import sys

try:
    from spark_mesos_worker import Worker
except ImportError:
    # Not installed (no .deb): use the library of this source tree.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "../../../PythonWorker"))
    from spark_mesos_worker import Worker

# Work done here, before run(), is done once: fine mode forks every worker from this process.
STOP_WORDS = frozenset("a an and the of to in is it".split())

worker = Worker("python-example")


@worker.function("wordcount")
def wordcount(payload: bytes, context) -> bytes:
    counts = collections.Counter(w for w in payload.decode().lower().split() if w not in STOP_WORDS)
    return "\n".join(f"{word} {n}" for word, n in counts.most_common(5))


@worker.function("primes")
def primes(payload: bytes, context) -> bytes:
    """How many primes are below N; checks for cancellation as it goes."""
    limit = int(payload)
    sieve = bytearray([1]) * limit
    sieve[:2] = b"\0\0"[:limit]
    for n in range(2, int(limit**0.5) + 1):
        context.check_cancelled()
        if sieve[n]:
            sieve[n * n :: n] = bytes(len(range(n * n, limit, n)))
    return str(sum(sieve))


@worker.function("fail")
def fail(payload: bytes, context) -> bytes:
    raise RuntimeError(payload.decode())


@worker.function("wait")
def wait(payload: bytes, context) -> bytes:
    """Sleeps (seconds in the payload) unless cancelled first."""
    context.sleep(float(payload))
    return b"done"


worker.run()

#!/usr/bin/python3
"""The benchmark's Python worker: it imports a heavy set of modules at start, as real jobs do,
so that what the fork server saves is visible."""

import os
import sys
import time

started = time.perf_counter()
import asyncio  # noqa: E402,F401
import csv  # noqa: E402,F401
import decimal  # noqa: E402,F401
import email.mime.multipart  # noqa: E402,F401
import email.parser  # noqa: E402,F401
import http.client  # noqa: E402,F401
import json  # noqa: E402,F401
import logging.handlers  # noqa: E402,F401
import sqlite3  # noqa: E402,F401
import tarfile  # noqa: E402,F401
import urllib.request  # noqa: E402,F401
import xml.etree.ElementTree  # noqa: E402,F401
import zipfile  # noqa: E402,F401

try:
    import numpy  # noqa: F401
except ImportError:
    pass
IMPORT_MS = (time.perf_counter() - started) * 1000

try:
    from spark_mesos_worker import Worker
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "../../../Sources/PythonWorker"))
    from spark_mesos_worker import Worker

worker = Worker("bench")


@worker.function("noop")
def noop(payload, context):
    return payload


@worker.function("import-ms")
def import_ms(payload, context):
    return f"{IMPORT_MS:.1f}"


worker.run()

"""Runs the schemathesis CLI (`python tests/security/schemathesis_threadsafe.py run ...`)
with `ast.parse` serialised. Its workers are threads, and hypothesis parses lambdas' source
with `ast.parse` while describing strategies; on CPython before 3.12 two threads doing that
at once can fail with "SystemError: AST constructor recursion depth mismatch", which the run
then reports as a runtime error of the service's test. A lock around that one call keeps
the workers' parallelism everywhere else."""

import ast
import runpy
import threading

_lock = threading.Lock()
_parse = ast.parse


def _serialised_parse(*args, **kwargs):
    with _lock:
        return _parse(*args, **kwargs)


if __name__ == "__main__":
    ast.parse = _serialised_parse
    runpy.run_module("schemathesis.cli", run_name="__main__", alter_sys=True)

"""Plumbing the benchmark scripts share: BLAS threads, machine facts, writing results.

Benchmarks compare runs made side by side in one process, because this machine is
shared and noisy; these helpers only record the conditions a number was taken in.
"""
import json
import os
import platform
import sys

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def limit_blas_threads(n):
    """Cap the BLAS thread pool (numpy's matmul). On a 2-core machine shared with other
    work, OpenBLAS's spinning threads can make small matrix products 10-50x slower;
    returns a description of what was set."""
    if n is None or n <= 0:
        return "default"
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return "default (threadpoolctl not installed)"
    threadpool_limits(n)
    return str(n)


def machine_info(**extra):
    """The facts that explain a timing: versions, cores, load."""
    info = {"python": sys.version.split()[0], "numpy": np.__version__, "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None}
    info.update(extra)
    return info


def write_results(out, result, markdown):
    """Write out.json (the numbers) and out.md (the report a person reads)."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".json", "w") as handle:
        json.dump(result, handle, indent=2)
    with open(out + ".md", "w") as handle:
        handle.write(markdown)
    print(f"wrote {out}.json and .md")

"""Plumbing the benchmark scripts share: BLAS threads, machine facts, writing results.

Benchmarks compare runs made side by side in one process, because this machine is
shared and noisy; these helpers only record the conditions a number was taken in.
"""
import json
import os
import platform
import sys

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def pin_threads_from_argv(argv=None, default="1"):
    """Read --threads N (default 1) and set it for every BLAS/OpenMP pool. Call it before
    numpy or torch is imported: BLAS fixes its thread count on import. One thread each
    makes frameworks comparable on a small, shared machine. Returns N as a string."""
    argv = sys.argv[1:] if argv is None else argv
    threads = default
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            threads = argv[i + 1]
        elif arg.startswith("--threads="):
            threads = arg.split("=", 1)[1]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    return threads


def cores():
    """The cores this process may run on (what minigrad and PyTorch use by default)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_counts(extra=()):
    """The thread counts a benchmark runs at when none is given: the default (all cores),
    one thread, and any `extra` below the cores (e.g. 2 for a scaling table)."""
    return sorted({cores(), 1, *[n for n in extra if n < cores()]}, reverse=True)


def results_suffix(threads):
    """'' for the default thread count (all cores), else '_1thread' / '_4threads'."""
    threads = int(threads)
    if threads == cores():
        return ""
    return "_1thread" if threads == 1 else f"_{threads}threads"


def run_at_each_thread_count(flag="--threads", extra=()):
    """Without `flag` on the command line, run this script again once per thread count
    (thread_counts(extra)), each in a fresh interpreter (BLAS fixes its pool when it is
    loaded), print their outputs and exit with the worst status: a user's machine runs at
    the default threads, and one thread shows the single-core cost; both ratios are
    printed (print_ratio tags each with its thread count). With `flag`, return its value
    and let the script run once. MINIGRAD_NUM_THREADS is set to the same count."""
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        given = argv[i + 1] if arg == flag and i + 1 < len(argv) else (
            arg.split("=", 1)[1] if arg.startswith(flag + "=") else None)
        if given is not None:
            os.environ["MINIGRAD_NUM_THREADS"] = str(int(given) if int(given) > 0 else cores())
            return int(given)
    import subprocess
    worst = 0
    for threads in thread_counts(extra):
        print(f"-- {os.path.basename(sys.argv[0])} at {threads} thread(s)", flush=True)
        env = dict(os.environ, MINIGRAD_NUM_THREADS=str(threads))
        done = subprocess.run([sys.executable, sys.argv[0], *argv, flag, str(threads)], env=env)
        worst = worst or done.returncode
    sys.exit(worst)


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
    import numpy as np
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


def add_run_arguments(parser, name):
    """--seed, --blas-threads and --out, which every training benchmark takes."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--blas-threads", type=int, default=1, help="0: leave BLAS's default")
    parser.add_argument("--out", default=None, help="results path without extension ('' writes nothing; "
                        f"default results/{name}, or results/{name}_quick with --quick)")


def default_out(args, name):
    """A quick check never overwrites the full run's results."""
    if args.out is None:
        args.out = os.path.join(RESULTS, f"{name}_quick" if args.quick else name)


def run(args, train, report):
    """Train with the BLAS threads capped, add the machine facts, write the results."""
    threads = limit_blas_threads(args.blas_threads)
    result = train(args)
    result["machine"] = machine_info(blas_threads=threads)
    if args.out:
        write_results(args.out, result, report(result))
    return result


RATIO_PREFIX = "ratio |"


def print_ratio(case, comparison, value, target=None):
    """Print one headline ratio as a line benchmarks/run.py collects into its summary:

        ratio | <case> | <comparison, e.g. minigrad / numpy> | <value> | <target or ->

    Every bench_*.py prints its headline numbers this way (lower is better for minigrad);
    the case is tagged with the thread count the run used (MINIGRAD_NUM_THREADS)."""
    verdict = "-"
    threads = os.environ.get("MINIGRAD_NUM_THREADS")
    if threads:
        case = f"{case} [{threads} thread{'s' if threads != '1' else ''}]"
    if target is not None:
        verdict = f"<= {target:g}: {'met' if value <= target else 'missed'}"
    line = f"{RATIO_PREFIX} {case} | {comparison} | {value:.2f} | {verdict}"
    print(line, flush=True)
    return line


def parse_ratio_lines(text):
    """The (case, comparison, value, target) tuples of print_ratio's lines in a script's output."""
    rows = []
    for line in text.splitlines():
        if line.startswith(RATIO_PREFIX):
            parts = [part.strip() for part in line[len(RATIO_PREFIX):].split("|")]
            if len(parts) == 4:
                rows.append(tuple(parts))
    return rows


def profile(step, calls, top=12):
    """cProfile of `calls` runs of step(), the `top` functions by own time, as text:
    where minigrad's time goes (profile before optimising)."""
    import cProfile
    import io
    import pstats
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        step()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()

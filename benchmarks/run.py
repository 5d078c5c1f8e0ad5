"""Run the benchmarks and collect their headline ratios into one table.

    python benchmarks/run.py                  # every benchmarks/bench_*.py, full runs
    python benchmarks/run.py engine mlp       # only bench_engine.py and bench_mlp.py
    python benchmarks/run.py --quick          # each with --quick: a short check

Each script runs as its own subprocess (a fresh interpreter, so one benchmark's
thread pools and caches do not colour the next), with --quick passed on when given.
Scripts are found by file name, bench_<name>.py. Every script writes its own
results under benchmarks/results/ and prints its headline numbers as
`ratio | case | comparison | value | target` lines (common.print_ratio); this
collects those lines, plus each script's exit status, time and the results files it
wrote, into benchmarks/results/summary.md (summary_quick.md with --quick), with the
machine, versions and date. Exits non-zero when any script failed.
"""
import argparse
import glob
import os
import platform
import subprocess
import sys
import time

import numpy as np

from common import RESULTS, parse_ratio_lines, results_suffix, thread_counts

HERE = os.path.dirname(os.path.abspath(__file__))


def discover(names=()):
    """{name: path} of bench_<name>.py; names may be given as 'mlp', 'bench_mlp' or 'bench_mlp.py'."""
    found = {os.path.basename(p)[len("bench_"):-len(".py")]: p
             for p in sorted(glob.glob(os.path.join(HERE, "bench_*.py")))}
    if not names:
        return found
    chosen = {}
    for name in names:
        key = os.path.basename(name)
        key = key[:-3] if key.endswith(".py") else key
        key = key[len("bench_"):] if key.startswith("bench_") else key
        if key not in found:
            raise SystemExit(f"run.py: no benchmarks/bench_{key}.py (have: {', '.join(found)})")
        chosen[key] = found[key]
    return chosen


def run_one(path, quick, timeout):
    """Run one script; returns (exit status, seconds, output, results files it wrote): those
    under results/ named after it (bench_mlp.py -> bench_mlp*) and changed while it ran."""
    stem = os.path.basename(path)[:-len(".py")]
    command = [sys.executable, path] + (["--quick"] if quick else [])
    started = time.time()
    try:
        done = subprocess.run(command, cwd=os.path.dirname(HERE), capture_output=True, text=True, timeout=timeout)
        status, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        status = "timeout"
        output = (expired.stdout or b"").decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
    seconds = time.time() - started
    written = sorted(os.path.relpath(p, os.path.dirname(HERE)) for p in glob.glob(os.path.join(RESULTS, stem + "*"))
                     if os.path.isfile(p) and os.path.getmtime(p) >= started - 1)
    return status, seconds, output, written


def scaling_table(quick):
    """Markdown rows: the GPT step and attention at each thread count bench_transformer ran,
    minigrad next to PyTorch, with each one's speed-up over its own one-thread time."""
    import json
    stem = "bench_transformer_quick" if quick else "bench_transformer"
    runs = {}
    for threads in thread_counts((2,)):
        path = os.path.join(RESULTS, stem + results_suffix(threads) + ".json")
        if os.path.exists(path):
            with open(path) as handle:
                runs[threads] = json.load(handle)
    if 1 not in runs or len(runs) < 2:
        return []
    lines = ["", "Scaling with threads (bench_transformer.py; medians, ms; speed-up over the same "
             "framework at one thread):", "",
             "| threads | GPT step minigrad | GPT step torch | attention minigrad | attention torch |",
             "|---|---|---|---|---|"]
    for threads in sorted(runs):
        cells = []
        for part in ("gpt_step", "mha"):
            for framework in ("minigrad", "torch"):
                seconds = runs[threads][part]["median_s"].get(framework)
                one = runs[1][part]["median_s"].get(framework)
                cells.append("-" if seconds is None else f"{seconds * 1e3:.1f} ({one / seconds:.2f}x)")
        lines.append(f"| {threads} | " + " | ".join(cells) + " |")
    return lines


def versions():
    parts = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    for module in ("minigrad", "torch"):
        try:
            parts.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            parts.append(f"{module} not installed")
    return ", ".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (engine, mlp, ...); default all bench_*.py")
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per script (default none)")
    parser.add_argument("--out", default=None, help="default results/summary.md, or results/summary_quick.md")
    args = parser.parse_args(argv)
    out = args.out or os.path.join(RESULTS, "summary_quick.md" if args.quick else "summary.md")
    scripts = discover(args.names)

    runs, ratio_rows = [], []
    for name, path in scripts.items():
        print(f"== bench_{name}.py{' --quick' if args.quick else ''}", flush=True)
        status, seconds, output, written = run_one(path, args.quick, args.timeout)
        ratios = parse_ratio_lines(output)
        print("\n".join(line for line in output.splitlines() if line.startswith("ratio |")), flush=True)
        if status != 0:
            print(output[-3000:], file=sys.stderr)
        runs.append([f"bench_{name}.py", "ok" if status == 0 else f"FAILED ({status})", f"{seconds:.1f}",
                     ", ".join(f"`{w}`" for w in written) or "-"])
        ratio_rows += [[f"bench_{name}.py", *row] for row in ratios]

    lines = ["# Benchmark summary" + (" (quick check)" if args.quick else ""), "",
             f"`python benchmarks/run.py{' --quick' if args.quick else ''}"
             f"{' ' + ' '.join(args.names) if args.names else ''}`, "
             f"{time.strftime('%Y-%m-%d %H:%M %Z')}", "",
             f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
             f"- {versions()}", "",
             "Ratios are minigrad's time over the other's (lower is better for minigrad); each script runs",
             "at the default threads (all cores) and at one thread (the [n threads] tag); its own results",
             "files have the full tables and how they were measured.", "",
             "| script | case | comparison | ratio | target |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in ratio_rows]
    if "transformer" in scripts:
        lines += scaling_table(args.quick)
    lines += ["", "| script | status | seconds | results written |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in runs]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0 if all(run[1] == "ok" for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

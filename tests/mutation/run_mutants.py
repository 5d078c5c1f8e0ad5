"""Mutation testing of minigrad's core with hand-written mutants (not run by pytest).

A mutant is one plausible bug planted in the library: a wrong sign, an
off-by-one, eps moved out of a square root, a branch dropped. The suite should
fail on every one of them; a mutant it does not notice ("survives") points at a
missing test, or is equivalent to the original (then MUTANTS says why).

    python tests/mutation/run_mutants.py                 # every mutant, 2 at a time
    python tests/mutation/run_mutants.py --only optim,adam   # ids containing "optim" or "adam"
    python tests/mutation/run_mutants.py --list
    python tests/mutation/run_mutants.py --jobs 1 --report results.md

Each worker copies minigrad/ and tests/ into a temporary folder, applies one
mutant there (the repository itself is never touched), and runs only the test
files that cover that part of the core (`pytest -x`, so a killed mutant stops at
its first failing test). A mutant whose original text is no longer in its file
is reported as stale: the code moved on and the mutant needs rewriting. Before
the mutants, each test selection runs once unmutated and must pass, else every
mutant would count as killed.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from mutants import MUTANTS  # noqa: E402

TIMEOUT_S = 300            # a mutant that hangs (an endless loop) counts as killed


def make_copy():
    """A scratch copy of the package and its tests, for one worker."""
    folder = tempfile.mkdtemp(prefix="minigrad-mutants-")
    for name in ("minigrad", "tests"):
        shutil.copytree(os.path.join(ROOT, name), os.path.join(folder, name),
                        ignore=shutil.ignore_patterns("__pycache__", "mutation"))
    shutil.copy(os.path.join(ROOT, "setup.cfg"), folder)
    return folder


def run_tests(folder, tests):
    """pytest on `tests` inside `folder`: (passed?, seconds)."""
    environment = dict(os.environ, PYTHONPATH=folder, MINIGRAD_NUM_THREADS="1", OMP_NUM_THREADS="1",
                       OPENBLAS_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    start = time.perf_counter()
    try:
        result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                                cwd=folder, env=environment, capture_output=True, timeout=TIMEOUT_S)
        passed = result.returncode == 0
    except subprocess.TimeoutExpired:
        passed = False
    return passed, time.perf_counter() - start


def apply(folder, mutant):
    """Plant the mutant; return the file's original text (None if the mutant is stale)."""
    path = os.path.join(folder, mutant.path)
    with open(path, encoding="utf-8") as handle:
        original = handle.read()
    if original.count(mutant.old) != 1:
        return None
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(original.replace(mutant.old, mutant.new))
    return original


def restore(folder, mutant, original):
    with open(os.path.join(folder, mutant.path), "w", encoding="utf-8") as handle:
        handle.write(original)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="run the mutants whose id contains one of these "
                                                   "(comma-separated)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--report", help="also write the results as markdown here")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if any(part in m.id for part in args.only.split(","))]
    if args.list:
        for m in chosen:
            print(f"{m.id:45s} {m.path}  [{' '.join(os.path.basename(t) for t in m.tests)}]")
        return 0

    folders = [make_copy() for _ in range(args.jobs)]
    try:
        selections = sorted({tuple(m.tests) for m in chosen})
        for tests in selections:                                  # the baseline must be green
            passed, seconds = run_tests(folders[0], list(tests))
            print(f"baseline {' '.join(tests)}: {'ok' if passed else 'FAILS'} ({seconds:.0f} s)", flush=True)
            if not passed:
                print("the unmutated tests fail: fix them first", file=sys.stderr)
                return 2
        free = list(folders)
        results = {}

        def run_one(mutant):
            folder = free.pop()
            try:
                original = apply(folder, mutant)
                if original is None:
                    return mutant, "stale", 0.0
                try:
                    passed, seconds = run_tests(folder, mutant.tests)
                finally:
                    restore(folder, mutant, original)
                return mutant, "SURVIVED" if passed else "killed", seconds
            finally:
                free.append(folder)

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for mutant, outcome, seconds in pool.map(run_one, chosen):
                results[mutant.id] = (mutant, outcome, seconds)
                print(f"{outcome:8s} {seconds:5.1f} s  {mutant.id}", flush=True)
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)

    # equivalent mutants (no test can tell them from the original) are left out of the rate
    counted = [r for r in results.values() if r[1] != "stale" and not r[0].equivalent]
    killed = sum(r[1] == "killed" for r in counted)
    survivors = [r[0] for r in results.values() if r[1] == "SURVIVED"]
    stale = [r[0] for r in results.values() if r[1] == "stale"]
    rate = killed / len(counted) if counted else 0.0
    lines = [f"killed {killed} of {len(counted)} mutants ({100 * rate:.1f}%) in "
             f"{time.perf_counter() - start:.0f} s with {args.jobs} workers "
             f"(equivalent mutants left out: {sum(1 for r in results.values() if r[0].equivalent)})"]
    lines += [f"survived: {m.id}: {m.description}" + (f" (equivalent: {m.equivalent})" if m.equivalent else "")
              for m in survivors]
    lines += [f"stale (the code moved on; rewrite it): {m.id}" for m in stale]
    print("\n".join(lines))
    if args.report:
        with open(args.report, "w", encoding="utf-8") as handle:
            handle.write("# Mutation testing\n\n" + "\n".join(f"- {line}" for line in lines) + "\n\n"
                         "| mutant | file | outcome | seconds |\n| --- | --- | --- | --- |\n")
            for mutant, outcome, seconds in results.values():
                handle.write(f"| {mutant.id} | {mutant.path} | {outcome} | {seconds:.1f} |\n")
    return 0 if not [m for m in survivors if not m.equivalent] else 1


if __name__ == "__main__":
    sys.exit(main())

"""The canary experiment of the privacy lesson, recorded: a small GPT trained on Python's
docstrings with "my PIN is 4 7 1 9." planted in a few examples, without privacy and
with DP-SGD at a few epsilons; its exposure (Carlini et al. 2019), the epsilon and
delta spent, and the validation loss.

    python benchmarks/privacy_canary.py           # the lesson's full run, a few minutes
    python benchmarks/privacy_canary.py --quick   # its --quick run (no memorisation), seconds

Runs the privacy lesson (lessons/NN_privacy.py) in a fresh process, exactly as a student
does, with one BLAS and kernel thread; the lesson asserts its own claims (the canary
memorised without privacy, near chance with it) and writes canary.json, which this
script copies to benchmarks/results/privacy_canary.json with the machine's facts and
summarises in privacy_canary.md (privacy_canary_quick.* with --quick).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS, machine_info, write_results  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def report(result):
    plain, runs = result["no_privacy"], result["private"]
    lines = ["# Canary exposure with and without DP-SGD (privacy lesson)", "",
             f"Canary {result['canary']!r} planted in {result['copies']} of {result['n_examples']} training "
             f"examples; {result['candidates']} candidate PINs; GPT {result['model']}; {result['epochs']} epochs, "
             f"expected batch {round(result['sample_rate'] * result['n_examples'])} (q = {result['sample_rate']:.4f}, "
             f"{result['steps']} DP steps), clipping C = {result['max_grad_norm']}, delta = {result['delta']:g}.", "",
             "| training | epsilon | noise multiplier | exposure (bits) | rank of the canary | validation loss | "
             "greedy completion |", "|---|---|---|---|---|---|---|",
             f"| untrained | - | - | {result['untrained']['exposure_bits']:.2f} | {result['untrained']['rank']} | - | - |",
             f"| no privacy | inf | 0 | {plain['exposure_bits']:.2f} | {plain['rank']} | "
             f"{plain['validation_loss']:.3f} | {plain['completion']!r} |"]
    for run in runs:
        lines.append(f"| DP-SGD | {run['epsilon']:.2f} | {run['noise_multiplier']:.3f} | {run['exposure_bits']:.2f} | "
                     f"{run['rank']} | {run['validation_loss']:.3f} | {run['completion']!r} |")
    lines += ["", f"Lesson wall time {result['wall_seconds']:.0f} s. Machine: {result['machine']}", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the lesson's --quick run")
    parser.add_argument("--out", default=None, help="results path without extension; default "
                        "results/privacy_canary (results/privacy_canary_quick with --quick)")
    args = parser.parse_args(argv)
    out = args.out or os.path.join(RESULTS, "privacy_canary_quick" if args.quick else "privacy_canary")
    lesson = sorted(glob.glob(os.path.join(ROOT, "lessons", "[0-9][0-9]_privacy.py")))[-1]
    env = dict(os.environ, MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", MINIGRAD_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as folder:
        start = time.time()
        done = subprocess.run([sys.executable, lesson, "--out", folder] + (["--quick"] if args.quick else []),
                              cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.time() - start
        print(done.stdout[-4000:])
        if done.returncode != 0:
            print(done.stderr[-4000:], file=sys.stderr)
            sys.exit(f"{os.path.basename(lesson)} failed with exit code {done.returncode}")
        with open(os.path.join(folder, "canary.json")) as handle:
            result = json.load(handle)
    result.update(lesson=os.path.basename(lesson), wall_seconds=seconds, machine=machine_info(threads=1))
    write_results(out, result, report(result))


if __name__ == "__main__":
    main()

"""The benchmarks keep running: run.py's quick check of bench_engine.py and bench_mlp.py
exits 0 and writes its summary table, and run.py's plumbing (finding scripts, reading
their ratio lines, noticing a failure) does what it says. Timings are never asserted."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(ROOT, "benchmarks")
sys.path.insert(0, BENCHMARKS)

import common  # noqa: E402
import run  # noqa: E402


def test_quick_engine_and_mlp_run_and_write_the_summary(tmp_path):
    out = tmp_path / "summary.md"
    done = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "run.py"), "--quick", "engine", "mlp",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    table = out.read_text()
    assert "| bench_engine.py | ok |" in table and "| bench_mlp.py | ok |" in table
    rows = [line for line in table.splitlines() if line.startswith("| bench_")]
    comparisons = {row.split("|")[3].strip() for row in rows}
    assert {"minigrad / numpy", "minigrad / torch"} <= comparisons or "torch not installed" in table
    assert any("MLP 784" in row for row in rows)
    if "torch not installed" not in table:      # per-op overhead is measured against PyTorch's
        assert any("per-op overhead" in row for row in rows)
    for name in ("bench_engine_quick", "bench_mlp_quick"):
        for ext in (".md", ".json"):
            assert os.path.exists(os.path.join(BENCHMARKS, "results", name + ext))


def test_discover_finds_every_bench_script_by_file_name():
    present = {name[len("bench_"):-3] for name in os.listdir(BENCHMARKS)
               if name.startswith("bench_") and name.endswith(".py")}
    assert set(run.discover()) == present and {"engine", "mlp"} <= present
    assert list(run.discover(["mlp", "bench_engine.py"])) == ["mlp", "engine"]
    with pytest.raises(SystemExit, match="no benchmarks/bench_nosuch.py"):
        run.discover(["nosuch"])


def test_ratio_lines_round_trip(capsys):
    common.print_ratio("case a", "minigrad / numpy", 1.234, 1.2)
    common.print_ratio("case b", "minigrad / torch", 0.5)
    printed = capsys.readouterr().out
    assert common.parse_ratio_lines("noise\n" + printed + "ratio | torn line\n") == [
        ("case a", "minigrad / numpy", "1.23", "<= 1.2: missed"), ("case b", "minigrad / torch", "0.50", "-")]


def test_run_one_reports_a_failing_script_and_its_ratios(tmp_path):
    script = tmp_path / "bench_broken.py"
    script.write_text("import sys\nprint('ratio | x | minigrad / numpy | 2.00 | -')\n"
                      "assert '--quick' in sys.argv\nsys.exit(3)\n")
    status, seconds, output, written = run.run_one(str(script), quick=True, timeout=60)
    assert status == 3 and seconds >= 0 and written == []
    assert common.parse_ratio_lines(output) == [("x", "minigrad / numpy", "2.00", "-")]
    status, _, output, _ = run.run_one(str(script), quick=False, timeout=60)
    assert status == 1 and "AssertionError" in output


def test_quick_distributed_benchmark_runs_both_layouts_and_reports_communication(tmp_path):
    import minigrad.distributed as dist
    if dist.find_mpiexec() is None:
        pytest.skip('mpiexec not found: install MPI with pip install -e ".[distributed]"')
    out = tmp_path / "bench_distributed"
    done = subprocess.run([sys.executable, os.path.join(BENCHMARKS, "bench_distributed.py"), "--quick",
                           "--no-torch", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = (tmp_path / "bench_distributed.md").read_text()
    assert "| 1 process x 2 threads |" in report and "| 2 processes x 1 thread |" in report
    assert "| minigrad |" in report and "hidden fraction" in report and "exposed (ms)" in report

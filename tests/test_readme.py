"""README.md stays true: its set-up commands are CI's, its example prints what it
says, and it lists every lesson and benchmark script."""
import contextlib
import io
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def test_readme_set_up_commands_are_the_ones_ci_runs():
    readme = _read("README.md")
    ci_commands = [line.strip() for line in _read(".ci", "run").splitlines()
                   if line.strip().startswith("python -m")]
    assert ci_commands, "no commands found in .ci/run"
    for command in ci_commands:
        # CI spells `pip` / `pytest` as `python -m ...` and adds -q; the README shows the short form
        short = re.sub(r"^python -m ", "", command).replace(" -q", "")
        assert short in readme, f"README.md does not show the CI command {short!r}"


def test_readme_example_prints_what_its_comments_say():
    readme = _read("README.md")
    code = re.search(r"## A first gradient\s+```python\n(.*?)```", readme, re.S)[1]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    expected = [re.search(r"#\s*(.*?)(?:\s+=.*)?$", line)[1].strip()
                for line in code.splitlines() if line.startswith("print(")]
    assert [line.strip() for line in printed.getvalue().splitlines()] == expected


def test_readme_lists_every_lesson_and_no_missing_one():
    readme = _read("README.md")
    listed = set(re.findall(r"lessons/(\d\d_\w+\.py)", readme))
    present = {name for name in os.listdir(os.path.join(ROOT, "lessons")) if re.fullmatch(r"\d\d_\w+\.py", name)}
    assert listed == present, (f"README.md lists missing lessons {sorted(listed - present)} "
                               f"and leaves out {sorted(present - listed)}")


def test_readme_names_every_benchmark_script():
    readme = _read("README.md")
    scripts = {name for name in os.listdir(os.path.join(ROOT, "benchmarks"))
               if name.endswith(".py") and name != "common.py"}
    assert scripts, "no benchmark scripts found"
    missing = sorted(name for name in scripts if name not in readme)
    assert not missing, f"README.md does not mention the benchmarks {missing}"

"""README.md stays true: its set-up commands are CI's, its example prints what it
says, and the lessons it lists exist."""
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


def test_readme_lists_only_lessons_that_exist():
    readme = _read("README.md")
    listed = set(re.findall(r"lessons/(\d\d_\w+\.py)", readme))
    present = set(os.listdir(os.path.join(ROOT, "lessons")))
    assert listed and listed <= present, f"README.md lists missing lessons: {sorted(listed - present)}"

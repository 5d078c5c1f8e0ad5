"""List the lessons, run one by its number, or grade the exercises.

    python lessons                  # the list: number, title, typical run time
    python lessons 7                # runs lessons/07_transformer_translation.py
    python lessons 7 --quick        # arguments after the number go to the lesson
    python lessons check            # grades every exercise in lessons/exercises/
    python lessons check adam       # grades one (or several) by name
    python lessons check --solutions    # grades the reference solutions instead

A lesson runs in a fresh process with the same Python, from wherever you ran this;
its exit code becomes this command's exit code. `check` exits with 0 when every
exercise it graded passes, 1 when one fails or is not written yet.
"""
import argparse
import ast
import subprocess
import sys
from pathlib import Path

LESSONS_DIR = Path(__file__).resolve().parent
EXERCISES_DIR = LESSONS_DIR / "exercises"

# Wall-clock on the quiet 2-core CPU machine (see lessons/README.md): full run, --quick run.
TYPICAL_TIME = {
    0: ("1 s", "1 s"), 1: ("1 s", "1 s"), 2: ("1 s", "1 s"), 3: ("2 s", "1 s"), 4: ("2 s", "1 s"),
    5: ("1 s", "1 s"), 6: ("5 s", "3 s"), 7: ("15 s", "1 s"), 8: ("30 s", "1 s"), 9: ("2 s", "2 s"),
    10: ("28 s", "3 s"), 11: ("5 s", "3 s"), 12: ("9 s", "1 s"), 13: ("6 s", "3 s"),
    14: ("2 s", "1 s"), 15: ("6 s", "3 s"), 16: ("1.5 min", "2 s"),
}


def lessons():
    """{number: path} for every lessons/NN_topic.py."""
    found = {}
    for path in sorted(LESSONS_DIR.glob("[0-9][0-9]_*.py")):
        found[int(path.name[:2])] = path
    return found


def title(path):
    """The first line of the lesson's docstring, without its "Lesson N: " prefix."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or path.stem
    first = docstring.strip().splitlines()[0].rstrip(".")
    head, sep, rest = first.partition(": ")
    return rest if sep and head.lower().startswith("lesson") else first


def print_list(found):
    print("minigrad lessons (run one with: python lessons N [--quick] [--out DIR])\n")
    print(f"  {'N':>2}  {'time':>7}  {'--quick':>7}  title")
    for number, path in found.items():
        full, quick = TYPICAL_TIME.get(number, ("?", "?"))
        print(f"  {number:>2}  {full:>7}  {quick:>7}  {title(path)}   [{path.name}]")
    print("\nexercises: write backward passes yourself in lessons/exercises/, then: python lessons check [name]")


def check(argv):
    """python lessons check [name ...] [--solutions | --dir DIR]: grade exercises, print a report."""
    if str(LESSONS_DIR) not in sys.path:
        sys.path.insert(0, str(LESSONS_DIR))           # the exercises import each other as exercises.*
    from exercises import checks
    parser = argparse.ArgumentParser(prog="python lessons check",
                                     description="Grade the exercises in lessons/exercises/ against minigrad.")
    parser.add_argument("names", nargs="*", metavar="name",
                        help=f"exercises to grade (default: all): {', '.join(checks.EXERCISES)}")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--solutions", action="store_true", help="grade the reference solutions instead")
    where.add_argument("--dir", type=Path, help="grade the exercise files in this folder instead")
    options = parser.parse_args(argv)
    unknown = [name for name in options.names if name not in checks.EXERCISES]
    if unknown:
        print(f"lessons check: no exercise {unknown[0]!r}; the exercises are {', '.join(checks.EXERCISES)}",
              file=sys.stderr)
        return 2
    folder = EXERCISES_DIR / "solutions" if options.solutions else options.dir or EXERCISES_DIR
    results = checks.check(options.names or list(checks.EXERCISES), folder)
    print(f"Grading the exercises in {checks.shown(str(folder))}: each answer against minigrad's, on cases "
          f"that mg.gradcheck first confirms by central differences\n")
    for result in results:
        first, *rest = result.message.splitlines()
        print(f"  {result.status}  {result.name:14s} {first}")
        for line in rest:
            print(f"        {line}")
    passed = sum(result.passed for result in results)
    todo = sum(result.status == "TODO" for result in results)
    print(f"\n{passed} of {len(results)} pass" + (f"; {todo} not written yet" if todo else ""))
    if todo:
        print("To do one: open its file, read the math at the top, replace `raise NotImplementedError(...)`\n"
              "with your code and run `python lessons check NAME` again.")
    return 0 if passed == len(results) else 1


def main(argv):
    found = lessons()
    if not argv or argv[0] in ("-l", "--list", "list"):
        print_list(found)
        return 0
    if argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv[0] == "check":
        return check(argv[1:])
    try:
        number = int(argv[0])
    except ValueError:
        number = None
    if number not in found:
        valid = ", ".join(str(n) for n in found)
        print(f"lessons: no lesson {argv[0]!r}; valid numbers are {valid} (run `python lessons` for the list)",
              file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, str(found[number]), *argv[1:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

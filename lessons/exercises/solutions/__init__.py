"""Reference solutions to the exercises one folder up (same file and function names).

`python lessons check --solutions` grades them; CI runs it, so they stay right.
Each answer carries its derivation in comments; the math it starts from is in the
exercise's own file.
"""

"""`python -m loralint` is the `loralint` command."""

from loralint.cli import run

run()

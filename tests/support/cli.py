"""The ``minideconv`` command called in this process, as the tests of its exit statuses
and messages call it, and the one-line error they expect."""

from __future__ import annotations

from minideconv import cli


def main_status(argv) -> int:
    """``cli.main(argv)``'s exit status, that of argparse's own errors (a SystemExit)
    included."""
    try:
        return cli.main(argv)
    except SystemExit as exit_:             # argparse's own errors
        return exit_.code


def assert_one_error_line(err, command, flag, text):
    """One line, argparse's errors (``argument --flag: ...``) and ours alike."""
    lines = err.splitlines()
    assert "Traceback" not in err
    assert len(lines) == 1, err
    (last,) = lines
    assert last.startswith(f"minideconv {command}: error: "), last
    assert flag in last and text in last, last

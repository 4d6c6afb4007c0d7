"""The ``minideconv`` command called in this process, as the tests of its exit statuses
and messages call it."""

from __future__ import annotations

from minideconv import cli


def main_status(argv) -> int:
    """``cli.main(argv)``'s exit status, that of argparse's own errors (a SystemExit)
    included."""
    try:
        return cli.main(argv)
    except SystemExit as exit_:             # argparse's own errors
        return exit_.code

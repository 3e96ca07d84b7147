"""Errors for expected data problems and the thin wrapper every step's ``main()`` uses."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

LOG = logging.getLogger("pipeline_steps")

#: Exit code for a data or configuration problem the user must fix (not a crash).
EXIT_DATA_ERROR = 2


class DataError(Exception):
    """An expected problem with input data, reported without a traceback.

    Args:
        file: The file (or directory) the problem was found in.
        column: The column concerned, or None when the problem is not about one column.
        problem: What is wrong, in words a data scientist can act on.
    """

    def __init__(self, file: object, column: str | None, problem: str) -> None:
        self.file = str(file)
        self.column = column
        self.problem = problem
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """One line: ``file: column 'x': problem`` (the column part only when known)."""
        where = f"{self.file}: column '{self.column}'" if self.column else self.file
        return f"{where}: {self.problem}"


def configure_logging() -> None:
    """Log to stderr with timestamps, at INFO, the way CloudWatch shows processing logs."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_main(
    main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None
) -> int:
    """Run a step's ``main`` and turn a :class:`DataError` into one message and a non-zero exit.

    Args:
        main: The step's main function, taking the argument list.
        argv: Arguments; when None, ``sys.argv[1:]``.

    Returns:
        0 on success, :data:`EXIT_DATA_ERROR` on a data error. Other exceptions propagate
        (a traceback there means a bug, not bad data).
    """
    configure_logging()
    try:
        main(argv)
    except DataError as err:
        print(f"ERROR: {err.message}", file=sys.stderr)
        return EXIT_DATA_ERROR
    return 0

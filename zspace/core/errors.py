import re


class ZspaceError(Exception):
    """A user error: the CLI prints it as one line and exits with code 2.

    ``quiet`` is set on the processes of a distributed run that must not print it
    (the error is printed once, by rank 0)."""

    quiet: bool = False


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what
    a one-line error quotes of a library's or the user's code's failure."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # no terminal colours
    return (text.splitlines() or [type(exc).__name__])[0]

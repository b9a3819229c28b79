class ZspaceError(Exception):
    """A user error: the CLI prints it as one line and exits with code 2.

    ``quiet`` is set on the processes of a distributed run that must not print it
    (the error is printed once, by rank 0)."""

    quiet: bool = False

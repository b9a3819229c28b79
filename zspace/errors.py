class ZspaceError(Exception):
    """A user error: the CLI prints it as one line and exits with code 2."""

"""Errors that the command line reports as one line, without a traceback."""


class FastNSTError(Exception):
    """Base class: bad input or settings, with a message naming the file or setting."""

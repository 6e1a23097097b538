"""Errors that the command line reports as one line, without a traceback."""


class FastNSTError(Exception):
    """Base class: bad input or settings, with a message naming the file or setting."""


def one_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, without terminal colour codes (torch adds some)."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return (text.splitlines() or [exc.__class__.__name__])[0][:limit]

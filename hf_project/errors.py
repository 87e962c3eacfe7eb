"""The one exception type that reaches the user as a one-line message instead of a traceback."""


class UserError(Exception):
    """Bad input the user can fix: the message names the problem and the fix, on one line."""

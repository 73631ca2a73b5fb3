"""The one exception type that reaches the user as a clean one-line message."""


class UserError(Exception):
    """Bad input or an unusable environment: `build.py` prints the message and exits with 2.

    The message is one line that says what is wrong and what to do next.
    """

    exit_code = 2

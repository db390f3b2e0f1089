"""The one error type whose message is shown to users as it is."""


class UserError(Exception):
    """A problem the user can fix; the message says what and where.

    The command line prints it on one line, prefixed with ``error:``, and
    exits with status 1; no traceback is shown.
    """

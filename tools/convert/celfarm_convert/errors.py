"""The one error type the converter reports to users: a message, never a stack trace."""


class ConvertError(Exception):
    """A problem with the user's input files or options; printed as `error: <message>`."""

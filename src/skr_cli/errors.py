"""The one error a run reports to the user as a line rather than a traceback."""


class UserError(Exception):
    """A mistake in what the user asked for: reported as one line, never as a traceback."""

"""The one base class of every user-facing error, and the data package's own error.

Every error a user can cause (a bad file, a bad option, a damaged run, a bad name) is a subclass of
:class:`NamestudioError`. Its message is one line that names what failed and what to do, so the CLI prints it
as is (``namestudio: error: …``) and the TUI shows it in a notice or a modal. Anything else is a bug.
"""


class NamestudioError(Exception):
    """A user-facing error; the message is one line."""


class DataError(NamestudioError):
    """A dataset could not be read, downloaded or cleaned.

    The message is a single line that names the file or source at fault, so a
    CLI can print it as is and a TUI can show it in a modal.
    """

"""The one exception type the data package raises for bad input."""


class DataError(Exception):
    """A dataset could not be read, downloaded or cleaned.

    The message is a single line that names the file or source at fault, so a
    CLI can print it as is and a TUI can show it in a modal.
    """

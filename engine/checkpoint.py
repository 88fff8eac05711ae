"""Moved to engine/runfolder.py (the one owner of the run-folder format); kept so old imports work."""
from .runfolder import *  # noqa: F401,F403
from .runfolder import __all__, _first_line  # noqa: F401

"""`python -m namestudio ...` runs the `namestudio` command; so does `torchrun --nproc-per-node N -m namestudio train ...`.

This folder is installed as the `namestudio` package itself (pyproject.toml maps it), which holds only this file:
namestudio stays a namespace package whose parts are tui/, engine/ and data/.
"""

from namestudio.tui.cli import run_command

run_command()

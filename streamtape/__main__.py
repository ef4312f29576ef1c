"""``python -m streamtape``: the command line, as the ``streamtape`` script."""

from .cli import main

main()

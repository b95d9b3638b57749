"""``python -m neumat``: the same as the ``neumat`` command."""

from .cli import main

main()

"""``python -m puente`` is the ``puente`` command."""

from puente.cli import main

main()

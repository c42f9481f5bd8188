"""``python -m puente`` is the ``puente`` command."""

from puente.app.cli import main

main()

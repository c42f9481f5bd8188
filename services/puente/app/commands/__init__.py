"""The commands of ``puente``, one module per command group; thin: parse, wire (from the
:class:`~puente.app.runtime.Runtime`), call the library, print."""

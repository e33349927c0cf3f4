"""The ``auditlens`` command. ``main`` builds the parser from one module per subcommand (each adds its
parser and sets the function that runs it) and dispatches; nothing here loads torch before a command
needs it."""

from .command import main

__all__ = ["main"]

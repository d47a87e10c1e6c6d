"""One module per ``lensref`` subcommand; see :mod:`lensref.cli`."""

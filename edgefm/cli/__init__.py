"""The ``edgefm`` command line: one module per command group, composed in :mod:`edgefm.cli.main`."""

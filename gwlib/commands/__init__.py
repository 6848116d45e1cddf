"""Subcommands of the ``gwlib`` command that live outside :mod:`gwlib.cli`.

Each module has ``add_parser(subparsers)`` (registers the subcommand with the flags of
design §4.1 and ``func=run``) and ``run(args) -> int`` (the exit code).
"""

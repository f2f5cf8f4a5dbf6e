"""Subcommand groups of the ``mlscale`` command (private)."""

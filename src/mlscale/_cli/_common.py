"""Arguments and helpers shared by several subcommands (defined in :mod:`mlscale.apps.args`, which apps use too)."""

from __future__ import annotations

from mlscale.apps.args import add_data_dir_arg, add_registry_arg, data_dir, registry_root

__all__ = ["add_data_dir_arg", "add_registry_arg", "data_dir", "registry_root"]

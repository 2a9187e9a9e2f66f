"""Runtime subcommands of ``anyecg-edge`` (see :mod:`anyecg_edge.cli`)."""

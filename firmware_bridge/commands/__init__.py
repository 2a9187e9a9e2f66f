"""``anyecg-edge`` subcommands provided by the firmware bridge (entry-point group ``anyecg_edge.commands``)."""

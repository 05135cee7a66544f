"""The `takt` command line: the only place that prints and chooses exit codes."""

"""The `numpy-ref` command line. Each subcommand lives in `numpy_ref_cli.commands`."""

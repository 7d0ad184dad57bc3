"""The logic of each command, returning plain data; no typer, no rich here."""

"""A downstream consumer of the siro warehouse, written as a user would: its own module,
its own asset, its own output file, merged with the project's Definitions."""

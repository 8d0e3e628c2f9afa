"""One adapter module per peer, each with its job and the settings it changes, in its docstring."""

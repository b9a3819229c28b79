"""The command line: one module per stage's verbs; ``main`` parses and calls."""

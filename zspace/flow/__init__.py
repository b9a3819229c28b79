"""The flow: the order in which stages run (train with its loggers, pipeline, demo).

Every stage module imports only earlier stages; this package is the one place that
wires them together, and the CLI calls it.
"""

"""Latent-space analyses: pure functions on NumPy arrays returning small frozen results.

Each module holds one analysis; ``runner`` holds the registry and ties them to a run folder;
``api`` exposes them. Nothing in the analysis modules touches files or matplotlib, so a
notebook can call them on any array.
"""

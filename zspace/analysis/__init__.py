"""Latent-space analyses: pure functions on NumPy arrays returning small frozen results.

Each module holds one analysis; ``runner`` ties them to a run folder and ``api``/``cli``
expose them. Nothing in the analysis modules touches files or matplotlib, so a
notebook can call them on any array.
"""

ANALYSES = ("radius", "axes", "pca", "tsne", "kmeans", "vae")

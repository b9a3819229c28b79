"""Run folders: their files (config, meta, history), checkpoints, bundles, and ``Run``."""

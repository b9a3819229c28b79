"""Figures and HTML pages from saved analysis results (no analysis is recomputed here)."""

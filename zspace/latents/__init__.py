"""Latents: encoding a split once (``encode``) and the file format every analysis reads
(``store``)."""

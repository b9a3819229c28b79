"""Models: the convolutional AE/VAE, its loss terms and its size before it is built."""

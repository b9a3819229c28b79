"""File readers, one module per layout; ``zspace.data.sources`` lists them."""

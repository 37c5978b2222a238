"""Model definitions (``nn.Module``s only) and small loaders that build them from weight files."""

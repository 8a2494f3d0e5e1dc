"""Programs a person runs: ``python -m spore.examples.<name>``."""

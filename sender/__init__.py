"""drip: a code-first email drip-campaign engine."""

__version__ = "0.1.0"

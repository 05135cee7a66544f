"""Takt: a GitOps compiler for machine learning on the factory floor."""

__version__ = "0.1.0"

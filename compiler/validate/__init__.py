"""The validation pipeline: structure → references → semantics → policies."""

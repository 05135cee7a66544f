"""Model checks: digests, inspection, and static compatibility with a target runtime."""

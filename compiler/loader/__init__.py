"""Reading spec files: bytes → text → YAML nodes → plain data with the position of every node."""

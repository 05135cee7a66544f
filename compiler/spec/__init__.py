"""The spec language `takt/v1`: one pydantic model per kind, the typed truth of each."""

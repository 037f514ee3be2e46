"""Wrappers of the one prediction path for each place it runs (filled by the serving and deployment work)."""

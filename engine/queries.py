"""Placeholder: filtered, sorted, paginated reads and counts (being written)."""

"""Placeholder: orchestration machinery and policies (being written)."""

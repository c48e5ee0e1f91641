"""Placeholder: task-run dependencies and the flow-run graph (being written)."""

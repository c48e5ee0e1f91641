"""Testing support: the pytest plugin (engine.testing.plugin, auto-registered
through the `pytest11` entry point) and one-line state-setup helpers
(engine.testing.helpers)."""

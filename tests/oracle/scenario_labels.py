"""Labels that stand in for the random ids and pause keys of one replayed scenario.

Prefect draws fresh UUIDs for every run and state, and invents a pause key when a pause
has none; the corpus names them instead (`flow_run`, `state:h2`, `transition_id:T1`,
`auto-pause-key-1`, README §1.6) so outcomes can be compared across engines.
"""
from __future__ import annotations

import re
import uuid

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Labels:
    """The labels of one replay, both ways: `ids[label]` and `names[str(id)]`."""

    def __init__(self, literal_pause_keys: set):
        self.ids: dict[str, uuid.UUID] = {}
        self.names: dict[str, str] = {}
        self.symbols: dict[str, uuid.UUID] = {}
        self.literal_pause_keys = literal_pause_keys
        self.auto_pause_keys: dict[str, str] = {}
        self.other_states = 0

    def name(self, label: str, rid: uuid.UUID) -> uuid.UUID:
        self.ids[label] = rid
        self.names[str(rid)] = label
        return rid

    def name_other_state(self, state_id: uuid.UUID) -> None:
        """A state row written for some run other than the one a step targeted."""
        self.other_states += 1
        self.name(f"state:other-{self.other_states}", state_id)

    def of(self, rid) -> str | None:
        return None if rid is None else self.names.get(str(rid), f"<unlabelled {rid}>")

    def symbol(self, key: str, sym: str) -> uuid.UUID:
        """Equal symbols (`"T1"`) in a scenario stand for one UUID, labelled `transition_id:T1`."""
        if sym not in self.symbols:
            self.symbols[sym] = uuid.uuid4()
            self.names[str(self.symbols[sym])] = f"{key}:{sym}"
        return self.symbols[sym]

    def in_text(self, text):
        """`text` with every known id replaced by `<label>`."""
        if not isinstance(text, str):
            return text
        return UUID_RE.sub(lambda m: f"<{self.names.get(m.group(0), m.group(0))}>", text)

    def pause_key(self, key):
        """Keys the scenario wrote stay as they are; keys Prefect invented get numbered."""
        if key is None or key in self.literal_pause_keys:
            return key
        if key not in self.auto_pause_keys:
            self.auto_pause_keys[key] = f"auto-pause-key-{len(self.auto_pause_keys) + 1}"
        return self.auto_pause_keys[key]

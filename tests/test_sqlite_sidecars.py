"""The SQLite backend's -wal and -shm: a clean close leaves the database file alone
holding every commit, and leaves no -wal or -shm unless a reader still holds the file;
then whoever closes last (the reader, the writer, the next open) removes them. Nothing
removes a -wal a writer is still using, or one holding commits the file lacks."""
from __future__ import annotations

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_backends_support import ROOT, dump, names_in_the_file_alone, reader_elsewhere  # noqa: E402

from engine import Engine  # noqa: E402


def _names(folder) -> list:
    return sorted(os.listdir(folder))


def _flow_names(engine: Engine) -> set:
    return {f.name for f in engine.read_flows()}


def _elsewhere(code: str, *args: str) -> str:
    """Run `code` in another process (the repository importable); its stdout."""
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


# Another process's plain SQLite connection that reads and closes: as the last connection,
# its close checkpoints and deletes the -wal and -shm.
_CLIENT = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT 1 FROM flow').fetchall(); c.close()"
_READ_ONLY_NAMES = ("import sys; from engine import Engine\n"
                    "with Engine.open(sys.argv[1], read_only=True) as e: print(sorted(f.name for f in e.read_flows()))")
_TIDY = "import sys; from backends.sqlite import _remove_sidecars; _remove_sidecars(sys.argv[1])"


def test_a_clean_close_leaves_the_database_file_alone(tmp_path):
    path = tmp_path / "runs.db"
    with Engine.open(f"sqlite:///{path}") as writer:
        writer.create_flow("kept")
    assert _names(tmp_path) == ["runs.db", "runs.db.lock"]
    assert names_in_the_file_alone(path) == {"kept"}


def test_a_writer_closing_while_another_process_reads_leaves_every_commit_in_the_file(tmp_path):
    """The reader's lock keeps the close from being the last connection's, which alone
    may delete the -wal: the close empties it into the file first. The next open
    (here a read-only one) removes what stayed; a writer reopening sees everything."""
    path = tmp_path / "runs.db"
    url = f"sqlite:///{path}"
    with Engine.open(url) as writer:
        writer.create_flow("before")
    writer = Engine.open(url)
    writer.create_flow("during")
    expected = dump(writer)
    with reader_elsewhere(path):
        writer.close()
        assert os.path.getsize(f"{path}-wal") == 0  # left, but empty
        assert names_in_the_file_alone(path) == {"before", "during"}
    with Engine.open(url, read_only=True) as reader:
        assert dump(reader) == expected
    assert _names(tmp_path) == ["runs.db", "runs.db.lock"]
    with Engine.open(url) as writer:
        assert dump(writer) == expected
    assert _names(tmp_path) == ["runs.db", "runs.db.lock"]


def test_a_reader_a_writer_closed_under_removes_what_it_left(tmp_path, monkeypatch):
    """A writer opens, commits and closes while a read-only open reads the bare file:
    the reader reads again through the writer's -wal, then, closing last, removes it."""
    import backends.sqlite as sqlite_backend

    path = tmp_path / "runs.db"
    url = f"sqlite:///{path}"
    with Engine.open(url) as writer:
        writer.create_flow("before")
    read = sqlite_backend.SqliteBackend._read_only_records

    def writer_comes(self, options: str) -> dict:
        if "immutable" in options:
            with Engine.open(url) as writer:
                writer.create_flow("mid-read")
            assert os.path.getsize(f"{path}-wal") == 0 and os.path.exists(f"{path}-shm")
            assert names_in_the_file_alone(path) == {"before", "mid-read"}
        return read(self, options)

    monkeypatch.setattr(sqlite_backend.SqliteBackend, "_read_only_records", writer_comes)
    with Engine.open(url, read_only=True) as reader:
        assert _flow_names(reader) == {"before", "mid-read"}
    assert _names(tmp_path) == ["runs.db", "runs.db.lock"]
    monkeypatch.undo()
    with Engine.open(url) as writer:
        assert _flow_names(writer) == {"before", "mid-read"}


def test_a_read_only_open_in_a_writers_process_keeps_the_writers_wal_safe(tmp_path):
    """Closing any descriptor of the file drops every lock this process holds on it: a
    read-only open in the writer's own process must not drop the writer's, or another
    process's last close deletes the -wal the writer still writes to (its later
    commits then go to a deleted file, unseen by readers and lost if it dies)."""
    path = tmp_path / "runs.db"
    url = f"sqlite:///{path}"
    with Engine.open(url) as writer:
        writer.create_flow("before")
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    with Engine.open(url) as writer:
        with Engine.open(url, read_only=True) as reader:
            assert _flow_names(reader) == {"before"}
        _elsewhere(_CLIENT, str(path))
        assert os.path.exists(f"{path}-wal")  # its close was not the last connection's
        _elsewhere(_TIDY, str(path))
        assert os.path.exists(f"{path}-wal")
        writer.create_flow("after")
        assert _elsewhere(_READ_ONLY_NAMES, url).strip() == "['after', 'before']"
    assert _names(tmp_path) == ["runs.db", "runs.db.lock"]
    assert names_in_the_file_alone(path) == {"before", "after"}
    if fds is not None:  # the read-only open's descriptor, kept for the writer's close, is closed
        assert len(os.listdir("/proc/self/fd")) == fds


def test_nothing_removes_the_empty_wal_of_a_writer_that_is_open(tmp_path):
    """A writer that has not committed yet has an empty -wal: it is in use all the same."""
    path = tmp_path / "runs.db"
    url = f"sqlite:///{path}"
    with Engine.open(url) as writer:
        writer.create_flow("before")
    from backends.sqlite import _remove_sidecars

    with Engine.open(url) as writer:
        assert os.path.getsize(f"{path}-wal") == 0
        _remove_sidecars(str(path))  # this process: SQLite counts the writer's connection
        _elsewhere(_TIDY, str(path))  # another process: the writer's lock
        with Engine.open(url, read_only=True) as reader:
            assert _flow_names(reader) == {"before"}
        assert os.path.exists(f"{path}-wal") and os.path.exists(f"{path}-shm")
        writer.create_flow("after")
        assert _elsewhere(_READ_ONLY_NAMES, url).strip() == "['after', 'before']"
    assert _names(tmp_path) == ["runs.db", "runs.db.lock"]


def test_a_read_only_open_leaves_the_wal_of_a_writer_that_died_as_it_was(tmp_path):
    """Its -wal holds commits the file lacks: a reader reads them and changes nothing;
    the next writer takes them into the file and removes the -wal."""
    path = tmp_path / "runs.db"
    url = f"sqlite:///{path}"
    with Engine.open(url) as writer:
        writer.create_flow("before")
    _elsewhere("import os, sys; from engine import Engine\n"
               "e = Engine.open(sys.argv[1]); e.create_flow('unclosed'); os._exit(0)", url)
    assert os.path.getsize(f"{path}-wal") > 0
    names = _names(tmp_path)
    before = [open(f"{path}{suffix}", "rb").read() for suffix in ("", "-wal")]
    with Engine.open(url, read_only=True) as reader:
        assert _flow_names(reader) == {"before", "unclosed"}
    # (SQLite's read may rebuild the index in the -shm, as any reader's does)
    assert _names(tmp_path) == names
    assert [open(f"{path}{suffix}", "rb").read() for suffix in ("", "-wal")] == before
    with Engine.open(url) as writer:
        assert _flow_names(writer) == {"before", "unclosed"}
    assert _names(tmp_path) == ["runs.db", "runs.db.lock"]
    assert names_in_the_file_alone(path) == {"before", "unclosed"}


def test_batched_close_under_a_reader_leaves_the_batch_in_the_file(tmp_path):
    path = tmp_path / "runs.db"
    url = f"sqlite:///{path}"
    writer = Engine.open(url, batch=50)
    for i in range(7):
        writer.create_flow(f"f{i}")
    with reader_elsewhere(path):
        writer.close()  # flushes the batch, then empties the -wal into the file
        assert names_in_the_file_alone(path) == {f"f{i}" for i in range(7)}
    with Engine.open(url) as writer:
        assert len(_flow_names(writer)) == 7
    assert _names(tmp_path) == ["runs.db", "runs.db.lock"]


def test_a_writer_dropped_unclosed_no_longer_keeps_read_only_descriptors(tmp_path):
    """A read-only open beside a writer of its process keeps its descriptor for that
    writer's close; a writer never closed hands them back when it is collected."""
    import gc

    import backends.sqlite as sqlite_backend

    path = tmp_path / "runs.db"
    url = f"sqlite:///{path}"
    with Engine.open(url) as writer:
        writer.create_flow("before")
    writer = Engine.open(url)
    with Engine.open(url, read_only=True) as reader:
        assert _flow_names(reader) == {"before"}
    key = (os.stat(path).st_dev, os.stat(path).st_ino)
    assert len(sqlite_backend._writers[key]) == 1
    del writer
    gc.collect()
    assert key not in sqlite_backend._writers

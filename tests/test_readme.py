"""Every ```python block in README.md runs as written (```py blocks are fragments).

Each block runs in a fresh namespace, in a temporary working directory, so blocks
that create files (e.g. a SQLite store) leave nothing behind.
"""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)


def test_readme_has_runnable_examples():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    code = BLOCKS[index]
    namespace = {"__name__": f"readme_block_{index}"}
    exec(compile(code, f"README.md block {index}", "exec"), namespace)  # noqa: S102
    # a block that defines test functions (the pytest plugin example) is run by
    # tests/test_plugin.py with fixtures; here we only check it compiles and imports

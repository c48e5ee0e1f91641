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


def _setup_commands() -> list[str]:
    # The README's opening bash block: comment lines, each followed by its command.
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    assert block, "README.md must open with a bash block of set-up commands"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_ci_runs_exactly_the_readme_test_command():
    commands = _setup_commands()
    assert len(commands) == 2, commands  # one for the main job, one for the tests
    test_command = next(c for c in commands if "pytest" in c)
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci_lines, f".ci/run must run {test_command!r} as written in README.md"


def test_every_public_engine_method_states_its_cost():
    # As sortedcontainers does: the docstring says what a call costs, so a reader
    # need not find the README's table (which gives the long story).
    import inspect

    from engine import Engine

    public = [name for name in dir(Engine) if not name.startswith("_") and callable(getattr(Engine, name))]
    unstated = [name for name in public if "O(" not in (inspect.getdoc(getattr(Engine, name)) or "")]
    assert len(public) > 100 and unstated == []

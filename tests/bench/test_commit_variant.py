"""bench/run.py's ``BENCH_GATEWAY_COMMIT``: a gateway variant served from another commit's tree,
so a change's before and after are measured side by side in one run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import run  # noqa: E402


def test_the_commits_tree_is_exported_as_it_was(tmp_path: Path) -> None:
    first = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    root_commit = first.stdout.split()[0]
    listed = subprocess.run(["git", "ls-tree", "--name-only", root_commit], cwd=ROOT, capture_output=True, text=True)
    tree = run.export_commit(root_commit, tmp_path / "source")
    assert sorted(path.name for path in tree.iterdir()) == sorted(listed.stdout.split())


def test_an_unknown_commit_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="git archive no-such-commit failed"):
        run.export_commit("no-such-commit", tmp_path / "source")

"""`reconciler demo` works offline and shows the edits naive sync code misses."""

from __future__ import annotations

from pathlib import Path

from reconciler.demo import run_demo


def test_demo_syncs_edits_and_prints_the_change_feed(tmp_path: Path) -> None:
    lines: list[str] = []
    assert run_demo(f"sqlite:///{tmp_path}/demo.db", echo=lines.append) == 0
    text = "\n".join(lines)
    assert "sequence 0 -> 0" in text
    feed = [line for line in lines if line.startswith("  #")]
    kinds = {line.split()[1]: line for line in feed}
    assert sorted(kinds) == ["deleted", "updated"] and len(feed) == 2
    assert "Release day" in kinds["deleted"]
    assert "Quarterly planning (v2)" in kinds["updated"]
    assert "fields: end, start, summary" in kinds["updated"]  # what changed, not only that it did

"""The run store: torn-line repair, de-duplication, safe run names."""

from __future__ import annotations

import json

import pytest

from audit.core.errors import UsageError
from audit.core.types import Record
from audit.store.run_store import RunStore, read_records, repair_records


def _rec(i: int) -> Record:
    return Record(
        key=f"s/{i}/0", suite="s", item_id=str(i), template_id=None, sample=0, prompt=f"p{i}",
        completion=f"c{i} <script>alert(1)</script> \u200b 🙂", attributes={"group": "a"}, scores={"x": 0.5},
    )


def test_append_and_read_back(tmp_path) -> None:
    store = RunStore(tmp_path, "r1")
    store.append([_rec(0), _rec(1)])
    store.append([_rec(2)])
    store.close()
    got = read_records(tmp_path / "r1")
    assert [r.key for r in got] == ["s/0/0", "s/1/0", "s/2/0"]
    assert got[0].completion == _rec(0).completion


def test_torn_last_line_is_cut_off(tmp_path) -> None:
    store = RunStore(tmp_path, "r1")
    store.append([_rec(0), _rec(1)])
    store.close()
    path = tmp_path / "r1" / "records.jsonl"
    with path.open("ab") as fh:
        fh.write(_rec(2).to_json().encode()[:37])  # a write cut by SIGKILL
    rows = repair_records(path)
    assert [r["key"] for r in rows] == ["s/0/0", "s/1/0"]
    assert path.read_bytes().endswith(b"\n")
    assert len(path.read_text().splitlines()) == 2
    # appending after the repair gives a valid file
    store = RunStore(tmp_path, "r1")
    store.append([_rec(2)])
    store.close()
    assert [r.key for r in read_records(tmp_path / "r1")] == ["s/0/0", "s/1/0", "s/2/0"]


def test_duplicates_dropped_and_garbage_quarantined_without_hiding_later_lines(tmp_path) -> None:
    path = tmp_path / "records.jsonl"
    lines = [_rec(0).to_json(), _rec(0).to_json(), _rec(1).to_json(), "{not json", _rec(2).to_json()]
    path.write_text("\n".join(lines) + "\n")
    rows = repair_records(path)
    assert [r["key"] for r in rows] == ["s/0/0", "s/1/0", "s/2/0"]
    assert [json.loads(x)["key"] for x in path.read_text().splitlines()] == ["s/0/0", "s/1/0", "s/2/0"]
    quarantined = [json.loads(x) for x in (tmp_path / "records.quarantine.jsonl").read_text().splitlines()]
    assert quarantined == [{"line": 4, "text": "{not json"}]


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".hidden", "x" * 200, "a..b"])
def test_run_names_cannot_escape_the_out_folder(tmp_path, bad: str) -> None:
    with pytest.raises(UsageError, match="invalid run name"):
        RunStore(tmp_path, bad)


def test_readers_never_rewrite_a_run_being_written(tmp_path) -> None:
    store = RunStore(tmp_path, "r1")
    store.lock()
    store.append([_rec(0)])
    path = tmp_path / "r1" / "records.jsonl"
    with path.open("ab") as fh:
        fh.write(_rec(1).to_json().encode()[:20])  # the writer is mid-line
    before = path.read_bytes()
    assert [r.key for r in read_records(tmp_path / "r1")] == ["s/0/0"]
    assert path.read_bytes() == before  # untouched: the writer's next bytes land in the same file
    store.close()


def test_one_writer_per_run(tmp_path) -> None:
    a = RunStore(tmp_path, "r1")
    a.lock()
    b = RunStore(tmp_path, "r1")
    with pytest.raises(UsageError, match="being written by another process"):
        b.lock()
    a.close()
    b.lock()  # free again once the first writer is done
    b.close()

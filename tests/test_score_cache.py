"""The proxy score cache: nothing lost on a kill, nothing erased by a second process."""

from __future__ import annotations

from rlnas.accuracy import score_cache
from rlnas.accuracy.score_cache import ScoreCache, ScoreKey


def key(arch: str) -> ScoreKey:
    return ScoreKey("digest", arch, "synflow@v2", "none", 32, 64, 0)


def test_put_writes_the_file_once_the_interval_has_passed(tmp_path, monkeypatch):
    path = tmp_path / "cache.parquet"
    cache = ScoreCache(path)
    cache.put(key("a"), 1.0)
    assert not path.exists()  # within the interval: kept in memory
    monkeypatch.setattr(score_cache, "FLUSH_EVERY_S", 0.0)
    cache.put(key("b"), 2.0)
    # as after a kill: a new process reads both rows back without any explicit flush
    assert ScoreCache(path).values == {key("a"): 1.0, key("b"): 2.0}


def test_two_processes_sharing_the_file_keep_each_others_rows(tmp_path):
    path = tmp_path / "cache.parquet"
    first, second = ScoreCache(path), ScoreCache(path)
    first.put(key("a"), 1.0)
    second.put(key("b"), 2.0)
    first.flush()
    second.flush()
    assert ScoreCache(path).values == {key("a"): 1.0, key("b"): 2.0}
    # a row this process holds is not replaced by the file's
    first.put(key("b"), 3.0)
    first.flush()
    assert ScoreCache(path).values[key("b")] == 3.0

"""The bounded LRU behind the caption, OCR and Tesseract caches."""

from __future__ import annotations

from workers.lru import LruCache


def test_the_least_recently_used_entry_goes_first_and_size_zero_keeps_nothing() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the oldest
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)
    cache.clear()
    assert len(cache) == 0
    nothing: LruCache[str, int] = LruCache(0)
    nothing.put("a", 1)
    assert nothing.get("a") is None

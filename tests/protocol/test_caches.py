"""protocol/caches.py: the one cache type, bounded whatever is put in it."""

from protocol.caches import BoundedCache
from protocol.h1_parse import field_cache
from protocol.h2_connection import H2Connection


def test_a_full_cache_is_emptied_and_long_keys_are_not_kept():
    c = BoundedCache(3, max_key=5)
    for k in "abc":
        c.remember(k, k.upper())
    assert c.data == {"a": "A", "b": "B", "c": "C"}
    c.remember("d", "D")  # full: emptied first
    assert c.data == {"d": "D"}
    c.remember("longkey", 1)
    assert "longkey" not in c and len(c) == 1


def test_every_protocol_cache_is_one():
    assert isinstance(field_cache("1.1", 128, 1 << 20), BoundedCache)
    conn = H2Connection()
    assert all(isinstance(c, BoundedCache) for c in (conn._decoded, conn._encoded, conn._validated))
    for i in range(1000):
        conn._validated.remember(i, i)
    assert len(conn._validated) <= 256

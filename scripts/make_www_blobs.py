"""Write the static site's binary test file, reproducibly: ``python scripts/make_www_blobs.py``.

``www/static/1mb.bin`` is 1 MiB (1_048_576 bytes) of incompressible but deterministic bytes: the
SHA-256 digests of ``b"concurrency-lab 1mb.bin block %d"`` for blocks 0..32767, concatenated.
tests/app/test_static.py checks the committed file against :func:`one_mib`.
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["one_mib", "main"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 1024 * 1024


def one_mib() -> bytes:
    """The 1 MiB content of ``www/static/1mb.bin``."""
    blocks = (hashlib.sha256(b"concurrency-lab 1mb.bin block %d" % i).digest() for i in range(SIZE // 32))
    return b"".join(blocks)


def main() -> None:
    path = os.path.join(ROOT, "www", "static", "1mb.bin")
    with open(path, "wb") as f:
        f.write(one_mib())
    print(f"wrote {path} ({SIZE} bytes)")


if __name__ == "__main__":
    main()

"""collectstatic compresses a file once: unchanged files keep their compressed copies."""

from __future__ import annotations

import gzip
import os

from migration_planner.lib.staticfiles import IncrementalCompressor


def test_compressor_reuses_current_copies_and_redoes_stale_ones(tmp_path):
    source = tmp_path / "app.js"
    source.write_text("function f() { return 1; }\n" * 2_000)
    compressor = IncrementalCompressor(quiet=True)
    first = sorted(compressor.compress(str(source)))
    assert first and all(p.startswith(str(source) + ".") for p in first)
    stamps = {p: os.stat(p).st_mtime_ns for p in first}
    os.utime(source, ns=(min(stamps.values()) - 10**9,) * 2)  # source older than its copies

    assert sorted(compressor.compress(str(source))) == first
    assert {p: os.stat(p).st_mtime_ns for p in first} == stamps

    source.write_text("function g() { return 2; }\n" * 2_000)
    os.utime(source, ns=(max(stamps.values()) + 10**9,) * 2)  # edited after compression
    assert sorted(compressor.compress(str(source))) == first
    assert all(os.stat(p).st_mtime_ns > stamps[p] for p in first)
    assert gzip.decompress((tmp_path / "app.js.gz").read_bytes()).startswith(b"function g()")


def test_source_maps_are_not_compressed_and_brotli_uses_a_fast_quality(tmp_path):
    """Source maps (half the collected bytes) are never served to users; brotli's top quality
    cost ~20 CPU-s of a fresh collectstatic for a few % smaller files (issue 20, first screen)."""
    import brotli

    from migration_planner.lib.staticfiles import (
        BROTLI_QUALITY,
        IncrementalCompressedStaticFilesStorage,
    )

    compressor = IncrementalCompressedStaticFilesStorage(location=str(tmp_path)).create_compressor(
        extensions=None, quiet=True
    )
    assert not compressor.should_compress("vendor/bundle.js.map")
    assert compressor.should_compress("vendor/bundle.js")
    data = b"function f() { return 1; }\n" * 2_000
    assert compressor.compress_brotli(data) == brotli.compress(data, quality=BROTLI_QUALITY)
    assert BROTLI_QUALITY < 11

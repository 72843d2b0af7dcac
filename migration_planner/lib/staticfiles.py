"""Static files storage: WhiteNoise compression that skips files whose copies are current.

`collectstatic` hands every collected file to the storage's post-processing on every run, and
WhiteNoise's compressor re-encodes each one (brotli at its highest quality costs most of the
~20-40 s). A file whose ``.gz`` (and ``.br`` when brotli is installed) copy is at least as new
as the file itself is left alone, so a second ``collectstatic`` costs only the copying.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from whitenoise.compress import Compressor
from whitenoise.storage import CompressedStaticFilesStorage


class IncrementalCompressor(Compressor):
    """A WhiteNoise compressor that reuses compressed copies newer than their source."""

    def _outputs(self, path: str) -> list[str]:
        outputs = [path + ".gz"] if self.use_gzip else []
        if self.use_brotli:
            outputs.append(path + ".br")
        return outputs

    def compress(self, path: str) -> Iterator[str]:
        source_mtime = os.stat(path).st_mtime_ns
        outputs = self._outputs(path)
        if outputs and all(
            os.path.exists(p) and os.stat(p).st_mtime_ns >= source_mtime for p in outputs
        ):
            yield from outputs
            return
        yield from super().compress(path)


class IncrementalCompressedStaticFilesStorage(CompressedStaticFilesStorage):
    """CompressedStaticFilesStorage that does not compress an unchanged file again."""

    def create_compressor(self, **kwargs: Any) -> Compressor:
        return IncrementalCompressor(**kwargs)

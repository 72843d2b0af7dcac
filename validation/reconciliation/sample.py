"""A sample_compare rule's expected rows, held on disk instead of in memory.

A 5 % sample of a 10 M-row run is ~417,000 rows of a dozen text columns: kept as frames,
concatenated and sorted at the end it was held up to three times (~400 MB of a report worker's
680 MB). Here the rows go, block by block, into an unnamed temporary file (Arrow IPC stream,
unlinked at creation: nothing is left behind, even if the worker dies) and are read back a
block at a time by the comparison; memory holds at most one block. Plain Python, no Django."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO

import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from runs.engine.rules import TEXT

SPILL_ROWS = 20_000  # sampled rows buffered before they are written out
KEY = "mp_key"  # the column that carries the frame's index (the source key text)


class SampleRows:
    """Sampled expected rows (source key text -> the columns' text), appended in the order
    the expected pass reads them and read back in blocks; ``len`` is the row count. Written
    by one thread, then read (possibly several times) by another; not for both at once."""

    def __init__(self) -> None:
        self._buffer: list[pd.DataFrame] = []
        self._buffered = 0
        self._rows = 0
        self._file: IO[bytes] | None = None
        self._writer: ipc.RecordBatchStreamWriter | None = None
        self._schema: pa.Schema | None = None
        self.peak_held = 0  # most rows ever held in memory at once (a test watches it)

    def __len__(self) -> int:
        return self._rows

    def add(self, rows: pd.DataFrame) -> None:
        """Append rows (indexed by source key text); written out once SPILL_ROWS are held."""
        if not len(rows):
            return
        self._buffer.append(rows)
        self._buffered += len(rows)
        self._rows += len(rows)
        self.peak_held = max(self.peak_held, self._buffered)
        if self._buffered >= SPILL_ROWS:
            self._spill()

    def _spill(self) -> None:
        if not self._buffer:
            return
        # joined as Arrow tables: pd.concat would re-infer the key index (and refuse a key
        # Arrow's UTF-8 cannot hold)
        table = pa.concat_tables([_to_arrow(f) for f in self._buffer])
        self._buffer, self._buffered = [], 0
        if self._writer is None:
            self._schema = table.schema
            self._file = tempfile.TemporaryFile(prefix="mp-sample-")  # noqa: SIM115 - closed by close()
            self._writer = ipc.new_stream(self._file, self._schema)
        self._writer.write_table(table.cast(self._schema))

    def finish(self) -> None:
        """Write out what is still buffered and end the stream (idempotent)."""
        if self._writer is None and not self._buffer:
            return
        self._spill()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def blocks(self, size: int) -> Iterator[pd.DataFrame]:
        """The rows in the order they were added, ``size`` at a time (the last may be
        shorter); at most one written block and one piece of it in memory."""
        return (_from_arrow(piece) for piece in self._pieces(size))

    def keys(self, size: int) -> Iterator[list[str]]:
        """The rows' keys only, in the blocks ``blocks(size)`` gives."""
        return (_keys(piece) for piece in self._pieces(size))

    def _pieces(self, size: int) -> Iterator[pa.Table]:
        self.finish()
        if self._file is None:
            return
        self._file.seek(0)
        carry: pa.Table | None = None
        for batch in ipc.open_stream(self._file):
            table = pa.Table.from_batches([batch])
            if carry is not None:
                table = pa.concat_tables([carry, table])
            whole = len(table) - len(table) % size
            for start in range(0, whole, size):
                yield table.slice(start, size)
            carry = table.slice(whole)
        if carry is not None and len(carry):
            yield carry

    def frame(self) -> pd.DataFrame:
        """Every row as one frame (tests and small samples only: memory of the whole)."""
        return next(self.blocks(max(self._rows, 1)), pd.DataFrame())

    def close(self) -> None:
        """Drop the rows and the temporary file (idempotent)."""
        self._buffer, self._buffered = [], 0
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._file is not None:
            self._file.close()
            self._file = None


def sample_rows_of(frame: pd.DataFrame) -> SampleRows:
    """A SampleRows holding ``frame``'s rows (a small sample: the ``n`` first)."""
    out = SampleRows()
    out.add(frame)
    out.finish()
    return out


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    # the keys as bytes: a key text is given back exactly, even one Arrow's UTF-8 refuses
    keys = [str(k).encode("utf-8", "surrogatepass") for k in frame.index]
    arrays = {KEY: pa.array(keys, type=pa.large_binary())}
    for column in frame.columns:
        arrays[str(column)] = pa.array(frame[column].astype(TEXT), type=pa.large_string())
    return pa.table(arrays)


def _from_arrow(batch: pa.Table) -> pd.DataFrame:
    columns = {
        name: pd.Series(pd.arrays.ArrowStringArray(batch.column(name).combine_chunks()))
        for name in batch.schema.names
        if name != KEY
    }
    frame = pd.DataFrame(columns)
    frame.index = pd.Index(_keys(batch), dtype=object)
    return frame


def _keys(batch: pa.Table) -> list[str]:
    return [k.decode("utf-8", "surrogatepass") for k in batch.column(KEY).to_pylist()]

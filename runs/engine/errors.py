"""Engine error types (no Django)."""


class EngineError(Exception):
    """Base class for engine failures that abort a batch or a run."""


class SchemaError(EngineError):
    """A table or column named by the plan does not exist in the introspected schema."""


class TransientError(EngineError):
    """A failure worth retrying (lost connection, serialization failure, deadlock)."""


class StagingError(EngineError):
    """An uploaded file could not be staged; carries the row/byte position and the reason."""

    def __init__(
        self,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
        byte: int | None = None,
    ) -> None:
        super().__init__(message)
        self.row = row
        self.column = column
        self.byte = byte

"""``Rejection``: one item a stage could not use (or had to repair), with the reason."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class IngestReason(StrEnum):
    """Why ingest dropped or repaired a metadata row. These codes are API: reports show them."""

    malformed_row = "malformed_row"  # wrong number of fields, unparsable value
    missing_field = "missing_field"  # a required column is empty
    invalid_value = "invalid_value"  # value out of range (negative window, unknown split)
    unsafe_path = "unsafe_path"  # audio path escapes the dataset root
    bad_encoding = "bad_encoding"  # bytes that are not UTF-8 (row kept, decoded as cp1252)
    duplicate_id = "duplicate_id"  # a second row with an already-seen clip id
    internal_error = "internal_error"  # a bug: exception type and message in detail


class Rejection(BaseModel):
    """A dropped (``kept=False``) or repaired-and-kept (``kept=True``) item.

    ``detail`` names the file and line or the clip so a user can find and fix the input.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: str = Field(description="Stage that recorded it: ingest, augment, generate, …")
    source: str | None = None
    item_id: str = Field(description="Clip id, or file:line for rows that never became clips.")
    reason: str = Field(description="snake_case code from the stage's Reason enum.")
    detail: str = Field(default="", description="Readable explanation: file, line, value.")
    file: str | None = None
    line: int | None = Field(default=None, ge=1)
    kept: bool = Field(default=False, description="True when the item was repaired and kept.")

    def to_row(self) -> dict[str, object]:
        """The parquet row."""
        return self.model_dump(mode="json")

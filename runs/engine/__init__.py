"""Migration engine: extract, transform, load as plain Python (no Django import allowed here)."""

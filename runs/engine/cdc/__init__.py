"""Change data capture from PostgreSQL logical decoding (``test_decoding``): parse the stream,
manage the slot and its exported snapshot, apply committed changes exactly once."""

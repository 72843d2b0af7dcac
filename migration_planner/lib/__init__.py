"""Small shared helpers: encryption, roles, errors, API glue."""

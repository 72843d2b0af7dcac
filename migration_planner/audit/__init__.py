"""The audit log: who did what to which object, when (the base every app writes to)."""

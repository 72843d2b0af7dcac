"""Signals mappings sends for the apps above it (validation listens; mappings imports none)."""

from django.dispatch import Signal

# Sent inside the writing transaction when something a plan's sign-off covers changed outside
# the plan's own models (a system it uses, a lookup upload): kwargs ``plan_id``, ``reason``.
plan_content_changed = Signal()

"""What the broker holds: the task messages waiting in the queues or delivered but not acked.

Read-only look into the Redis transport's keys (kombu: one list per queue and priority, one
``unacked`` hash of delivered messages), so the supervisor can tell a pending batch whose message
is on its way from one whose message was lost. An unacknowledged message delivered longer ago
than a lease and two supervisor periods counts as lost (its worker is gone: our transport does
not put such messages back, see migration_planner/lib/broker.py). Nothing here changes the
broker.
"""

from __future__ import annotations

import base64
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field

import redis
from django.conf import settings

# kombu's Redis transport keeps priority 0 in the queue's own key and the others in
# "<queue>\x06\x16<priority>" (its default priority steps).
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
_UNACKED = "unacked"
_UNACKED_INDEX = "unacked_index"


@dataclass
class BrokerView:
    """Task ids (first argument) per task name, and the number of waiting messages per queue."""

    args: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    depth: dict[str, int] = field(default_factory=dict)
    unacked: int = 0

    def holds(self, task: str, arg: int) -> bool:
        """True when a message for ``task(arg, ...)`` waits or is being worked."""
        return arg in self.args.get(task, set())


def queue_names() -> list[str]:
    """The queues our workers consume."""
    return [q.name for q in settings.CELERY_TASK_QUEUES]


def _client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2
    )


def _task_and_arg(raw: bytes | str) -> tuple[str, int] | None:
    """(task name, first positional argument) of one kombu message, or None if unreadable."""
    try:
        message = json.loads(raw)
        if isinstance(message, list):  # the unacked hash stores [message, exchange, key]
            message = message[0]
        task = message["headers"]["task"]
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return (task, int(args[0])) if args else None
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def broker_view() -> BrokerView | None:
    """Snapshot of the broker's queues and unacked messages; None when the broker does not
    answer (callers then leave message-dependent decisions for a later pass). Never raises."""
    view = BrokerView()
    try:
        client = _client()
        for queue in queue_names():
            view.depth[queue] = 0
            for suffix in _PRIORITY_SUFFIXES:
                messages = client.lrange(queue + suffix, 0, -1)
                view.depth[queue] += len(messages)
                for raw in messages:
                    parsed = _task_and_arg(raw)
                    if parsed:
                        view.args[parsed[0]].add(parsed[1])
        unacked = client.hgetall(_UNACKED)
        delivered = dict(client.zrange(_UNACKED_INDEX, 0, -1, withscores=True))
    except redis.RedisError:
        return None
    view.unacked = len(unacked)
    # A message delivered longer ago than this and still not started belongs to a worker
    # that is gone (a live one starts it at once or, for a retry, within a lease).
    oldest = time.time() - settings.MP_BATCH_LEASE_SECONDS - 2 * settings.MP_SUPERVISOR_SECONDS
    for tag, raw in unacked.items():
        if delivered.get(tag, time.time()) < oldest:
            continue
        parsed = _task_and_arg(raw)
        if parsed:
            view.args[parsed[0]].add(parsed[1])
    return view

"""The Celery broker transport: kombu's Redis transport without restore-on-close.

When a worker loses its broker connection (Redis restarted) or stops, kombu puts the messages
it had received but not acknowledged back in the queue as the channel closes. After a broker
restart that path crashes the whole worker (kombu 5.x: AttributeError in ``_connparams`` while
the connection is already gone: "Unrecoverable error"), and our recovery does not need it: the
supervisor re-queues every pending batch whose message is gone or sits, too old, in the
``unacked`` hash (``runs.services.broker``). Selected by ``CELERY_BROKER_TRANSPORT``.
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """Redis channel that leaves unacknowledged messages where they are when it closes."""

    do_restore = False


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the channel above."""

    Channel = Channel

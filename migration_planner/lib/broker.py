"""The Celery broker transport: kombu's Redis transport, made to survive a broker restart.

Two paths of kombu 5.x crash the whole worker ("Unrecoverable error: AttributeError" on the
closed channel's missing connection) once Redis went away and came back:
- as the old channel closes, it puts the messages it had received but not acknowledged back
  in the queue;
- a task that was running across the restart acknowledges (or rejects) its message on that
  closed channel when it ends.
Our recovery needs neither: the database records what is done, and the supervisor re-queues
every pending batch whose message is gone or sits, too old, in the ``unacked`` hash
(``runs.services.broker``). So a closed channel neither restores nor acknowledges; it logs.
Selected by ``CELERY_BROKER_TRANSPORT``.
"""

from __future__ import annotations

import logging

from kombu.transport import redis as kombu_redis

logger = logging.getLogger(__name__)


class Channel(kombu_redis.Channel):
    """Redis channel that leaves unacknowledged messages where they are when it closes, and
    ignores acknowledgements that arrive after it closed."""

    do_restore = False

    def basic_ack(self, delivery_tag, multiple: bool = False) -> None:
        if self.connection is None:
            logger.warning("message %s: channel closed (broker reconnect); not acked", delivery_tag)
            return
        super().basic_ack(delivery_tag, multiple=multiple)

    def basic_reject(self, delivery_tag, requeue: bool = False) -> None:
        if self.connection is None:
            logger.warning("message %s: channel closed (reconnect); not rejected", delivery_tag)
            return
        super().basic_reject(delivery_tag, requeue=requeue)


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the channel above."""

    Channel = Channel

"""Real servers (redis-server, single-node KRaft Kafka) on free loopback ports.

Used by the local run and the tests; servers are started as child processes and
stopped by PID. See ``scripts/bootstrap.sh`` for installing what they need.
"""

from stockstream.embedded._process import ServerStartError, pid_alive
from stockstream.embedded.kafka_broker import KafkaBroker, KafkaLibsMissingError
from stockstream.embedded.ports import free_port
from stockstream.embedded.redis_server import RedisServer
from stockstream.embedded.topics import create_topic, delete_topic, wait_for_topic

__all__ = [
    "KafkaBroker",
    "KafkaLibsMissingError",
    "RedisServer",
    "ServerStartError",
    "create_topic",
    "delete_topic",
    "free_port",
    "pid_alive",
    "wait_for_topic",
]

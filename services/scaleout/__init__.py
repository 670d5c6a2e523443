"""Scale-out mode: API replicas publish jobs to RabbitMQ, workers (`python -m worker`) run
them and write frames to Redis Streams, every process reads frames from Redis. See
docs/architecture.md for the design, the delivery guarantees and how to run it."""

"""Infrastructure adapters: Redis change store, Kafka publisher, telemetry, codec, dev stack."""

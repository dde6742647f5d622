"""What production runs besides the connectors and the engine.

Redis change store, Kafka publisher and reader, rate limiter, Temporal connection and
schedules, payload codec and codec server, telemetry. The embedded dev stack is not here: it
lives in ``devstack/``, which production never imports.
"""

"""The embedded default: real services, simulators, a worker and schedules on loopback.

Development and test tooling, not production code: ``services`` starts the Temporal dev
server, tansu and valkey as child processes; ``run`` is ``starter.py dev``. Entry points
import this package; it imports none of them (they hand it what it needs), and production
packages (``infra``, ``connectors``, ``activities``, ``workflows``) never import it.
"""

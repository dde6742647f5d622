"""Simulated upstream APIs, one ASGI app per upstream, served over real HTTP."""

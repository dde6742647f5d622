"""Kaufland Marketplace Seller API v2: signed client, order unit schema, incremental connector.

``connector.SPEC`` is the registry entry (source ``kaufland-orders``); its docstring records
the wire facts and which of them are verified or inferred.
"""

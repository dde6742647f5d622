"""Pydantic inputs, results and progress shared by workflows and activities.

Nothing here holds upstream records: these models travel through workflow history,
which keeps decisions (cursors, counts, partition ids), never data.
"""

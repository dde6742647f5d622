"""The soak harness: synchub against its simulators through simulated weeks (``make soak``).

``soak.harness`` drives one source; ``soak.plans`` names the sources that can be soaked and
their presets; ``soak.report`` prints the table; ``python -m soak`` runs it all.
"""

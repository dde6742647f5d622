"""Recorded workflow histories and the script that records them (see README, "Upgrades")."""

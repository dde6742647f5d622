"""The operator CLI's commands, one small module each; ``starter.py`` parses and dispatches."""

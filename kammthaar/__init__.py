"""`kammthaar`, the command: assembles the commands each package owns (kammthaar/cli.py) and the demo."""

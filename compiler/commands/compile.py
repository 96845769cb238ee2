"""megaspec compile commands (placeholder until its owner fills it in)."""

COMMANDS: list = []

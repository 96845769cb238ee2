"""The linter: the driver that runs every stage on a file (check), the rules, suppressions,
credential masking, `[tool.megaspec]`, directory discovery, `--fix`, worker batches and the reports."""

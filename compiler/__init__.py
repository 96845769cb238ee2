"""megaspec compiler: YAML spec -> diagnostics -> Plan -> generated Modal app. Never imports torch or modal."""

__version__ = "0.1.0"

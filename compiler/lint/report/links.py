"""Where the rules are documented, for the renderers that link to them (json, sarif)."""

HOMEPAGE_URL = "https://megaspec.dev"


def rule_url(code: str) -> str:
    """The documentation page of a rule; `megaspec explain CODE` prints the same text."""
    return f"{HOMEPAGE_URL}/rules/{code}"

"""Credential detection and masking: used by the `literal-credential` rule and by every reporter.

PR logs are public, so a credential found in a spec is reported masked everywhere: in messages,
in snippets (the lint driver masks the source text before any renderer sees it) and in SARIF.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

# Known token shapes (prefix + body), as patterns for one combined regex. Kept specific to avoid
# flagging ordinary values.
KNOWN_PREFIXES: tuple[tuple[str, str], ...] = (
    ("AWS access key id", r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("GitHub token", r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    ("GitHub fine-grained token", r"\bgithub_pat_[A-Za-z0-9_]{40,}\b"),
    ("Hugging Face token", r"\bhf_[A-Za-z0-9]{30,}\b"),
    ("Anthropic key", r"\bsk-ant-[A-Za-z0-9_-]{20,}\b"),  # before OpenAI's `sk-`, which it would also match
    ("OpenAI key", r"\bsk-(proj-)?[A-Za-z0-9_-]{20,}\b"),
    ("Modal token", r"\b(ak|as)-[A-Za-z0-9]{20,}\b"),
    ("Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    ("Slack app token", r"\bxapp-[0-9]-[A-Za-z0-9-]{10,}\b"),
    ("GitLab token", r"\bglpat-[A-Za-z0-9_-]{20,}\b"),
    ("DigitalOcean token", r"\bdo[por]_v1_[a-f0-9]{64}\b"),
    ("Twilio API key", r"\bSK[0-9a-fA-F]{32}\b"),
    ("URL with a password", r"://[^\s/:@'\"]+:[^\s/@'\"]{4,}@"),  # `https://user:pass@host`: masked from `://`
    ("Google API key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    ("W&B on-premises API key", r"\blocal-[0-9a-f]{40}\b"),  # a cloud key is 40 hex alone: a commit's shape
    ("JSON Web Token", r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    # The whole key: to its END line (real newlines, or `\n` escapes in a quoted scalar), else to the
    # end of the line or quote, so masking never leaves the body of a key on one line in a report.
    ("private key", r"-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----"
                    r"|[^\"'\n]*)"),
)
# The shortest token any pattern above (or the entropy check) can match: shorter strings, which
# are most of a spec (keys, names, numbers), skip the regexes entirely.
MIN_TOKEN_LEN = 15
_ANY_KNOWN = re.compile("|".join(f"(?P<k{i}>{p})" for i, (_, p) in enumerate(KNOWN_PREFIXES)))
SECRETISH_KEY = re.compile(r"(?i)(secret|token|passw(or)?d|api[_-]?key|access[_-]?key|credential|auth)")
# An AWS secret access key has no prefix: 40 characters of base64 (`/` and `+` included, so the entropy
# runs below never see it whole). Known by its key: AWS_SECRET_ACCESS_KEY, aws_secret_access_key, ...
AWS_SECRET_KEY_NAME = re.compile(r"(?i)secret[_-]?access[_-]?key|aws[_-]?secret")
_AWS_SECRET = re.compile(r"[A-Za-z0-9/+]{40}")
MIN_ENTROPY_LEN = 20
MIN_ENTROPY_BITS = 3.5
# Anywhere else (a package, a bucket, a prefix, an endpoint, a mount, a key): a longer run with
# lowercase, uppercase and digits, as generated tokens are; `ModelRevision2024` is not one.
MIN_LOOSE_LEN = 24
MIN_LOOSE_BITS = 4.0


def shannon_bits(text: str) -> float:
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


_TOKEN_RUN = re.compile(rf"[A-Za-z0-9+=]{{{MIN_ENTROPY_LEN},}}")


# A git commit or a sha256 digest: how a spec pins a model revision or an artifact in `image.env`.
_DIGEST_RUN = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


_HEX_RUN = re.compile(r"[0-9a-f]+")


def _high_entropy(value: str, *, digests_ok: bool = False, loose: bool = False) -> bool:
    """A run of at least 20 token characters (no path/version separators) with high entropy.

    `digests_ok`: a lowercase hex run of exactly a commit's or a sha256's length is an identifier.
    `loose`: a value under no secret-like key: at least 24 characters of all three classes, 4 bits
    per character, and any lowercase hex run (a digest, an account id in an endpoint) is an identifier.
    """
    for token in _TOKEN_RUN.findall(value):
        if (digests_ok and _DIGEST_RUN.fullmatch(token)) or (loose and _HEX_RUN.fullmatch(token)):
            continue
        classes = sum(bool(re.search(p, token)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
        if loose and (len(token) < MIN_LOOSE_LEN or classes < 3 or shannon_bits(token) < MIN_LOOSE_BITS):
            continue
        if classes >= 2 and shannon_bits(token) >= MIN_ENTROPY_BITS:
            return True
    return False


def credential_kind(value: str, key: str | None = None) -> str | None:
    """What kind of credential `value` looks like, or None.

    Known token prefixes match anywhere. A long high-entropy string counts under a key that names
    a secret, or inside `image.env` (the caller passes `key` for those, `env:NAME` for the latter),
    where a commit or sha256 digest under a plain name (`MODEL_REVISION`) is not one; anywhere else
    (packages, buckets, prefixes, endpoints, mounts, keys) by the stricter `loose` test.
    """
    if len(value) < MIN_TOKEN_LEN:
        return None
    for _, _, _, kind in token_matches(value):
        return kind
    if key is not None and AWS_SECRET_KEY_NAME.search(key) and _AWS_SECRET.fullmatch(value):
        return "AWS secret access key"
    if key is not None and SECRETISH_KEY.search(key):
        return "high-entropy string" if _high_entropy(value) else None
    if key is not None and key.startswith("env:"):
        return "high-entropy string" if _high_entropy(value, digests_ok=True) else None
    return "high-entropy string" if _high_entropy(value, loose=True) else None


def mask(value: str) -> str:
    """Same length as the value (so snippet columns stay right), first 4 characters kept."""
    keep = 4 if len(value) > 12 else 0
    return value[:keep] + "*" * (len(value) - keep)


def iter_strings(data: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """Every string scalar (and string key) in plain YAML data, with its YAML path."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield (*path, k), str(k)
            yield from iter_strings(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from iter_strings(v, (*path, i))
    elif isinstance(data, str):
        yield path, data


def find_credentials(data: Any) -> list[tuple[tuple, str, str]]:
    """(yaml_path, value, kind) for every credential-looking literal in the spec data."""
    found = []
    for path, value in iter_strings(data):
        key = path[-1] if path and isinstance(path[-1], str) else None
        if len(path) >= 3 and path[:2] == ("image", "env"):
            key = f"env:{key}"
        kind = credential_kind(value, key)
        if kind:
            found.append((path, value, kind))
    return found


# Literal starts of the KNOWN_PREFIXES shapes: found with str.find (C speed), then the full pattern is
# tried only there. One regex alternation tried at every offset took 0.5 s on a 1 MB scalar.
_STARTS = ("AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "hf_", "sk-", "ak-", "as-",
           "xox", "xapp-", "glpat-", "dop_v1_", "doo_v1_", "dor_v1_", "SK", "://", "AIza", "local-", "eyJ",
           "-----BEGIN ")


def _candidates(text: str) -> list[int]:
    found = set()
    for start in _STARTS:
        i = text.find(start)
        while i >= 0:
            found.add(i)
            i = text.find(start, i + 1)
    return sorted(found)


def token_matches(text: str) -> Iterator[tuple[int, int, str, str]]:
    """(start, end, token, kind) for every known token shape in raw text, leftmost first, not overlapping."""
    end = -1
    for i in _candidates(text):
        if i < end:
            continue
        m = _ANY_KNOWN.match(text, i)
        if m:
            end = m.end()
            yield m.start(), m.end(), m.group(0), KNOWN_PREFIXES[int(m.lastgroup[1:])][0]


def tokens_in_text(text: str) -> set[str]:
    """Every known token shape in raw text."""
    return {token for _, _, token, _ in token_matches(text)}


def redact_text(text: str, values: set[str]) -> str:
    """`text` with every credential in `values` masked as `mask` does (newlines kept), and every piece
    of one that a message cut short or a template derived (MIN_PIECE token characters or more of it,
    in any case). Every range is found in the original text, then all are masked at once."""
    hidden = bytearray(len(text))
    low = text.lower() if len(text.lower()) == len(text) else text  # a case change that moves offsets: exact only
    for value in values:
        _hide_pieces(hidden, low, value.lower() if low is not text else value)
    for value in values:  # a whole one keeps its first 4 characters, as `mask` does
        keep, at = (4 if len(value) > 12 else 0), 0
        while (at := text.find(value, at)) >= 0:
            hidden[at:at + len(value)] = b"\x00" * keep + b"\x01" * (len(value) - keep)
            at += 1
    if not any(hidden):
        return text
    return "".join("*" if h and c != "\n" else c for c, h in zip(text, hidden, strict=True))


MIN_PIECE = 12  # characters of a credential that are masked wherever they appear
_TOKEN_PIECE = re.compile(r"[A-Za-z0-9_+/=-]*[A-Za-z0-9][A-Za-z0-9_+/=-]*")


def _hide_pieces(hidden: bytearray, text: str, value: str) -> None:
    for start in range(len(value) - MIN_PIECE + 1):
        piece, at = value[start:start + MIN_PIECE], 0
        if not _TOKEN_PIECE.fullmatch(piece):  # the words of a private key's header are no secret
            continue
        while (at := text.find(piece, at)) >= 0:
            hidden[at:at + MIN_PIECE] = b"\x01" * MIN_PIECE
            at += 1


def mask_known(text: str) -> str:
    """`text` with every known token shape masked (`mask`): the last pass over what megaspec prints."""
    pieces, end = [], 0
    for start, stop, token, _ in token_matches(text):
        pieces += [text[end:start], mask(token)]
        end = stop
    return "".join(pieces) + text[end:] if pieces else text


def mask_output(text: str) -> str:
    """What megaspec prints, masked last: the value of every environment variable named like a secret
    (MODAL_TOKEN_SECRET, AWS_SECRET_ACCESS_KEY, ...) and every known token shape."""
    for name, value in os.environ.items():
        if len(value) >= MIN_ENV_SECRET and value in text and SECRETISH_KEY.search(name):
            text = text.replace(value, mask(value))
    return mask_known(text)


MIN_ENV_SECRET = 8  # shorter values (`1`, `true`, a port) are settings, and too common to mask


def mask_free_text(text: str) -> str:
    """Text quoted from a file that is not a spec (a pyproject value): known shapes and every run the
    loose entropy test takes for a generated token masked."""
    text = mask_known(text)
    for start, end in list(entropy_runs(text)):
        text = text[:start] + mask(text[start:end]) + text[end:]
    return text


def entropy_runs(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of every run of token characters in free text (a comment, a line that did not parse)
    that the loose entropy test takes for a generated token."""
    for m in _TOKEN_RUN.finditer(text):
        if _high_entropy(m.group(0), loose=True):
            yield m.start(), m.end()

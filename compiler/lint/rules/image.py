"""Lint rules MS405-MS407 and MS412, the image and secrets: pinning and credential hygiene.

An image that floats makes two runs of the same spec incomparable ("image drift" in the seed
notes); a credential written into a spec leaks through every PR log and generated file. Both
are caught here, offline, before anything is built.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ...diagnostics import Severity, YamlPath
from ...spec.field_types import REQUIREMENT_NAME
from ..credentials import SECRETISH_KEY, mask
from .registry import RuleContext, rule

_EXACT_PIN = re.compile(r"^\s*[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*===?\s*[^\s;,*<>=!~]+\s*(;.*)?$")
_URL_PINNED = re.compile(r"#(sha256|sha384|sha512)=[0-9a-f]{64,128}\b|@[0-9a-f]{40}\b")
_FULL_VERSION = re.compile(r"\d+\.\d+\.\d+")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def _dotted(path: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path))


def _pinned(requirement: str) -> bool:
    if "://" in requirement:
        return bool(_URL_PINNED.search(requirement))
    return bool(_EXACT_PIN.match(requirement))


def _strict_lane(ctx: RuleContext) -> Severity | None:
    """Rule severity on `train`/`bench` (numbers are compared there), a warning elsewhere."""
    return None if ctx.spec.lane in ("train", "bench") else Severity.WARNING


CREDENTIAL_HINT = ("Remove it and rotate it; create a Modal Secret holding it and list the Secret's name "
                   "in `secrets:`")


@rule("MS405", "literal-credential")
def literal_credential(ctx: RuleContext) -> None:
    """Checks that no value in the spec looks like a credential (tokens, keys, passwords).

    Why: a spec is committed, reviewed and printed in public CI logs; a credential written in it
    has leaked. Credentials belong in Modal Secrets, which inject them as environment variables
    at run time, so no credential lives in the repository.
    Known token shapes are reported even when a YAML or schema error stops the other rules: a
    leaked token is urgent whatever else is wrong with the file.

    Example:
        image: {env: {HF_TOKEN: hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789}}

    Use instead:
        secrets: [huggingface]
    """
    for path, message, is_key in credential_messages(ctx.credentials):
        ctx.report(path, message, key=is_key, hint=CREDENTIAL_HINT)


def credential_messages(credentials: list[tuple[YamlPath, str, str]]) -> Iterator[tuple[YamlPath, str, bool]]:
    """(path, message, whether the key itself is the credential) for each credential found."""
    for path, value, kind in credentials:
        is_key = bool(path) and path[-1] == value
        where = "a key" if is_key else f"`{_dotted(path)}`"
        yield path, f"{where} holds a literal {kind} `{mask(value)}`", is_key


@rule("MS406", "unpinned-package")
def unpinned_package(ctx: RuleContext) -> None:
    """Checks that every `image.packages` entry is pinned to one version.

    Why: an unpinned package resolves to whatever is newest when the image layer is built, so two
    runs of one spec can run different code; pin every wheel of the training stack.
    An error on `train` and `bench`, whose numbers are compared; a warning on `validate`.

    Example:
        image: {packages: [torch>=2.6, numpy]}

    Use instead:
        image: {packages: [torch==2.8.0, numpy==2.2.6]}
    """
    for i, requirement in enumerate(ctx.spec.image.packages):
        if _pinned(requirement):
            continue
        name = m[1] if (m := REQUIREMENT_NAME.match(requirement)) else requirement
        hint = ("Add the wheel's hash (`#sha256=...`) or pin a commit" if "://" in requirement
                else f"Pin the version you tested: `{name}==X.Y.Z`")
        ctx.report(("image", "packages", i), f"package `{requirement}` is not pinned to one version",
                   hint=hint, severity=_strict_lane(ctx))


@rule("MS407", "floating-base-tag")
def floating_base_tag(ctx: RuleContext) -> None:
    """Checks that `image.base` is pinned by a full version tag or a digest.

    Why: a tag like `latest` or `12.8` moves when the publisher pushes, so the same spec builds a
    different image next month; the receipt's image hash then changes with no edit to the spec.
    An error on `train` and `bench`, a warning elsewhere.

    Example:
        image: {base: "nvidia/cuda:12.8-devel"}

    Use instead:
        image: {base: "nvidia/cuda:12.8.1-devel-ubuntu22.04"}
    """
    base = ctx.spec.image.base
    if base is None or _DIGEST.search(base):
        return
    last = base.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] if ":" in last else None
    if tag is None:
        problem = "has no tag (it means `latest`)"
    elif tag == "latest" or not _FULL_VERSION.search(tag):
        problem = f"uses the floating tag `{tag}`"
    else:
        return
    ctx.report(("image", "base"), f"`image.base` `{base}` {problem}", severity=_strict_lane(ctx),
               hint="Pin a full version tag (e.g. `12.8.1-devel-ubuntu22.04`) or a digest (`@sha256:...`)")


@rule("MS412", "credential-name-in-image-env", Severity.WARNING)
def credential_name_in_image_env(ctx: RuleContext) -> None:
    """Checks that `image.env` holds no variable named like a credential.

    Why: `image.env` is baked into the image definition and the generated code. A variable named
    `WANDB_API_KEY` holds a credential even when its value does not look like one (a short test
    key, a placeholder that later becomes real).

    Example:
        image: {env: {WANDB_API_KEY: changeme}}

    Use instead:
        secrets: [wandb]
    """
    flagged = {path for path, _, _ in ctx.credentials}
    for key in ctx.spec.image.env:
        path = ("image", "env", key)
        if SECRETISH_KEY.search(key) and path not in flagged:
            ctx.report(path, f"`image.env.{key}` is named like a credential", key=True,
                       hint=f"Move `{key}` into a Modal Secret and list the Secret's name in `secrets:`")

"""`megaspec doctor`: what a Modal launch needs, checked before anything is built or paid for.

The client's version, the credentials (accepted by Modal: the bounded `connect`), the environment
the client acts in, and every Secret and Volume the plans name. A missing Secret otherwise fails
each run of a sweep separately, after its image build; Volumes are created on first use
(`create_if_missing`), so a missing one is said, not refused. Every request is bounded
(`modal_client.within`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..manifest import BackendError
from .modal_client import check_client_version, connect, describe, identity, within


@dataclass(frozen=True)
class Check:
    what: str  # `Secret `hf-token``
    ok: bool
    detail: str = ""
    hint: str = ""

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.what}" + (f": {self.detail}" if self.detail else "")


def check_modal(plans: Iterable, echo: Callable[[str], None]) -> list[Check]:
    """The checks for launching `plans` (each a Modal Plan); the first failure that stops the rest (no
    client, no credentials, Modal unreachable) is the last check returned."""
    plans = list(plans)
    checks = []
    for targeted in sorted({p.modal.client_version for p in plans}):
        try:
            check_client_version(targeted)
        except BackendError as e:
            return [*checks, Check("modal client", False, str(e), e.hint)]
        checks.append(Check("modal client", True, f"{_installed()} (the generated apps target {targeted}.x)"))
    try:
        connect(echo)
    except BackendError as e:
        return [*checks, Check("credentials", False, str(e), e.hint)]
    who = identity()
    checks.append(Check("credentials", True, f"accepted (workspace `{who['workspace']}`, profile `{who['profile']}`)"))
    checks.append(_environment(who["environment"]))
    secrets = sorted({s for p in plans for s in [*p.modal.secrets, *(b.secret for b in p.modal.buckets if b.secret)]})
    checks += [_secret(name, who["environment"]) for name in secrets]
    checks += [_volume(name, who["environment"]) for name in sorted({v.name for p in plans for v in p.modal.volumes})]
    return checks


def _installed() -> str:
    import modal

    return f"modal {modal.__version__}"


def _environment(name: str | None) -> Check:
    if name is None:
        return Check("environment", True, "the workspace's default (no MODAL_ENVIRONMENT or profile setting)")
    from modal.environments import list_environments

    try:
        names = [e.name for e in within("the list of environments", list_environments)]
    except Exception as e:  # noqa: BLE001 - no answer, or a failure: said as a failed check
        return Check(f"environment `{name}`", False, f"could not list environments ({describe(e)})")
    if name in names:
        return Check(f"environment `{name}`", True, "exists")
    return Check(f"environment `{name}`", False, f"not in this workspace (it has: {', '.join(names) or 'none'})",
                 f"Set MODAL_ENVIRONMENT to one of them, or create it: `modal environment create {name}`")


def _secret(name: str, environment: str | None) -> Check:
    import modal

    return _exists(f"Secret `{name}`", lambda: modal.Secret.from_name(name, environment_name=environment).hydrate(),
                   missing=Check(f"Secret `{name}`", False, "not found",
                                 f"Create it: `modal secret create {name} KEY=VALUE ...` (or fix the name in the spec)"))


def _volume(name: str, environment: str | None) -> Check:
    import modal

    return _exists(f"Volume `{name}`", lambda: modal.Volume.from_name(name, environment_name=environment).hydrate(),
                   missing=Check(f"Volume `{name}`", True, "not there yet: the first launch creates it"))


def _exists(what: str, lookup: Callable[[], object], *, missing: Check) -> Check:
    from modal.exception import NotFoundError

    try:
        within(f"the lookup of {what}", lookup)
    except NotFoundError:
        return missing
    except Exception as e:  # noqa: BLE001 - a lookup that did not answer or failed is said as such
        return Check(what, False, f"could not be looked up ({describe(e)})", "Check the network and run it again")
    return Check(what, True, "exists")

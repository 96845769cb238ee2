"""The lint driver: source -> compose -> validate -> rules -> suppressions -> config, per spec file.

Gates: parse and `extends:` errors skip the model stage; schema errors skip the rules. `lint`
reports everything it can; `compile` (elsewhere) refuses anything with an error. Every credential
literal is masked in the returned source texts and messages, so no renderer can print a secret.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from ..codes import FILE_NOT_FOUND, INTERNAL_ERROR, NO_SPEC_FILES, Code
from ..diagnostics import Diagnostic, Related, Severity, Span, YamlPath, has_errors, sort_diagnostics
from ..spec.compose import Composed, compose, is_base_file
from ..spec.model import Spec
from ..spec.near_files import did_you_mean_file
from ..spec.source import offset_span
from ..spec.source_map import SourceMap
from ..spec.validate import build_spec
from . import receipt_rules, stage_rules  # noqa: F401 - register the stage (MS0xx, MS1xx, MS9xx) and receipt (MS8xx) codes
from . import rules as _rules  # noqa: F401 - importing the package registers every rule module
from .config import Config
from .credentials import find_credentials, mask, redact_text, token_matches, tokens_in_text
from .discover import spec_files
from .masking import masked_texts
from .rules.image import CREDENTIAL_HINT, credential_messages
from .rules.registry import REGISTRY, RuleContext, run_rules
from .suppress import apply_suppressions


@dataclass
class Checked:
    """One linted spec: the validated Spec (None on errors before the rules) and everything found."""

    path: str
    spec: Spec | None
    smap: SourceMap
    data: dict[str, Any] | None
    diagnostics: list[Diagnostic]
    files: list[str]
    composed: Composed = field(repr=False)

    def origin(self, yaml_path: tuple) -> str:
        """`specs/x.yaml:14`, "preset `dense-1b`" or "default" (for `megaspec plan`)."""
        return self.composed.origin(yaml_path)


@dataclass
class LintResult:
    diagnostics: list[Diagnostic]
    texts: dict[str, str]  # file -> source text with credentials masked (for snippets)
    num_files: int

    @property
    def has_errors(self) -> bool:
        return has_errors(self.diagnostics)


def _internal(stage: str, exc: Exception) -> Diagnostic:
    return Diagnostic(code=INTERNAL_ERROR.code, rule=INTERNAL_ERROR.name, severity=Severity.ERROR,
                      message=f"internal error in {stage}: {type(exc).__name__}: {exc}", span=None,
                      hint="This is a bug in megaspec; please report it with the spec that triggered it")


def _run_rules(spec: Spec, composed: Composed) -> list[Diagnostic]:
    assert composed.data is not None
    data = composed.data
    credentials = find_credentials(data)  # scanned once; MS405 and MS412 both read it
    try:
        return run_rules(lambda: RuleContext(spec=spec, smap=composed.smap, data=data, credentials=credentials,
                                             code_dir=composed.code_dir))
    except Exception as e:  # noqa: BLE001 - a crashing rule is a bug, reported as MS902, not a traceback
        return [_internal("the lint rules", e)]


BASE_NOT_A_RUN = "is a base file (its name starts with `_`): compile or apply a spec that `extends:` it"


def check_spec(path: str | Path, *, config: Config | None = None, display: str | None = None,
               adjust: Callable[[Spec], Spec] | None = None, text: str | None = None) -> Checked:
    """Lint one spec file (and the bases it extends). A base file (`_*.yaml`) is checked on its own
    against the model with `name` optional; its `spec` stays None: it is not a run. `adjust`: a
    command-line override of the validated Spec (`apply --steps`), applied before the rules so they
    check what will run. `text`: the file's text, from a caller that has just written it."""
    composed = compose(path, display, text=text)
    diagnostics = list(composed.diagnostics)
    spec = None
    base = is_base_file(path)
    if not composed.blocked:
        assert composed.data is not None
        spec, schema = build_spec(composed.data, composed.smap, base=base)
        diagnostics.extend(schema)
        if spec is not None and adjust is not None:
            spec = adjust(spec)
    if base:  # a base is checked for keys and types; the rules judge it in the specs that extend it
        spec = None
    rules_ran = spec is not None and not has_errors(diagnostics)
    if rules_ran:
        assert spec is not None
        diagnostics.extend(_run_rules(spec, composed))
    else:
        diagnostics.extend(_credentials_without_rules(composed))
    diagnostics = apply_suppressions(diagnostics, composed.file_maps, set(REGISTRY), report_unused=rules_ran)
    diagnostics = (config or Config()).apply(diagnostics)
    secrets = _secret_values(composed)
    if secrets:
        diagnostics = [_redact(d, secrets) for d in diagnostics]
    composed.smap.texts = masked_texts(composed, secrets)
    return Checked(composed.path, spec, composed.smap, composed.data, sort_diagnostics(diagnostics),
                   composed.files, composed)


def _credentials_without_rules(composed: Composed) -> list[Diagnostic]:
    """MS405 when an earlier error stops the lint rules: a leaked token is urgent whatever else is wrong.

    With merged data (schema errors only) the scan is the rule's own; without (a YAML or `extends:`
    error) it is the known token shapes in each file's raw text.
    """
    rule = REGISTRY["MS405"]

    def diagnostic(span: Span | None, message: str, path: YamlPath = ()) -> Diagnostic:
        return Diagnostic(code=rule.code, rule=rule.name, severity=rule.severity, message=message, span=span,
                          yaml_path=path, hint=CREDENTIAL_HINT)

    smap = composed.smap
    if composed.data is not None:
        return [diagnostic(smap.key_span(path) if is_key else smap.value_span(path), message, path)
                for path, message, is_key in credential_messages(find_credentials(composed.data))]
    return [diagnostic(offset_span(path, text, start, end), f"the file holds a literal {kind} `{mask(token)}`")
            for path, text in smap.texts.items() for start, end, token, kind in token_matches(text)]


def _secret_values(composed: Composed) -> set[str]:
    """Credential literals in every contributing file: structured finds plus known token shapes in raw text."""
    values = {value for data in composed.file_data.values() for _, value, _ in find_credentials(data)}
    for text in composed.smap.texts.values():  # also catches tokens in files that failed to parse
        values.update(tokens_in_text(text))
    return values


def _redact(d: Diagnostic, secrets: set[str]) -> Diagnostic:
    related = tuple(Related(span=r.span, message=redact_text(r.message, secrets)) for r in d.related)
    touches_secret = d.fix is not None and any(v in d.fix.original or v in d.fix.replacement for v in secrets)
    yaml_path = tuple(redact_text(p, secrets) if isinstance(p, str) else p for p in d.yaml_path)
    return replace(d, message=redact_text(d.message, secrets), yaml_path=yaml_path,
                   hint=redact_text(d.hint, secrets) if d.hint else d.hint, related=related,
                   fix=None if touches_secret else d.fix)


def expand_paths(paths: list[str | Path], config: Config | None = None) -> tuple[list[str], list[Diagnostic]]:
    """Spec files to lint: directories recurse (`discover.py` says which files are specs, less the
    config's `exclude`); files as given."""
    config = config or Config()
    files: list[str] = []
    problems: list[Diagnostic] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = spec_files(p, config.excludes)
            files.extend(f.as_posix() for f in found)
            if not found:
                problems.append(Diagnostic(
                    code=NO_SPEC_FILES.code, rule=NO_SPEC_FILES.name, severity=Severity.ERROR,
                    message=f"`{raw}` holds no spec files (`*.yaml` or `*.yml` with a `megaspec:` key, "
                            "not named `_*`)", span=None,
                    hint="Check the path; bases (`_*.yaml`) are linted through the specs that extend them"))
        elif p.exists():
            files.append(p.as_posix())
        else:
            problems.append(Diagnostic(code=FILE_NOT_FOUND.code, rule=FILE_NOT_FOUND.name, severity=Severity.ERROR,
                                       message=f"`{raw}` does not exist", span=None,
                                       hint=f"Check the path.{did_you_mean_file(p)}"))
    return list(dict.fromkeys(files)), problems


def crash_diagnostic(path: str, reason: str, code: Code = INTERNAL_ERROR) -> Diagnostic:
    """MS902 (or the MS9xx `code` of an InternalError) for one file whose check or build raised or whose
    worker died; known token shapes in `reason` masked."""
    reason = redact_text(reason, tokens_in_text(reason))
    return Diagnostic(code=code.code, rule=code.name, severity=Severity.ERROR,
                      message=f"internal error while checking this file: {reason}",
                      span=Span(path=path, line=1, col=1, end_line=1, end_col=2),
                      hint="This is a bug in megaspec; please report it with this file. The other files were checked")


def lint_crashed(path: str, reason: str) -> tuple[list[Diagnostic], dict[str, str]]:
    return [crash_diagnostic(path, reason)], {}


def lint_file(path: str, config: Config) -> tuple[list[Diagnostic], dict[str, str]]:
    """One file's diagnostics and its (masked) source texts: what a report needs, small to pickle."""
    checked = check_spec(path, config=config)
    return checked.diagnostics, checked.smap.texts


def check_paths(paths: list[str | Path], config: Config | None = None, jobs: int | None = None) -> LintResult:
    """Lint every spec under `paths` (over `jobs` processes when there are many); sorted, masked."""
    from .batch import map_ordered

    config = config or Config()
    files, problems = expand_paths(paths, config)
    diagnostics = config.apply([*config.diagnostics, *problems])
    texts: dict[str, str] = {}
    for found, file_texts in map_ordered(partial(lint_file, config=config), files, jobs, on_crash=lint_crashed):
        diagnostics.extend(found)
        texts.update(file_texts)  # already masked by check_spec
    return LintResult(sort_diagnostics(diagnostics), texts, len(files))


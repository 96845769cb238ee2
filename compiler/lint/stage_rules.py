'''Registry entries for the diagnostics that compiler stages emit (parse, compose, schema, suppression,
config, compile, internal), so `megaspec explain`, `megaspec rules` and SARIF know them.

Lint rules with a function live in `rules/`; these codes have no function, only a doc (the codes of
run receipts are documented in `receipt_rules.py`). Importing this module only adds entries to the
registry.
'''

from __future__ import annotations

from .. import codes
from ..codes import Code
from ..diagnostics import Severity
from .rules.registry import stage_rule

W = Severity.WARNING

_STAGE_DOCS: tuple[tuple[Code, Severity, str], ...] = (
    (codes.YAML_SYNTAX_ERROR, Severity.ERROR, """
        Checks that the spec is valid YAML without custom tags.

        Why: nothing else can be checked until the file parses; `!tags` would make a spec depend on
        Python constructors.

        Example:
            resources:
              gpu: [H100:8

        Use instead:
            resources:
              gpu: [H100:8]
        """),
    (codes.DUPLICATE_KEY, Severity.ERROR, """
        Checks that no mapping defines the same key twice.

        Why: YAML loaders silently keep one of the two values; which one won is invisible in review.

        Example:
            train:
              steps: 100
              steps: 300

        Use instead:
            train:
              steps: 300
        """),
    (codes.TAB_INDENTATION, Severity.ERROR, """
        Checks that indentation uses spaces only.

        Why: YAML forbids tabs in indentation; parsers report it far from the real line.

        Example:
            train:
            <TAB>steps: 100

        Use instead:
            train:
              steps: 100
        """),
    (codes.FILE_TOO_LARGE, Severity.ERROR, """
        Checks that a spec file is at most 1 MiB, 10,000 lines and 10,000 values.

        Why: a spec is a page of YAML; a huge file is a mistake or an attack on the linter.

        Example:
            a spec with a pasted data set

        Use instead:
            keep data in Volumes; split specs with `extends:`
        """),
    (codes.ALIAS_EXPANSION_TOO_LARGE, Severity.ERROR, """
        Checks that anchors and aliases expand to at most 10,000 nodes.

        Why: nested aliases (a "billion laughs" YAML bomb) grow exponentially and would hang CI.

        Example:
            a: &a [x, x, x, x, x, x, x, x, x]
            b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]

        Use instead:
            write the values out, or share them with `extends:`
        """),
    (codes.NESTING_TOO_DEEP, Severity.ERROR, """
        Checks that the document nests at most 64 levels deep.

        Why: a spec is a few levels deep; deeper nesting is a mistake or a parser attack.

        Example:
            a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]

        Use instead:
            a flat mapping of sections
        """),
    (codes.DOCUMENT_NOT_A_MAPPING, Severity.ERROR, """
        Checks that the spec's top level is a mapping.

        Why: every spec starts with `megaspec: 1` and `name:`; an empty file or a bare list is not a spec.

        Example:
            - name: run

        Use instead:
            megaspec: 1
            name: run
        """),
    (codes.FILE_NOT_FOUND, Severity.ERROR, """
        Checks that every path given on the command line exists.

        Why: a typo in a CI path would otherwise lint nothing and pass.

        Example:
            megaspec lint specs/h200x8.yml   # the file is .yaml

        Use instead:
            megaspec lint specs/h200x8.yaml
        """),
    (codes.EXTENDS_CYCLE, Severity.ERROR, """
        Checks that `extends:` chains do not loop.

        Why: a cycle has no merge order; the effective spec would be undefined.

        Example:
            # a.yaml
            extends: b.yaml
            # b.yaml
            extends: a.yaml

        Use instead:
            move shared settings into a third base that neither file's base extends
        """),
    (codes.EXTENDS_NOT_FOUND, Severity.ERROR, """
        Checks that every file named in `extends:` exists, relative to the file that names it.

        Why: a missing base silently drops every setting it was meant to provide.

        Example:
            # specs/h200x8.yaml
            extends: specs/_base.yaml   # resolves to specs/specs/_base.yaml

        Use instead:
            extends: _base.yaml
        """),
    (codes.FILE_UNREADABLE, Severity.ERROR, """
        Checks that a spec file can be read as UTF-8 text.

        Why: specs are reviewed as text; another encoding cannot be diffed or linted reliably.

        Example:
            a spec saved as UTF-16 or Latin-1

        Use instead:
            save the file as UTF-8
        """),
    (codes.INVALID_CONFIG, Severity.ERROR, """
        Checks the `[tool.megaspec]` table in pyproject.toml.

        Why: a misspelled setting would silently change which diagnostics fail CI.

        Example:
            [tool.megaspec]
            ignores = ["MS303"]

        Use instead:
            [tool.megaspec]
            ignore = ["MS303"]
        """),
    (codes.NO_SPEC_FILES, Severity.ERROR, """
        Checks that every directory given on the command line holds at least one spec file.

        Why: like a mistyped path (MS008), a directory with nothing to lint would pass CI while
        checking nothing. Spec files end in `.yaml` or `.yml`; files named `_*.yaml` are bases,
        linted through the specs that extend them.

        Example:
            megaspec lint spec/   # the specs live in specs/

        Use instead:
            megaspec lint specs/
        """),
    (codes.NUMBER_TOO_LARGE, Severity.ERROR, """
        Checks that no integer in the spec has more than 4,300 digits.

        Why: no field takes a number near that size, and reading one costs time that grows faster
        than its length; values that are merely too large for their field are MS104.

        Example:
            train:
              steps: 1000000...000   # thousands of digits

        Use instead:
            train:
              steps: 1000
        """),
    (codes.EXTENDS_INVALID_PATH, Severity.ERROR, """
        Checks that every `extends:` entry names a regular `.yaml`/`.yml` file inside the project.

        Why: a base is read and shown in snippets; a path outside the project (`../../etc/passwd`,
        `/proc/self/environ`), a device or a pipe would print files that are not specs (in public CI
        logs) or hang. The project is the spec's git work tree, else the nearest folder with a
        pyproject.toml, else the spec's own folder. A NUL character or a symlink loop is refused too.

        Example:
            extends: /proc/self/environ

        Use instead:
            extends: _base.yaml
        """),
    (codes.UNUSED_SUPPRESSION, W, """
        Checks that every `# megaspec: ignore[...]` comment suppresses something.

        Why: a stale suppression hides the next real problem on that node (ruff `RUF100`).

        Example:
            train:
              steps: 300  # megaspec: ignore[MS210] nothing is wrong here any more

        Use instead:
            train:
              steps: 300
        """),
    (codes.UNKNOWN_CODE_IN_SUPPRESSION, Severity.ERROR, """
        Checks that suppression comments name codes that exist.

        Why: a misspelled code suppresses nothing while looking like it does.

        Example:
            # megaspec: ignore[MS999]

        Use instead:
            # megaspec: ignore[MS303] reason (see `megaspec rules`)
        """),
    (codes.MALFORMED_SUPPRESSION, Severity.ERROR, """
        Checks the form of `# megaspec:` comments: `ignore[CODES]` or `file-ignore[CODES]`.

        Why: there is no blanket ignore; every suppression names the codes it silences.

        Example:
            gpu: H100  # megaspec: ignore

        Use instead:
            gpu: H100  # megaspec: ignore[MS303] capacity confirmed with Modal
        """),
    (codes.SCHEMA_ERROR, Severity.ERROR, """
        A schema error that megaspec has no specific message for yet.

        Why: reported rather than dropped; each occurrence is a gap in megaspec's messages.

        Example:
            (none known; please report the spec that produced it)

        Use instead:
            follow `schema.json` for the field named in the message
        """),
    (codes.UNKNOWN_KEY, Severity.ERROR, """
        Checks that every key is a field of its section.

        Why: a misspelled key is otherwise ignored and its setting silently falls back to the default.

        Example:
            resources:
              gpus: H100:8

        Use instead:
            resources:
              gpu: H100:8
        """),
    (codes.MISSING_KEY, Severity.ERROR, """
        Checks that required keys are present (and that the model is fully defined).

        Why: a spec without `name:`, or without `preset:` and model dimensions, cannot be compiled.

        Example:
            megaspec: 1
            model: {d_model: 512}

        Use instead:
            megaspec: 1
            name: small-run
            preset: dense-125m
        """),
    (codes.WRONG_TYPE, Severity.ERROR, """
        Checks that each value has the type its field expects (strict: no silent conversion).

        Why: YAML reads `3.10` as the number 3.1 and `yes` as a string; guessing would change the run.
        The one conversion is the one JSON Schema (and so your editor) makes: `40.0` is the integer 40.

        Example:
            image:
              python: 3.10

        Use instead:
            image:
              python: "3.10"
        """),
    (codes.OUT_OF_RANGE, Severity.ERROR, """
        Checks numbers and lengths against their field's bounds.

        Why: zero nodes, a learning rate above 1 or an empty sweep fail only after GPUs are paid for.

        Example:
            resources:
              nodes: 0

        Use instead:
            resources:
              nodes: 1
        """),
    (codes.INVALID_CHOICE, Severity.ERROR, """
        Checks that a value is one of its field's choices (lanes, precisions, presets, ...).

        Why: an unknown choice has no meaning in the generated code.

        Example:
            train:
              precision: bf17

        Use instead:
            train:
              precision: bf16
        """),
    (codes.INVALID_FORMAT, Severity.ERROR, """
        Checks strings that have a format: durations, names, absolute paths, versions, sizes.

        Why: `2hrs` or a Volume name with capitals is rejected by Modal at launch, not before.

        Example:
            resources:
              timeout: 2hrs

        Use instead:
            resources:
              timeout: 2h
        """),
    (codes.GENERATED_CODE_DOES_NOT_PARSE, Severity.ERROR, """
        The generated Modal app is not valid Python.

        Why: megaspec parses what it renders before writing it; this is always a bug in megaspec.

        Example:
            (internal)

        Use instead:
            report the spec that produced it
        """),
    (codes.INTERNAL_ERROR, Severity.ERROR, """
        megaspec hit an unexpected error (exit code 3).

        Why: user mistakes are diagnostics; an exception is always a bug in megaspec.

        Example:
            (internal)

        Use instead:
            report the command and the spec that produced it
        """),
)

def register() -> None:
    for code, severity, doc in _STAGE_DOCS:
        stage_rule(code.code, code.name, doc, severity)


register()

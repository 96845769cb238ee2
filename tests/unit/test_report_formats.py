"""Every output format rendered from one fixed set of diagnostics, against tests/golden/formats/."""

from __future__ import annotations

import json

import pytest

from megaspec.compiler.diagnostics import Diagnostic, Related, Severity, Span
from megaspec.compiler.lint.report import FORMATS, render_report
from megaspec.compiler.lint.report.sarif import registered_rules
from tests.conftest import GOLDEN_DIR, assert_golden, normalize

FORMATS_DIR = GOLDEN_DIR / "formats"
INPUT_DIR = FORMATS_DIR / "input"
LLAMA, BASE = "specs/llama-8b.yaml", "specs/base.yaml"
EXPECTED = {"human": "expected.human.txt", "concise": "expected.concise.txt", "json": "expected.json",
            "github": "expected.github.txt", "sarif": "expected.sarif.json"}


def _span(path: str, line: int, col: int, end_line: int, end_col: int) -> Span:
    return Span(path=path, line=line, col=col, end_line=end_line, end_col=end_col)


# Already in sort order (no span first, then path, line, col), as the lint driver hands them over.
DIAGNOSTICS = [
    Diagnostic(code="MS011", rule="invalid-config", severity=Severity.ERROR,
               message="`tool.megaspec.ignore` must be a list of codes, got `MS3`",
               span=None, hint='Write `ignore = ["MS3"]`'),
    Diagnostic(code="MS320", rule="timeout-over-cap", severity=Severity.INFO,
               message="`timeout_s` `90000` is above Modal's 24-hour cap; the run stops at `86400`",
               span=_span(LLAMA, 5, 14, 5, 19), yaml_path=("resources", "timeout_s")),
    Diagnostic(code="MS203", rule="fsdp-degree-not-divisor", severity=Severity.ERROR,
               message="FSDP degree `3` does not divide the GPU count `8`",
               span=_span(LLAMA, 9, 11, 9, 12), yaml_path=("train", "parallel", "fsdp"),
               hint="Use one of 1, 2, 4, 8",
               related=(Related(span=_span(BASE, 2, 8, 2, 16), message="GPU count set here"),)),
    Diagnostic(code="MS211", rule="steps-below-warmup", severity=Severity.WARNING,
               message="`train.steps` `10` is shorter than the warmup `100`",
               span=_span(LLAMA, 10, 10, 10, 12), yaml_path=("train", "steps"),
               hint="Set `train.steps` above `train.warmup_steps`",
               related=(Related(span=_span(LLAMA, 7, 17, 7, 20), message="warmup set here"),)),
    Diagnostic(code="MS412", rule="mixture-weights-over-100", severity=Severity.ERROR,
               message="weight `50%` for `code`: the weights sum to `110%`, not `100%`,\nso no share is left",
               span=_span(LLAMA, 12, 31, 12, 34), yaml_path=("data", "mix", "code"),
               hint="Lower a weight: 100%, no more"),
    Diagnostic(code="MS103", rule="wrong-type", severity=Severity.ERROR,
               message="`data.stop_tokens` must be a string, got a list",
               span=_span(LLAMA, 13, 16, 14, 13), yaml_path=("data", "stop_tokens"),
               hint="Join the tokens into one string", origin="string_type"),
]


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return {p: (INPUT_DIR / p).read_bytes().decode("utf-8") for p in (LLAMA, BASE)}


def _render(fmt: str, texts: dict[str, str]) -> str:
    return render_report(fmt, DIAGNOSTICS, texts=texts, num_files=2)


def _pin_sarif_rules(text: str) -> str:
    """Reduce `tool.driver.rules` to the result's rule ids: the full list grows as rules are added."""
    doc = json.loads(text)
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        if "ruleIndex" in result:
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    ids = sorted({r["ruleId"] for r in run["results"]})
    run["tool"]["driver"]["rules"] = ids
    run["results"] = [{"ruleId": r["ruleId"], "ruleIndex": ids.index(r["ruleId"]),
                       **{k: v for k, v in r.items() if k != "ruleIndex"}} for r in run["results"]]
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_matches_golden(fmt: str, texts: dict[str, str]) -> None:
    actual = normalize(_render(fmt, texts))
    if fmt == "sarif":
        actual = _pin_sarif_rules(actual)
    assert_golden(FORMATS_DIR / EXPECTED[fmt], actual)


def test_json_is_versioned_and_complete(texts: dict[str, str]) -> None:
    doc = json.loads(_render("json", texts))
    assert doc["schema_version"] == "megaspec.diagnostics.v1"
    assert [d["code"] for d in doc["diagnostics"]] == [d.code for d in DIAGNOSTICS]
    fsdp = doc["diagnostics"][2]
    assert (fsdp["line"], fsdp["col"], fsdp["end_line"], fsdp["end_col"]) == (9, 11, 9, 12)
    assert fsdp["related"] == [{"path": BASE, "line": 2, "col": 8, "end_line": 2, "end_col": 16,
                                "message": "GPU count set here"}]
    assert fsdp["url"] == "https://megaspec.dev/rules/MS203"
    assert doc["diagnostics"][0]["path"] is None


def test_sarif_is_structurally_valid(texts: dict[str, str]) -> None:
    doc = json.loads(_render("sarif", texts))
    assert doc["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert doc["version"] == "2.1.0"
    (run,) = doc["runs"]
    assert run["tool"]["driver"]["name"] == "megaspec"
    rules = run["tool"]["driver"]["rules"]
    for rule in rules:
        assert set(rule) >= {"id", "name", "shortDescription", "fullDescription", "helpUri",
                             "defaultConfiguration"}
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
    assert len(run["results"]) == len(DIAGNOSTICS)
    for result, d in zip(run["results"], DIAGNOSTICS, strict=True):
        assert result["ruleId"] == d.code
        if "ruleIndex" in result:
            assert rules[result["ruleIndex"]]["id"] == d.code
        assert result["message"]["text"].startswith(d.message)
        assert ("locations" in result) == (d.span is not None)
    region = run["results"][-1]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 13, "startColumn": 16, "endLine": 14, "endColumn": 13}


def test_sarif_lists_every_registered_rule_once_in_code_order(texts: dict[str, str]) -> None:
    from megaspec.compiler.lint.rules.registry import REGISTRY

    doc = json.loads(_render("sarif", texts))
    ids = [r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids))
    assert set(ids) == set(REGISTRY)
    assert ids == [r.code for r in registered_rules()]


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown report format"):
        render_report("xml", [], texts={}, num_files=0)


def test_sarif_rule_entry_comes_from_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from megaspec.compiler.lint.rules.registry import REGISTRY, Rule

    registered_rules()  # let the real rule modules register first, outside the patch
    doc = "Checks that the test rule fires.\n\nWhy: it is a test."
    monkeypatch.setitem(REGISTRY, "MS898", Rule("MS898", "test-rule", Severity.WARNING, None, doc))
    d = Diagnostic(code="MS898", rule="test-rule", severity=Severity.ERROR, message="m", span=None)
    run = json.loads(render_report("sarif", [d], texts={}, num_files=0))["runs"][0]
    (result,) = run["results"]
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]] == {
        "id": "MS898", "name": "test-rule",
        "shortDescription": {"text": "Checks that the test rule fires."},
        "fullDescription": {"text": doc},
        "helpUri": "https://megaspec.dev/rules/MS898",
        "defaultConfiguration": {"level": "warning"},
    }
    assert result["level"] == "error"  # the reported severity wins over the rule's default
    assert "locations" not in result

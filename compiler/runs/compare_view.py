"""`megaspec receipts compare`: one table of what differs between runs, for people.

Three sections, one column per run: the plan settings that differ (the flattened plan, less what
names a run rather than configures it), every metric (`records.METRICS`), and the provenance
(rows that differ marked `*`). Runs of different comparison classes are refused by the command;
with `--force` the table opens with the class fields that differ, marked `!`.
"""

from __future__ import annotations

from typing import Any

from .comparison import CLASS_FIELDS, class_differences, class_label, comparison_class
from .receipt_view import divergence_text
from .records import METRICS, RunRecord, metric_heading, metric_text, metric_values, provenance_values

# Plan fields that name a run, beyond what `Plan.experiment` leaves out (its identity, tags, where the code
# lies here); they differ between a run and its rerun under another name and configure nothing.
NOT_SETTINGS = ("name", "megaspec_version", "modal.app_name")
MAX_CELL = 28


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, child in value.items():
            out.update(flatten(child, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


def setting_differences(records: list[RunRecord]) -> list[tuple[str, list[Any]]]:
    """(plan key, each run's value) for every setting on which the runs disagree, in plan order."""
    flat = [flatten(r.plan.experiment()) for r in records]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    keys = [k for k in keys if not any(k == p or k.startswith(p) for p in NOT_SETTINGS)]
    return [(k, [f.get(k, "-") for f in flat]) for k in keys if len({repr(f.get(k)) for f in flat}) > 1]


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else "-" if value is None else str(value)
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def _table(headers: list[list[str]], sections: list[tuple[str, list[tuple[str, list[str]]]]]) -> list[str]:
    """The wide table: one column per run, `headers` its header lines (run ids, then names)."""
    label_w = max([len(label) for _, rows in sections for label, _ in rows] + [8]) + 2
    widths = [max([len(h[i]) for h in headers] + [len(cells[i]) for _, rows in sections for _, cells in rows])
              for i in range(len(headers[0]))]
    line = lambda label, cells: (f"  {label:<{label_w}}" + "  ".join(  # noqa: E731
        f"{c:<{w}}" for c, w in zip(cells, widths, strict=True))).rstrip()
    out = [line("", h) for h in headers]
    for title, rows in sections:
        out.append(title)
        out += [line(label, cells) for label, cells in rows] or ["  (none)"]
    return out


def _long(records: list[RunRecord], sections: list[tuple[str, list[tuple[str, list[str]]]]]) -> list[str]:
    """One row per run: its id and name, then every row of the wide table as a column (provenance only
    where it differs)."""
    columns = [(label, cells) for title, rows in sections for label, cells in rows
               if not title.startswith("provenance") or label.startswith("*")]
    head = ["run", "name", *(label for label, _ in columns)]
    body = [[r.receipt.run_id, _cell(r.name), *(cells[i] for _, cells in columns)] for i, r in enumerate(records)]
    widths = [max(len(row[c]) for row in [head, *body]) for c in range(len(head))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [head, *body]]


LONG_AFTER = 4  # more runs than this: one row per run (a column each stops fitting a terminal)


def format_compare(records: list[RunRecord], *, forced: bool = False, long: bool | None = None) -> str:
    """The comparison: a column per run (headed by its run id, its name beneath), or with `long` (the
    default past LONG_AFTER runs) a row per run."""
    sections: list[tuple[str, list[tuple[str, list[str]]]]] = []
    differing = class_differences(records)
    if differing:
        sections.append(("comparison class (DIFFERENT: not like for like)",
                         [(f"! {CLASS_FIELDS[f]}", [_cell(v) for v in vals]) for f, vals in differing]))
    sections.append(("settings that differ", [(k, [_cell(v) for v in vals])
                                              for k, vals in setting_differences(records)]))
    values = [metric_values(r) for r in records]
    status = [r.receipt.status.upper() if r.receipt.status == "diverged" else r.receipt.status for r in records]
    sections.append(("metrics", [("status" if len(set(status)) == 1 else "* status", status)] + [(metric_heading(key),
                                  [metric_text(key, v[key]) for v in values])
                                 for key, _, _ in METRICS if any(v[key] is not None for v in values)]))
    prov = [provenance_values(r) for r in records]
    sections.append(("provenance (* differs)", [(("* " if len({p[k] for p in prov}) > 1 else "") + k,
                                                  [_cell(p[k]) for p in prov]) for k in prov[0]]))
    if forced and differing:
        head = (f"compare: {len(records)} runs of DIFFERENT comparison classes (--force); "
                "the numbers below do not compare like for like")
    else:
        head = f"compare: {len(records)} runs of one comparison class ({class_label(comparison_class(records[0]))})"
    notes = [f"{r.name}: {divergence_text(r.receipt)}" for r in records if r.receipt.divergence is not None]
    if long if long is not None else len(records) > LONG_AFTER:
        table = _long(records, sections)
    else:
        table = _table([[r.receipt.run_id for r in records], [_cell(r.name) for r in records]], sections)
    return "\n".join([head, "", *table, *notes]) + "\n"


def refusal(records: list[RunRecord]) -> tuple[str, str] | None:
    """(message, hint) when the runs are of different classes, naming the first field that differs."""
    differing = class_differences(records)
    if not differing:
        return None
    field, vals = differing[0]
    shown = ", ".join(f"`{v}` ({r.name})" for v, r in zip(vals, records, strict=True))
    others = [CLASS_FIELDS[f] for f, _ in differing[1:]]
    also = f"; also differ: {', '.join(others)}" if others else ""
    return (f"these runs are of different comparison classes: {CLASS_FIELDS[field]} is {shown}{also}",
            "Compare runs of one class (same lane, hardware, world size, model, precision and compile), "
            "or pass --force to see them side by side, marked")

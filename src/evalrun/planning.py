"""Planning the next run (`evalrun plan`): from a finished run's summary.json, or from assumptions, how
many items each comparison needs for a target interval width or for 80% power, and the smallest
paired difference the run could have detected.

The maths is in `stats.power`; this module reads what a run measured (each comparison's agreement,
kappa and McNemar counts) and arranges one row per quantity, which `render` prints as a table and
`Plan.to_json` gives as JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import EvalrunError
from .stats import power as pw

# summary.json's lists of item-by-item comparisons: two variants, conditions, paraphrases, readers
SECTIONS = ("pairs", "conditions", "paraphrase_pairs", "readers")


@dataclass(frozen=True)
class Plan:
    """A plan's settings and its rows (one per quantity of one comparison)."""

    source: str  # the run folder, or "assumptions"
    width: float
    power: float
    alpha: float
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "target_width": self.width, "level": 1 - self.alpha,
                "power": self.power, "alpha": self.alpha, "rows": self.rows}


def plan(run_dir: Path | str | None = None, *, width: float = 0.1, power: float = 0.8, alpha: float = 0.05,
         difference: float | None = None, agreement: float | None = None, kappa: float | None = None,
         prevalence: float | None = None, discordance: float | None = None, items: int | None = None) -> Plan:
    """Items needed for a `width`-wide (1 - alpha) interval on each comparison's agreement, kappa and
    paired rate differences, items for `power` to detect `difference` (default: the difference the run
    observed) with McNemar's exact test, and the smallest difference the run could have detected.

    With `run_dir` the run's own estimates are assumed for the next run; without it, the assumptions
    given (`agreement`; `kappa` with `prevalence`; `discordance` with `difference` and/or `items`).
    A folder that is not a run's, or a setting out of range, raises EvalrunError.
    """
    _check_settings(width, power, alpha, difference)
    if run_dir is None:
        rows = _assumed(width, power, alpha, difference, agreement, kappa, prevalence, discordance, items)
        return Plan("assumptions", width, power, alpha, rows)
    if any(v is not None for v in (agreement, kappa, prevalence, discordance, items)):
        raise EvalrunError("give a run folder or assumptions (--agreement, --kappa, --discordance, ...), not both")
    run_dir = Path(run_dir)
    statistics, labels = _read(run_dir)
    try:
        rows = [row for section in SECTIONS for entry in statistics.get(section) or []
                for row in _comparison_rows(section, entry, labels, width, power, alpha, difference)]
        for entry in statistics.get("agreement_across_conditions") or []:
            if test := entry.get("mcnemar"):
                name = f"{entry['model']}: {entry['a']} vs {entry['b']}, {' vs '.join(entry['conditions'])}"
                rows.append(_difference_row(name, "agreement difference between conditions", int(test["b"]),
                                            int(test["c"]), int(test["n"]), test["pvalue"], width, power, alpha,
                                            difference))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:  # a hand-edited statistics object
        raise EvalrunError(f"{run_dir / 'summary.json'}: not a run's summary: its statistics lack or garble "
                           f"{exc!r}") from None
    return Plan(str(run_dir), width, power, alpha, rows)


def _check_settings(width: float, power: float, alpha: float, difference: float | None) -> None:
    # `not a < x < b` refuses NaN too
    if not 0 < width < 1:
        raise EvalrunError(f"--width must be between 0 and 1 (the interval's full width, 0.1 = 10 points), "
                           f"not {width:g}")
    if not 0 < power < 1:
        raise EvalrunError(f"--power must be between 0 and 1, not {power:g}")
    if not 0 < alpha < 1:
        raise EvalrunError(f"--alpha must be between 0 and 1, not {alpha:g}")
    if difference is not None and not 0 < abs(difference) <= 1:
        raise EvalrunError(f"--difference must be a rate difference between 0 and 1 (not 0), not {difference:g}")


def _read(run_dir: Path) -> tuple[Mapping[str, Any], list[str]]:
    """A run's statistics and labels; its record is checked by `RunRecord.load`."""
    from .record import RunRecord

    if not run_dir.is_dir():
        raise EvalrunError(f"{run_dir}: not a run folder (no such folder)")
    summary_path = run_dir / "summary.json"
    record = RunRecord.load(summary_path)
    statistics = json.loads(summary_path.read_text(encoding="utf-8")).get("statistics")
    if not isinstance(statistics, dict):
        raise EvalrunError(f"{summary_path}: not a run's summary: no 'statistics' object")
    return statistics, record.labels


def _name(section: str, entry: Mapping[str, Any]) -> str:
    """How the report names a comparison: the levels it holds fixed, then a vs b."""
    fixed = [str(entry["model"])]
    if "condition" in entry:
        fixed.append(f"condition {entry['condition']}")
    if "variant" in entry:
        fixed.append(str(entry["variant"]))
    kind = {"paraphrase_pairs": "paraphrase ", "readers": "reader "}.get(section, "")
    return f"{', '.join(fixed)}: {kind}{entry['a']} vs {kind}{entry['b']}"


def _comparison_rows(section: str, entry: Mapping[str, Any], labels: list[str], width: float, power: float,
                     alpha: float, difference: float | None) -> Iterator[dict[str, Any]]:
    name = _name(section, entry)
    asked, labelled = int(entry["items"]), int(entry["both_labelled"])
    yield _agreement_row(name, entry["agreement"], asked, labelled, width, alpha)
    yield _kappa_row(name, entry["cohen_kappa"], asked, labelled, width, alpha)
    if test := entry.get("mcnemar"):
        b, c = int(test["a_only_correct"]), int(test["b_only_correct"])
        yield _difference_row(name, "accuracy difference (a - b)", b, c, sum(map(sum, test["table"])),
                              test["pvalue"], width, power, alpha, difference)
    test = entry.get("label_rates_differ")
    if test and str(test.get("test", "")).startswith("McNemar"):  # two labels; Stuart-Maxwell for more
        yield _difference_row(name, f"rate of '{labels[0]}' (a - b)", int(test["b"]), int(test["c"]),
                              int(test["n"]), test["pvalue"], width, power, alpha, difference,
                              share=labelled / asked if asked else None)


def _scaled(needed: int, share: float | None) -> int:
    """Items to ask so that `needed` are expected to count, when only `share` of the asked items do
    (unparsed answers drop an item from agreement and kappa)."""
    return needed if not share else math.ceil(needed / share - 1e-9)


def _row(name: str, quantity: str, **values: Any) -> dict[str, Any]:
    base = {"comparison": name, "quantity": quantity, "n": None, "estimate": None, "width": None,
            "items_for_width": None, "pvalue": None, "discordance": None, "minimum_detectable": None,
            "target_difference": None, "items_for_power": None, "note": None}
    return {**base, **values}


def _agreement_row(name: str, agreement: Mapping[str, Any], asked: int, labelled: int, width: float,
                   alpha: float) -> dict[str, Any]:
    p = agreement["estimate"]
    if p is None:
        return _row(name, "percent agreement", n=0, note="no item labelled by both")
    needed = pw.wilson_items(p, width, alpha)
    return _row(name, "percent agreement", n=labelled, estimate=p, width=agreement["ci_high"] - agreement["ci_low"],
                items_for_width=_scaled(needed, labelled / asked if asked else None),
                note=_share_note(asked, labelled))


def _kappa_row(name: str, kappa: Mapping[str, Any], asked: int, labelled: int, width: float,
               alpha: float) -> dict[str, Any]:
    if kappa["kappa"] is None:
        return _row(name, "Cohen's kappa", n=labelled, note="kappa undefined here")
    if kappa.get("se") is None or kappa["ci_low"] is None:
        return _row(name, "Cohen's kappa", n=labelled, estimate=kappa["kappa"],
                    note="no variance to scale (degenerate table)")
    needed = pw.kappa_items(labelled * kappa["se"] ** 2, width, alpha)
    return _row(name, "Cohen's kappa", n=labelled, estimate=kappa["kappa"], width=kappa["ci_high"] - kappa["ci_low"],
                items_for_width=_scaled(needed, labelled / asked if asked else None),
                note=_share_note(asked, labelled))


def _share_note(asked: int, labelled: int) -> str | None:
    if labelled < asked:
        return f"scaled up: {labelled} of {asked} items labelled by both, as in this run"
    return None


def _difference_row(name: str, quantity: str, b: int, c: int, n: int, pvalue: float | None, width: float,
                    power: float, alpha: float, difference: float | None, share: float | None = None
                    ) -> dict[str, Any]:
    """A paired rate difference tested with McNemar's exact test: b and c are the two kinds of
    discordant item among n (so the difference is (b - c) / n)."""
    if n == 0:
        return _row(name, quantity, n=0, note="no item to compare")
    psi, d = (b + c) / n, (b - c) / n
    values: dict[str, Any] = {"n": n, "estimate": d, "pvalue": pvalue, "discordance": psi,
                              "minimum_detectable": pw.minimum_detectable_difference(b, c, n, power, alpha)}
    if psi == 0:
        return _row(name, quantity, **values, note="no discordant item: nothing to scale")
    if psi - d * d <= 0:  # psi = |d| = 1: the variance (psi - d^2) / n is 0, and no width can be planned from it
        return _row(name, quantity, **values, note="every item differs, all one way: no variance to scale")
    z = pw.z_two_sided(alpha)
    values["width"] = 2 * z * math.sqrt((psi - d * d) / n)
    values["items_for_width"] = _scaled(pw.paired_difference_items(psi, d, width, alpha), share)
    target = abs(d) if difference is None else abs(difference)
    values["target_difference"] = target
    note = None
    if target == 0:
        note = "no observed difference: give --difference"
    elif target > psi:
        note = f"a difference of {target:g} exceeds the discordance {psi:.3f}"
    else:
        values["items_for_power"] = _scaled(pw.mcnemar_items(psi, target, power, alpha), share)
    if values["minimum_detectable"] is None and note is None:
        note = "too few items to detect any difference at this discordance"
    return _row(name, quantity, **values, note=note)


def _assumed(width: float, power: float, alpha: float, difference: float | None, agreement: float | None,
             kappa: float | None, prevalence: float | None, discordance: float | None,
             items: int | None) -> list[dict[str, Any]]:
    """Rows from assumptions alone: each quantity for which enough is given."""
    rows: list[dict[str, Any]] = []
    if agreement is not None:
        if not 0 <= agreement <= 1:
            raise EvalrunError(f"--agreement must be between 0 and 1, not {agreement:g}")
        rows.append(_row("assumed", "percent agreement", estimate=agreement,
                         items_for_width=pw.wilson_items(agreement, width, alpha)))
    if (kappa is None) != (prevalence is None):
        raise EvalrunError("--kappa and --prevalence go together (kappa's variance depends on the label's rate)")
    if kappa is not None and prevalence is not None:
        if not 0 < prevalence < 1 or not -1 < kappa < 1:
            raise EvalrunError("--prevalence must be between 0 and 1 and --kappa between -1 and 1 (both exclusive)")
        rows.append(_row("assumed", "Cohen's kappa", estimate=kappa,
                         items_for_width=pw.kappa_items(pw.kappa_unit_variance(kappa, prevalence), width, alpha),
                         note=f"two raters, one binary label given at rate {prevalence:g}"))
    if discordance is not None:
        rows.append(_assumed_difference(width, power, alpha, difference, discordance, items))
    elif difference is not None or items is not None:
        raise EvalrunError("--difference and --items need --discordance (the share of items on which the pair differs)")
    if not rows:
        raise EvalrunError("nothing to plan: give a run folder, or --agreement, --kappa with --prevalence, "
                           "or --discordance")
    return rows


def _assumed_difference(width: float, power: float, alpha: float, difference: float | None, discordance: float,
                        items: int | None) -> dict[str, Any]:
    if not 0 < discordance <= 1:
        raise EvalrunError(f"--discordance must be more than 0 and at most 1, not {discordance:g}")
    if difference is not None and abs(difference) > discordance:
        raise EvalrunError(f"--difference {difference:g} cannot exceed --discordance {discordance:g} (a paired "
                           "difference comes from the discordant items)")
    if items is not None and items < 1:
        raise EvalrunError(f"--items must be 1 or more, not {items}")
    d = difference or 0.0
    values: dict[str, Any] = {"n": items, "estimate": difference, "discordance": discordance,
                              "items_for_width": pw.paired_difference_items(discordance, d, width, alpha)}
    if difference is not None:
        values["target_difference"] = abs(difference)
        values["items_for_power"] = pw.mcnemar_items(discordance, abs(difference), power, alpha)
    if items is not None:
        values["minimum_detectable"] = pw.detectable_difference(discordance, items, power, alpha)
    return _row("assumed", "paired rate difference", **values)


def render(result: Plan) -> None:
    """The plan as a table on the terminal (rich), with the settings above it and notes below."""
    from rich.console import Console
    from rich.table import Table

    level, points = f"{1 - result.alpha:.0%}", f"{result.width * 100:g} points"
    table = Table(title=f"Plan from {result.source}: {level} intervals {points} wide; "
                        f"{result.power:.0%} power, two-sided alpha {result.alpha:g}", title_justify="left")
    for header in ("quantity", "n", "estimate", f"{level} width now", f"items for {points}", "p",
                   "smallest detectable", "items for power", "note"):
        table.add_column(header, overflow="fold", no_wrap=header == "quantity")
    shown = None
    for row in result.rows:
        if row["comparison"] != shown:  # each comparison heads its rows, so the name need not be a column
            shown = row["comparison"]
            table.add_section()
            table.add_row(f"[bold]{shown}[/bold]")
        power_cell = "" if row["items_for_power"] is None else \
            f"{row['items_for_power']:,} (for {_points(row['target_difference'])})"
        table.add_row(row["quantity"], _int(row["n"]), _number(row["estimate"]), _number(row["width"]),
                      _int(row["items_for_width"]), _p(row["pvalue"]), _points(row["minimum_detectable"]), power_cell,
                      row["note"] or "")
    console = Console()
    # a table this wide folds badly at the 80 columns rich assumes for a pipe or a file
    (console if console.is_terminal else Console(width=200)).print(table)


def _int(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _points(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f} points"


def _p(value: float | None) -> str:
    if value is None:
        return ""
    return "< 0.001" if value < 0.001 else f"{value:.3f}"

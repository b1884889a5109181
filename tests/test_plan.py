"""`evalrun plan` and stats/power.py, checked against independent computations: statsmodels' Wilson
interval and kappa variance, and seeded simulations of paired binary data tested with scipy's exact
binomial test (McNemar's exact test as the report runs it)."""

from __future__ import annotations

import json
import math
import shutil
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest, norm
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.proportion import proportion_confint

import evalrun
from evalrun.cli import main
from evalrun.stats import power as pw

EXAMPLE = Path(__file__).resolve().parents[1] / "reports" / "example"
Z = float(norm.ppf(0.975))
REPLICATES = 20_000  # Monte Carlo standard error of a power near 0.8: sqrt(0.16 / 20000) = 0.0028


@cache
def _exact_p(b: int, c: int) -> float:
    """McNemar's exact two-sided p-value, by scipy's binomial test (p = 1 without discordant pairs)."""
    return 1.0 if b + c == 0 else float(binomtest(min(b, c), b + c, 0.5).pvalue)


def simulated_power(n: int, discordance: float, difference: float, seed: int) -> float:
    """Share of REPLICATES simulated paired studies of n items in which McNemar's exact test rejects at 0.05."""
    rng = np.random.default_rng(seed)
    p10, p01 = (discordance + difference) / 2, (discordance - difference) / 2
    cells = rng.multinomial(n, [p10, p01, 1 - discordance], size=REPLICATES)
    return float(np.mean([_exact_p(int(b), int(c)) <= 0.05 for b, c, _ in cells]))


def within_monte_carlo_error(observed: float, expected: float) -> bool:
    return abs(observed - expected) <= 4 * math.sqrt(expected * (1 - expected) / REPLICATES)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(EXAMPLE, target)
    return target


def _plan_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:  # type: ignore[type-arg]
    assert main(["plan", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _row(plan: dict, comparison: str, quantity: str) -> dict:  # type: ignore[type-arg]
    (row,) = [r for r in plan["rows"] if r["comparison"] == comparison and r["quantity"].startswith(quantity)]
    return row


# --- interval widths --------------------------------------------------------------------------------

def _wilson_width(p: float, n: int) -> float:
    low, high = proportion_confint(p * n, n, alpha=0.05, method="wilson")
    return float(high - low)


@pytest.mark.parametrize(("p", "width"), [(0.5, 0.1), (0.42, 0.1), (0.9, 0.05), (0.0, 0.1), (1.0, 0.02), (0.7, 0.3)])
def test_wilson_items_is_the_first_n_whose_statsmodels_wilson_interval_is_narrow_enough(p: float, width: float
                                                                                      ) -> None:
    n = pw.wilson_items(p, width)
    assert _wilson_width(p, n) <= width + 1e-12
    assert _wilson_width(p, n - 1) > width


def test_wilson_items_is_near_the_wald_closed_form_for_a_middling_rate() -> None:
    # far from 0 and 1 the Wilson and Wald widths nearly agree: n = z^2 p q / (W/2)^2 = 384.1 at p = 1/2, W = 0.1
    assert abs(pw.wilson_items(0.5, 0.1) - Z**2 * 0.25 / 0.05**2) < 5


@pytest.mark.parametrize(("kappa", "prevalence"), [(0.5, 0.3), (0.2, 0.5), (0.7, 0.1), (-0.1, 0.4)])
def test_kappa_unit_variance_equals_statsmodels_at_the_table_the_assumptions_imply(kappa: float, prevalence: float
                                                                                   ) -> None:
    q = prevalence * (1 - prevalence)
    n = 10_000
    table = np.array([[prevalence**2 + kappa * q, (1 - kappa) * q],
                      [(1 - kappa) * q, (1 - prevalence) ** 2 + kappa * q]]) * n
    result = cohens_kappa(table, return_results=True)
    assert result.kappa == pytest.approx(kappa)
    assert pw.kappa_unit_variance(kappa, prevalence) == pytest.approx(n * result.var_kappa, rel=1e-9)


def test_kappa_items_from_a_run_scale_its_statsmodels_variance_to_the_target_width(run_dir: Path,
                                                                                   capsys: pytest.CaptureFixture[str]
                                                                                   ) -> None:
    # the example's direct vs story table over the items both labelled (rows direct, columns story)
    table = np.array([[4, 8], [3, 4]], dtype=float)
    row = _row(_plan_json(capsys, str(run_dir), "--width", "0.3"), "evalrun/smollm2: direct vs story",
               "Cohen's kappa")
    assert row["n"] == 19
    labelled = math.ceil(row["items_for_width"] * 19 / 48)  # the plan asks for 48 items per 19 labelled

    def width(n: float) -> float:  # statsmodels' interval on a table of the same proportions and n items
        return 2 * Z * math.sqrt(cohens_kappa(table * n / 19, return_results=True).var_kappa)

    assert width(labelled) <= 0.3 + 1e-9
    assert width(labelled - 3) > 0.3  # the 48/19 rounding moves `labelled` by up to 2


def test_paired_difference_items_give_the_width_a_simulation_shows() -> None:
    discordance, difference, target = 0.3, 0.1, 0.08
    n = pw.paired_difference_items(discordance, difference, target)
    rng = np.random.default_rng(7)
    cells = rng.multinomial(n, [(discordance + difference) / 2, (discordance - difference) / 2,
                                1 - discordance], size=REPLICATES)
    estimates = (cells[:, 0] - cells[:, 1]) / n
    simulated = 2 * Z * estimates.std()
    # the standard deviation's relative Monte Carlo error is about 1 / sqrt(2 R) = 0.5%
    assert simulated == pytest.approx(target, rel=0.03)


# --- power ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("discordance", "difference", "seed"), [(0.3, 0.1, 1), (0.5, 0.25, 2)])
def test_planned_items_give_mcnemar_exact_80_percent_power_in_simulation(discordance: float, difference: float,
                                                                         seed: int) -> None:
    n = pw.mcnemar_items(discordance, difference)
    assert within_monte_carlo_error(simulated_power(n, discordance, difference, seed), 0.8)


def test_exact_power_agrees_with_simulation_at_a_small_n() -> None:
    expected = pw.mcnemar_power(30, 0.4, 0.25)
    assert within_monte_carlo_error(simulated_power(30, 0.4, 0.25, seed=3), expected)


def test_connor_formula_overstates_the_exact_tests_power() -> None:
    # the exact test is conservative: at Connor's normal-theory n its power is below the target
    n = pw.connor_items(0.3, 0.1)
    assert simulated_power(n, 0.3, 0.1, seed=4) < 0.8
    assert pw.mcnemar_items(0.3, 0.1) > n


def test_smallest_detectable_difference_of_the_example_run_has_80_percent_power(
        run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    row = _row(_plan_json(capsys, str(run_dir)), "evalrun/smollm2: direct vs story", "accuracy difference")
    # the example's McNemar table: 9 items only direct right, 13 only story right, of 48
    assert (row["n"], row["discordance"], row["estimate"]) == (48, pytest.approx(22 / 48), pytest.approx(-4 / 48))
    assert row["pvalue"] > 0.05
    mdd = row["minimum_detectable"]
    assert mdd == pytest.approx(pw.minimum_detectable_difference(9, 13, 48))
    assert within_monte_carlo_error(simulated_power(48, 22 / 48, mdd, seed=5), 0.8)
    # and a difference a tenth smaller is detected clearly less often
    assert simulated_power(48, 22 / 48, 0.9 * mdd, seed=6) < 0.8 - 0.03


def test_a_small_difference_plans_many_items_near_connors_formula() -> None:
    # for tens of thousands of items the exact and the normal-theory tests nearly agree
    assert pw.mcnemar_items(0.5, 0.01) == pytest.approx(pw.connor_items(0.5, 0.01), rel=0.01)


def test_no_discordant_pair_detects_nothing() -> None:
    assert pw.minimum_detectable_difference(0, 0, 50) is None
    assert pw.minimum_detectable_difference(1, 0, 3) is None  # 3 items cannot reach p < 0.05


# --- the command and the library call ---------------------------------------------------------------

def test_plan_of_the_example_run_prints_a_table(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "direct vs story" in out and "smallest detectable" in out and "percent agreement" in out


def test_agreement_row_asks_for_the_items_statsmodels_wilson_needs(run_dir: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    row = _row(_plan_json(capsys, str(run_dir)), "evalrun/smollm2: direct vs story", "percent agreement")
    p = 8 / 19  # 8 of the 19 items both labelled agree
    assert row["estimate"] == pytest.approx(p)
    labelled = next(n for n in range(1, 10_000) if _wilson_width(p, n) <= 0.1)
    assert row["items_for_width"] == math.ceil(labelled * 48 / 19)  # 19 of 48 items labelled by both


def test_library_call_and_assumptions(run_dir: Path) -> None:
    assert evalrun.plan(run_dir).rows == evalrun.plan(str(run_dir)).rows
    assumed = evalrun.plan(agreement=0.8, kappa=0.5, prevalence=0.3, discordance=0.3, difference=0.1, items=100)
    agreement, kappa, difference = assumed.rows
    assert agreement["items_for_width"] == next(n for n in range(1, 10_000) if _wilson_width(0.8, n) <= 0.1)
    assert kappa["items_for_width"] == math.ceil(pw.kappa_unit_variance(0.5, 0.3) * (2 * Z / 0.1) ** 2)
    assert difference["items_for_power"] == pw.mcnemar_items(0.3, 0.1)
    assert within_monte_carlo_error(simulated_power(100, 0.3, difference["minimum_detectable"], seed=8), 0.8)


@pytest.mark.parametrize("argv", [
    ["plan", "{run}", "--width", "0"],
    ["plan", "{run}", "--width", "1.5"],
    ["plan", "{run}", "--width", "nan"],
    ["plan", "{run}", "--power", "1"],
    ["plan", "{run}", "--agreement", "0.8"],
    ["plan", "{empty}"],
    ["plan", "{missing}"],
    ["plan"],
    ["plan", "--kappa", "0.5"],
    ["plan", "--discordance", "0.2", "--difference", "0.3"],
])
def test_errors_are_one_line_and_exit_2(argv: list[str], run_dir: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    paths = {"run": run_dir, "empty": tmp_path / "empty", "missing": tmp_path / "missing"}
    assert main([a.format(**paths) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("evalrun: error: ") and err.count("\n") == 1


def test_a_summary_without_statistics_is_one_line(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    del summary["statistics"]
    (run_dir / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    assert main(["plan", str(run_dir)]) == 2
    assert capsys.readouterr().err == f"evalrun: error: {run_dir / 'summary.json'}: not a run's summary: " \
                                      "no 'statistics' object\n"


def test_garbled_statistics_are_one_line_naming_the_file(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    del summary["statistics"]["pairs"][0]["cohen_kappa"]
    (run_dir / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    assert main(["plan", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"evalrun: error: {run_dir / 'summary.json'}: not a run's summary: ")
    assert "cohen_kappa" in err and err.count("\n") == 1


def test_conditions_and_agreement_across_them_are_planned(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the shapes api.run writes for a spec with conditions (see test_design), grafted onto the example
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    pair = summary["statistics"]["pairs"][0]
    summary["statistics"]["conditions"] = [{**pair, "variant": "direct", "a": "watched", "b": "unwatched"}]
    summary["statistics"]["agreement_across_conditions"] = [{
        "model": "evalrun/smollm2", "a": "direct", "b": "story", "conditions": ["watched", "unwatched"], "items": 40,
        "mcnemar": {"test": "McNemar exact (agreement under each condition)", "statistic": 2, "pvalue": 0.0574,
                    "n": 40, "discordant": 9, "b": 7, "c": 2}}]
    (run_dir / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    plan = _plan_json(capsys, str(run_dir))
    row = _row(plan, "evalrun/smollm2, direct: watched vs unwatched", "accuracy difference")
    assert (row["n"], row["estimate"]) == (48, pytest.approx(-4 / 48))
    row = _row(plan, "evalrun/smollm2: direct vs story, watched vs unwatched", "agreement difference")
    assert (row["n"], row["discordance"], row["estimate"]) == (40, pytest.approx(9 / 40), pytest.approx(5 / 40))
    assert within_monte_carlo_error(simulated_power(40, 9 / 40, row["minimum_detectable"], seed=9), 0.8)

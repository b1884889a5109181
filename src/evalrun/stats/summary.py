"""Statistics: from labelled responses to distributions, accuracy and agreement.

Every statistic is computed by the modules beside this one (`agreement`, `kappa`, `alpha`,
`confusion`, `proportion`, `paired`, `inference`, `bootstrap`, `clustered`, `samples`), each with its
edge rules; this module only arranges the tables they take and places their results, grouped as
`grouping` says from the design's axes. Conventions (also in the README):

* The item-level label of a variant is the modal label over its samples, among
  samples that produced a label. A tie for the mode, or no labelled sample at all,
  makes the item `unparsed` for that variant.
* Accuracy is item-level, over items that have a gold label; an unparsed item
  counts as incorrect (so a model cannot gain accuracy by refusing).
* Agreement (percent, Cohen's kappa) is over items labelled by both variants;
  Krippendorff's alpha uses every item, with unparsed as missing data.
* McNemar's exact test compares the two variants' paired correctness on gold items.
* Intervals are 95%: Wilson for proportions, the asymptotic interval of
  statsmodels' `cohens_kappa` for kappa.
* Two levels of a crossed axis (conditions, models) are compared effect first, label by
  label (`label_effects`); two levels that sent the same requests and got the same answers
  agree by construction and are listed apart, untested (`same_requests`).
* Holm's correction spans every test of the report; the slices' tests, exploratory, are a
  family of their own. Stability is within one prompt (samples/`stability`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ..extract import UNPARSED
from ..extract.choice import NO_LOGPROBS
from .agreement import agreement
from .alpha import label_alpha
from .bootstrap import bootstrap_ratio_difference
from .grouping import Grouping, breakdown, compared, distinct
from .grouping import where as _where
from .inference import accuracy_interval, adjust, correct, correctness_test, detectable, paired, rate_interval
from .items import GROUP, collect, first_seen, item_labels, per_prompt
from .kappa import fleiss_kappa, label_counts
from .numbers import finite
from .paired import cochran_q, mcnemar_exact
from .proportion import wilson
from .samples import expected_agreement, sample_agreement, stability
from .stated import stated_comparisons

if TYPE_CHECKING:
    from ..design.axes import Axis

ERROR = "error"  # a job with no answer at all; distinct from an answer with no label


DISAGREEMENTS_LISTED = 20

LabelSets = Mapping[str, Sequence[str]] | None  # variant -> its own labels, when some variant has its own


def own(labels: Sequence[str], sets: LabelSets, variant: str) -> Sequence[str]:
    """The labels `variant`'s answers are read as: its own, else the run's."""
    return sets.get(variant, labels) if sets else labels


def variant_summary(responses: pl.LazyFrame, items: pl.DataFrame, order: Sequence[tuple[Any, ...]],
                    labels: Sequence[str], has_gold: bool, group: Sequence[str] = GROUP, sets: LabelSets = None
                    ) -> list[dict[str, object]]:
    """Per group (model x variant, and each used axis), in `order`: responses, errors, counts of the variant's
    labels and item-level accuracy."""
    group = list(group)
    counts: dict[tuple[Any, ...], dict[str, int]] = {}
    errors: dict[tuple[Any, ...], int] = {}
    tally = responses.group_by(*group, pl.col("error_class").is_not_null().alias("failed"), "label").len()
    for *key, failed, label, n in collect(tally).rows():
        if failed:
            errors[tuple(key)] = errors.get(tuple(key), 0) + n
        else:
            counts.setdefault(tuple(key), {})[UNPARSED if label is None else label] = n
    probabilities = label_probabilities(responses, group, labels, sets)
    out = []
    for key in order:
        dist = counts.get(key, {})
        read = own(labels, sets, dict(zip(group, key, strict=True))["variant"])
        answered = sum(dist.values())
        entry: dict[str, object] = {
            **dict(zip(group, key, strict=True)),
            "responses": answered + errors.get(key, 0),
            "errors": errors.get(key, 0),
            "labels": {label: dist.get(label, 0) for label in [*read, UNPARSED]},
            "unparsed_rate": wilson(dist.get(UNPARSED, 0), answered),
        }
        item_rows = _where(items, dict(zip(group, key, strict=True)))
        entry["items"] = item_rows.height
        entry["items_unparsed"] = item_rows["label"].null_count()
        if key in probabilities:
            entry["label_probabilities"] = probabilities[key]
        item_labels_ = item_rows["label"].to_list()
        entry["label_rates"] = {label: rate_interval(item_labels_, label) for label in read}
        if has_gold:
            right, has = correct(item_labels_, item_rows["gold"].to_list())
            entry["accuracy"] = wilson(int(right.sum()), int(has.sum()))
            entry["accuracy_bootstrap"] = accuracy_interval(item_labels_, item_rows["gold"].to_list())
        out.append(entry)
    return out


def label_probabilities(responses: pl.LazyFrame, group: Sequence[str], labels: Sequence[str], sets: LabelSets = None
                        ) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Per group read from log-probabilities: the mean probability of each label over the answers that
    had them, the mean mass the labels captured, and how many answers came without any."""
    if "probabilities" not in responses.collect_schema():  # a table written before log-probabilities were read
        return {}
    lacking = pl.col("extraction").str.starts_with(NO_LOGPROBS)
    read = responses.filter(pl.col("probabilities").is_not_null() | lacking)
    rows = collect(read.select(*group, "probabilities", "captured", "extraction"))
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for key, part in rows.group_by(list(group), maintain_order=True):
        given = [json.loads(p) for p in part["probabilities"].drop_nulls()]
        out[tuple(key)] = {
            "answers": len(given),
            "without_logprobs": int(part["extraction"].str.starts_with(NO_LOGPROBS).sum()),
            "mean": {label: float(np.mean([g.get(label, 0.0) for g in given])) if given else None
                     for label in own(labels, sets, dict(zip(group, key, strict=True))["variant"])},
            "captured": finite(part["captured"].drop_nulls().mean()) if given else None,  # type: ignore[arg-type]
        }
    return out


def compare_levels(items: pl.DataFrame, where: dict[str, Any], axis: str, a: str, b: str, labels: Sequence[str],
                   has_gold: bool, ordered: bool = False) -> dict[str, object]:
    """Two levels of one axis (two variants, two conditions, ...) compared item by item, within `where`
    (the other axes' levels): agreement, kappa, alpha, confusion and, with gold, McNemar's test."""
    rows = _where(items, where)
    left = rows.filter(pl.col(axis) == a).select("item_id", "label", "gold")
    right = rows.filter(pl.col(axis) == b).select("item_id", pl.col("label").alias("label_b"))
    joined = left.join(right, on="item_id", how="inner", maintain_order="left")
    la, lb = joined["label"].to_list(), joined["label_b"].to_list()

    gold = joined["gold"].to_list() if has_gold else None
    found = agreement(la, lb, labels)
    result: dict[str, object] = {
        **where, "a": a, "b": b,
        "items": joined.height,
        "both_labelled": found["n_both"],
        "agreement": found["percent"],
        "cohen_kappa": found["kappa"],
        "krippendorff_alpha": found["alpha"],
        "confusion": {"rows": a, "cols": b, "categories": [*labels, UNPARSED], "counts": found["confusion"]["counts"]},
    }
    if gold is not None:
        result["mcnemar"] = correctness_test(la, lb, gold)
    result.update(paired(la, lb, gold, labels, ordered=ordered))
    return result


def all_variants_alpha(items: pl.DataFrame, where: dict[str, Any], variants: Sequence[str],
                       labels: Sequence[str]) -> float | None:
    """Krippendorff's alpha across all variants at once, within `where` (a model, and a condition)."""
    return all_levels_alpha(_where(items, where), "variant", variants, labels)


def all_levels_alpha(rows: pl.DataFrame, axis: str, levels: Sequence[Any], labels: Sequence[str]) -> float | None:
    """Krippendorff's alpha with one coder per level of `axis` (an item a level lacks is missing data)."""
    ids = rows["item_id"].unique(maintain_order=True).to_list()
    columns = []
    for level in levels:
        lookup = dict(zip(*rows.filter(pl.col(axis) == level).select("item_id", "label")
                          .to_dict(as_series=False).values(), strict=True))
        columns.append([lookup.get(i) for i in ids])
    return label_alpha(columns, labels)


def across_variants(items: pl.DataFrame, where: dict[str, Any], variants: Sequence[str], labels: Sequence[str]
                    ) -> dict[str, Any]:
    """With three or more variants, over the items every variant labelled: Fleiss' kappa across the
    variants, and Cochran's Q test of whether they give the first label at different rates (two labels;
    with more, the pairwise Stuart-Maxwell tests of the pairs speak instead)."""
    rows = _where(items, where).filter(pl.col("variant").is_in(list(variants)))
    if len(variants) < 3 or rows.is_empty():
        return {}
    wide = rows.pivot("variant", index="item_id", values="label").drop_nulls()
    present = [v for v in variants if v in wide.columns]
    if len(present) < 3:
        return {}
    matrix = wide.select(present).to_numpy()
    counts = label_counts(matrix.tolist(), labels)
    out: dict[str, Any] = {"items_all_labelled": int(matrix.shape[0]),
                           "fleiss_kappa_all_variants": fleiss_kappa(counts) if len(counts) else None}
    if len(labels) == 2:
        q = cochran_q((matrix == labels[0]).astype(int))
        out["cochran_q"] = None if q is None else {"test": f"Cochran's Q (rate of '{labels[0]}')", **q}
    return out


def agreement_difference(items: pl.DataFrame, where: dict[str, Any], axis: str, a: str, b: str, c1: str, c2: str
                         ) -> dict[str, Any]:
    """Does a pair of variants agree more at one level of a crossed axis (a condition) than at another, within
    `where` (the other crossed axes' levels)? Over the items both variants labelled at both levels: each
    level's agreement, the paired difference (bootstrap by items) and McNemar's exact test on the items that
    agree at one level only."""
    rows = _where(items, where).filter(pl.col("variant").is_in([a, b]) & pl.col(axis).is_in([c1, c2])
                                       & pl.col("label").is_not_null())
    keyed = rows.with_columns(pl.concat_str([axis, "variant"], separator="\x1f").alias("cell"))
    wide = keyed.pivot("cell", index="item_id", values="label").drop_nulls()
    columns = {(c, v): f"{c}\x1f{v}" for c in (c1, c2) for v in (a, b)}
    if wide.is_empty() or not all(name in wide.columns for name in columns.values()):
        first = second = np.zeros(0)
    else:
        first = (wide[columns[c1, a]] == wide[columns[c1, b]]).to_numpy().astype(float)
        second = (wide[columns[c2, a]] == wide[columns[c2, b]]).to_numpy().astype(float)
    n = len(first)
    only_first, only_second = int((first > second).sum()), int((second > first).sum())
    test = mcnemar_exact(only_first, only_second, n)
    ones = np.ones(n)
    return {**where, "a": a, "b": b, breakdown(axis): [c1, c2], "items": n,
            "agreement": [wilson(int(first.sum()), n), wilson(int(second.sum()), n)],
            "difference": bootstrap_ratio_difference(first, ones, second, ones),
            "mcnemar": None if test is None else {"test": f"McNemar exact (agreement under each {axis})", **test}}


def first_position(responses: pl.LazyFrame, group: Sequence[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Per group, the share of labelled answers that picked the option listed first (position bias)."""
    picked = (responses.filter(pl.col("first_option").is_not_null() & pl.col("label").is_not_null())
              .group_by(list(group)).agg((pl.col("label") == pl.col("first_option")).sum().alias("first"),
                                         pl.len().alias("n")))
    return {tuple(row[:-2]): wilson(int(row[-2]), int(row[-1])) for row in collect(picked).rows()}


def reader_agreement(responses: pl.LazyFrame, readings: pl.LazyFrame, group: Sequence[str],
                     order: Sequence[tuple[Any, ...]], readers: dict[str, list[str]], labels: Sequence[str],
                     has_gold: bool, ordered: bool = False, sets: LabelSets = None) -> list[dict[str, Any]]:
    """Per variant with more than one reader: each reader against the primary one (`extract`), item by
    item, with the items whose item-level labels differ."""
    group = list(group)
    joined = readings.join(responses.select("job_id", *group, "item_id", "gold"), on="job_id")
    by_reader = item_labels(joined, [*group, "reader"])
    out = []
    for key in order:
        where = dict(zip(group, key, strict=True))
        for reader in readers.get(where["variant"], []):
            entry = compare_levels(by_reader, where, "reader", "extract", reader, own(labels, sets, where["variant"]),
                                   has_gold, ordered)
            rows = _where(by_reader, where)
            a = rows.filter(pl.col("reader") == "extract").select("item_id", "label")
            b = rows.filter(pl.col("reader") == reader).select("item_id", pl.col("label").alias("other"))
            differ = a.join(b, on="item_id", maintain_order="left").filter(
                pl.col("label").ne_missing(pl.col("other")))
            entry["disagreements"] = differ.head(DISAGREEMENTS_LISTED).rows(named=True)
            entry["disagreements_total"] = differ.height
            out.append(entry)
    return out


def _position_bias(responses: pl.LazyFrame, group: Sequence[str], order: Sequence[tuple[Any, ...]],
                   entries: list[dict[str, Any]]) -> dict[str, object]:
    """Beside the option orders' breakdown: each order's share of answers picking the option listed first,
    and per group that share over every order."""
    sub = [*group, "option_order"]
    shares = first_position(responses, sub)
    for entry in entries:
        entry["first_position"] = shares.get(tuple(entry[k] for k in sub), wilson(0, 0))
    overall = first_position(responses, group)
    listed = {tuple(e[k] for k in group): len(str(e["option_order"]).split(", ")) for e in entries}
    return {"position_bias": [{**dict(zip(group, key, strict=True)), "first_position": overall[key],
                               "options": listed[key]} for key in order if key in overall]}


def _level_pairs(responses: pl.LazyFrame, group: Sequence[str], order: Sequence[tuple[Any, ...]], axis: str,
                 labels: Sequence[str], has_gold: bool, ordinal: bool, sets: LabelSets = None) -> dict[str, object]:
    """Two levels of a nested axis (two wordings) compared on the items asked at both, and alpha across all of
    a variant's levels at once (an item not asked at a level is missing data): the axis's own noise."""
    by_level = item_labels(responses.filter(pl.col(axis).is_not_null()), [*group, axis])
    pairs, alphas = [], []
    for key in order:
        at = dict(zip(group, key, strict=True))
        levels = sorted(set(_where(by_level, at)[axis].to_list()))
        read = own(labels, sets, at["variant"])
        pairs += [compare_levels(by_level, at, axis, a, b, read, has_gold, ordinal)
                  for a, b in itertools.combinations(levels, 2)]
        if len(levels) > 1:
            alphas.append({**at, breakdown(axis): len(levels),
                           "krippendorff_alpha": all_levels_alpha(_where(by_level, at), axis, levels, read)})
    return {f"{axis}_pairs": pairs, f"{axis}_alpha": alphas}


# what a nested axis's meaning adds to its breakdown (the option listed first), and after every axis's own
# statistics (wording noise): statistics of what the levels are, which the declarations cannot say
_BESIDE: dict[str, Callable[..., dict[str, object]]] = {"option_order": _position_bias}
_AFTER = ("paraphrase",)


def _breakdown(responses: pl.LazyFrame, group: Sequence[str], order: Sequence[tuple[Any, ...]], axis: str,
               labels: Sequence[str], has_gold: bool, sets: LabelSets = None) -> dict[str, object]:
    """A nested axis's levels one by one: the variants' statistics within each level."""
    sub = [*group, axis]
    rows = responses.filter(pl.col(axis).is_not_null())
    entries = variant_summary(rows, item_labels(rows, sub), first_seen(rows, sub), labels, has_gold, sub, sets)
    beside = _BESIDE[axis](responses, group, order, entries) if axis in _BESIDE else {}
    return {**beside, breakdown(axis): entries}


def label_effects(items: pl.DataFrame, where: dict[str, Any], axis: str, a: str, b: str, labels: Sequence[str]
                  ) -> list[dict[str, Any]]:
    """The effect of moving from level `a` to level `b` of an axis, label by label, within `where`, over the
    items labelled at both levels: each label's rate at each level (Wilson), the paired difference a - b
    in its share (item-clustered bootstrap) and, with three labels or more, McNemar's exact test of that
    label's rate. With two labels the test of either label's rate is `label_rates_differ` (McNemar on the
    labels, the same items and the same discordant pairs), which is not repeated here so that the Holm
    family counts it once."""
    rows = _where(items, where)
    joined = (rows.filter(pl.col(axis) == a).select("item_id", "label")
              .join(rows.filter(pl.col(axis) == b).select("item_id", pl.col("label").alias("label_b")),
                    on="item_id", maintain_order="left").drop_nulls(["label", "label_b"]))
    la, lb = joined["label"].to_numpy(), joined["label_b"].to_numpy()
    n, ones = joined.height, np.ones(joined.height)
    out = []
    for label in labels:
        x, y = la == label, lb == label
        entry: dict[str, Any] = {"label": label, "items": n, "a": wilson(int(x.sum()), n), "b": wilson(int(y.sum()), n),
                                 "difference": bootstrap_ratio_difference(x, ones, y, ones)}
        if len(labels) > 2:
            test = mcnemar_exact(int((x & ~y).sum()), int((~x & y).sum()), n)
            entry["mcnemar"] = None if test is None else {"test": f"McNemar exact (rate of '{label}')", **test}
        out.append(entry)
    return out


def same_requests(responses: pl.LazyFrame, where: dict[str, Any], axis: str, a: str, b: str) -> bool:
    """Whether levels `a` and `b` of `axis` sent the very same requests within `where` (a variant), and got the
    same answers: every item has the same request keys (results' `key`) at both, each answered, with the same
    labels. Then the store answered the second level with the first one's answers (the variant's prompt does not
    use the axis), and the two agree by construction. The same key alone is not enough: a request that failed
    (a model entry without its API key) or was sent afresh has answers of its own."""
    if "key" not in responses.collect_schema():  # a table written before requests were keyed
        return False
    rows = collect(responses.filter(pl.all_horizontal(pl.col(k) == v for k, v in where.items())
                                    & pl.col(axis).is_in([a, b])).select(axis, "item_id", "key", "label",
                                                                         "error_class"))
    if rows["error_class"].null_count() < rows.height:
        return False
    answers = [set(rows.filter(pl.col(axis) == level).select("item_id", "key", "label").rows()) for level in (a, b)]
    return bool(answers[0]) and answers[0] == answers[1]


def _crossed(responses: pl.LazyFrame, items: pl.DataFrame, grouping: Grouping, order: Sequence[tuple[Any, ...]],
             axis: str, compare: Sequence[tuple[str, str]], labels: Sequence[str], has_gold: bool, ordinal: bool,
             sets: LabelSets = None) -> dict[str, object]:
    """A crossed axis's levels compared item by item, two at a time, within each level of the group's other
    columns, each with its effect label by label (`label_effects`); a comparison whose two levels sent the same
    requests (`same_requests`) is true by construction, listed apart (`<axis>s_by_construction`) and not tested.
    For an axis a spec may leave out, also whether a compared pair of variants agrees more at one level than at
    another."""
    group = grouping.group
    place = group.index(axis)
    levels = [level for (level,) in distinct(order, [place])]
    if axis not in grouping.optional and len(levels) < 2:
        return {}
    within = grouping.within(axis)
    tested, constructed = [], []
    for w in distinct(order, [group.index(k) for k in within]):
        at = dict(zip(within, w, strict=True))
        for a, b in itertools.combinations(levels, 2):
            if same_requests(responses, at, axis, a, b):
                constructed.append({**at, "a": a, "b": b, "items": _where(items, {**at, axis: a}).height})
                continue
            read = own(labels, sets, at["variant"]) if "variant" in at else labels
            entry = compare_levels(items, at, axis, a, b, read, has_gold, ordinal)
            entry["effects"] = label_effects(items, at, axis, a, b, read)
            tested.append(entry)
    out: dict[str, object] = {compared(axis): tested}
    if constructed:
        out[f"{compared(axis)}_by_construction"] = constructed
    if axis in grouping.optional:
        others = grouping.others(axis)
        out[f"agreement_across_{breakdown(axis)}"] = [
            agreement_difference(items, dict(zip(others, w, strict=True)), axis, a, b, c1, c2)
            for w in distinct(order, [group.index(k) for k in others])
            for a, b in compare for c1, c2 in itertools.combinations(levels, 2)]
    return out


def summarize(responses: pl.LazyFrame | pl.DataFrame, labels: Sequence[str], compare: Sequence[tuple[str, str]],
              variants: Sequence[str], has_gold: bool, axes: Sequence[Axis] = (),
              readings: pl.LazyFrame | None = None, readers: dict[str, list[str]] | None = None,
              ordinal: bool = False, slices: Sequence[str] = (), correct: bool = True, sets: LabelSets = None,
              typed: Sequence[Mapping[str, str]] = ()) -> dict[str, object]:
    """Every statistic of a run, as JSON-ready data. `responses` has one row per job with columns
    model, variant, item_id, sample, label (None = unparsed or error), gold, error_class, and a column per
    axis of the design; as a LazyFrame (a scan of results.parquet) it is read in batches, never held whole.
    `axes` are the axes the run used (RunRecord.axes; none: release 0.1's model and variant): every figure is
    given per level of the crossed ones, and per level of the nested ones besides (see grouping.py).
    `sets` gives the variants that read labels of their own (each variant's figures use its labels; the pairs
    in `compare` read the same ones); `typed` the typed comparisons of a statement with a behaviour
    (stats/stated.py)."""
    lf = responses.lazy()
    grouping = Grouping.of(axes)
    outer, group = list(grouping.crossed), list(grouping.group)  # variants are compared within `outer`
    items = item_labels(lf, group)
    order = first_seen(lf, group)
    outers = distinct(order, range(len(outer)))
    # the statistics across every variant at once need one label set: the variants that read the run's
    alike = [v for v in variants if set(own(labels, sets, v)) == set(labels)]
    out: dict[str, object] = {
        "variants": variant_summary(lf, items, order, labels, has_gold, group, sets),
        "pairs": [compare_levels(items, dict(zip(outer, o, strict=True)), "variant", a, b, own(labels, sets, a),
                                 has_gold, ordinal) for o in outers for a, b in compare],
        "models": [{**dict(zip(outer, o, strict=True)),
                    "krippendorff_alpha_all_variants": all_variants_alpha(items, dict(zip(outer, o, strict=True)),
                                                                          alike, labels) if len(alike) > 1 else None,
                    **across_variants(items, dict(zip(outer, o, strict=True)), alike, labels),
                    **({"variants_alike": alike} if sets else {})}  # which ones, where some read other labels
                   for o in outers],
    }
    for axis in grouping.axes:
        out.update(_crossed(lf, items, grouping, order, axis, compare, labels, has_gold, ordinal, sets)
                   if axis in grouping.crossed else _breakdown(lf, group, order, axis, labels, has_gold, sets))
    prompt = [a for a in grouping.nested if a in lf.collect_schema()]  # what makes two prompts of an item
    if prompt:  # an item asked in several prompts: its label per prompt, beside the label pooled over them
        prompts = per_prompt(lf, group, prompt, labels, sets)
        for entry in out["variants"]:  # type: ignore[union-attr]
            if (key := tuple(entry[k] for k in group)) in prompts:
                entry["per_prompt"] = prompts[key]
    for axis in grouping.nested:
        if axis in _AFTER:
            out.update(_level_pairs(lf, group, order, axis, labels, has_gold, ordinal, sets))
    samples = collect(lf.select(pl.col("sample").max()))["sample"][0]
    if samples:  # more than one sample: how consistent the model is with itself (over the labels it gave)
        every = list(dict.fromkeys([*labels, *(x for v in (sets or {}).values() for x in v)]))
        out["stability"] = stability(lf, group, order, every, prompt)
        out["sample_agreement"] = [sample_agreement(lf, {k: pair[k] for k in outer}, pair["a"], pair["b"])
                                   for pair in out["pairs"]]  # type: ignore[union-attr]
    probable = {key for key in order if any(e.get("label_probabilities", {}).get("answers")
                                            for e in out["variants"]  # type: ignore[union-attr]
                                            if tuple(e[k] for k in group) == key)}
    for pair in out["pairs"]:  # type: ignore[union-attr]
        at = {k: pair[k] for k in outer}
        if {(*at.values(), pair["a"]), (*at.values(), pair["b"])} <= probable:
            pair["expected_agreement"] = expected_agreement(lf, at, pair["a"], pair["b"], own(labels, sets, pair["a"]))
    if readings is not None and readers:
        out["readers"] = reader_agreement(lf, readings, group, order, readers, labels, has_gold, ordinal, sets)
    if slices:  # the key figures again within each value of each slicing column
        out["slices"] = [
            {"column": column, "value": value,
             **{k: v for k, v in summarize(lf.filter(_slice(column) == value), labels, compare, variants, has_gold,
                                           axes, ordinal=ordinal, correct=False, sets=sets).items()
                if k in ("variants", "pairs")}}
            for column in slices
            for value in collect(lf.select(_slice(column).unique(maintain_order=True)))[column].drop_nulls()]
    if typed:  # the researcher's question, as planned as the pairs: in the confirmatory Holm family
        conditions = [c for (c,) in first_seen(lf.filter(pl.col("condition").is_not_null()), ["condition"])]
        models = [m for (m,) in distinct(order, [group.index("model")])]
        out["stated"] = stated_comparisons(lf, typed, models, conditions)
    if correct:  # the slices' tests, exploratory, are a Holm family of their own (`adjust`)
        out["tests"] = adjust(out)
        detectable(out)
    return out


def _slice(column: str) -> pl.Expr:
    """An item's value of a slicing column, from results.parquet's `slices` JSON."""
    return pl.col("slices").str.json_path_match(f"$[{json.dumps(column)}]").alias(column)



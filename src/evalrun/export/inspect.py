"""A run folder as Inspect AI eval logs (the `.json` log format, version 2), one log per model.

Inspect's `EvalSpec` names one model, so each model of the run gets its own log. Every job is one
Inspect sample: its id the job id, its input the messages sent, its output the model's answer, its
target the item's gold label (empty without one). Its scores are the primary reader's label (`label`)
and, where the item has a gold label, whether the label matches it (`correct`: Inspect's "C"/"I", and
its "N" for an answer no label was read from). The sample's metadata holds every registered axis's
columns (an axis added later is exported without a change here), each reader's label and why, and the
item's text. The log's results carry the run's headline figures from summary.json: accuracy and the
unparsed rate per variant, agreement and Cohen's kappa per compared pair. They are the report's figures,
over items (an item's answers read together), not means of the samples' scores over answers.

The format is written from Inspect's own models (inspect_ai/log/_log.py and the types it uses), so
evalrun does not import inspect_ai; tests/test_export.py reads every log back with inspect_ai's
`read_eval_log`, which validates it against those models.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from ..design.axes import registered
from ..errors import EvalrunError
from ..record import ModelRecord, RunRecord
from ..reporting import READINGS, RESULTS
from ..results import PRIMARY, read_table

LOG_VERSION = 2  # Inspect's LOG_SCHEMA_VERSION this writer follows
# results.parquet's columns a sample is built from, beside the axes' (a run may predate an axis: those are optional)
NEEDED = ("job_id", "item_id", "item_text", "model", "model_string", "response", "finish_reason", "label",
          "extraction", "gold", "error_class", "error_message", "latency_s", "prompt_tokens", "completion_tokens",
          "messages")
# evalrun's finish reasons (the provider's, through litellm) as Inspect's StopReason; anything else is "unknown"
STOP_REASONS = {"stop": "stop", "length": "max_tokens", "content_filter": "content_filter",
                "tool_calls": "tool_calls", "function_call": "tool_calls"}
# the run's parameters Inspect's GenerateConfig has under the same name and meaning
GENERATE_CONFIG = ("temperature", "top_p", "top_k", "max_tokens", "seed", "frequency_penalty", "presence_penalty",
                   "logprobs", "top_logprobs")
CORRECT, INCORRECT, NO_ANSWER = "C", "I", "N"  # Inspect's values for a correct, incorrect and missing answer


def write(run_dir: Path, out: Path | None) -> list[Path]:
    """Write one Inspect log per model of the run in `run_dir` to the folder `out` (default RUN_DIR/inspect);
    returns the files written. A folder that is not a run's raises one EvalrunError naming the file."""
    summary_path = run_dir / "summary.json"
    record = RunRecord.load(summary_path)
    summary = json.loads(summary_path.read_text(encoding="utf-8"))  # RunRecord.load has read it once already
    statistics = summary.get("statistics") if isinstance(summary.get("statistics"), dict) else {}
    axis_columns = [c for axis in registered() for c in axis.columns]
    results = read_table(run_dir / RESULTS, list(NEEDED), axis_columns)
    readings = _readings(run_dir / READINGS)
    folder = out if out is not None else run_dir / "inspect"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EvalrunError(f"{folder}: cannot write the logs there: {exc.strerror}") from None
    written: list[Path] = []
    models = {m.name: m for m in record.models}
    for (name,), rows in results.group_by("model", maintain_order=True):
        model = models.get(str(name)) or ModelRecord(str(name), str(rows["model_string"][0]))
        log = eval_log(record, model, rows, readings, statistics, axis_columns)
        path = folder / _file_name(log["eval"]["created"], record.name, model.name, log["eval"]["task_id"])
        if path in written:  # two model names alike but for punctuation: the id tells them apart
            path = path.with_stem(f"{path.stem}-{log['eval']['eval_id'][:8]}")
        # a NaN is written as NaN, which Inspect's reader (pydantic) accepts as its own writer does
        try:
            path.write_text(json.dumps(log, ensure_ascii=False), encoding="utf-8")
        except OSError as exc:
            raise EvalrunError(f"{path}: cannot write it: {exc.strerror}") from None
        written.append(path)
    return written


def eval_log(record: RunRecord, model: ModelRecord, rows: pl.DataFrame, readings: Mapping[str, dict[str, Any]],
             statistics: Mapping[str, Any], axis_columns: list[str]) -> dict[str, Any]:
    """The Inspect log of one model's jobs (`rows`), as JSON-ready values in EvalLog's field order."""
    created = _utc(record.started)
    samples = [_sample(row, readings.get(row["job_id"], {}), axis_columns) for row in rows.iter_rows(named=True)]
    usage = {"input_tokens": int(rows["prompt_tokens"].fill_null(0).sum()),
             "output_tokens": int(rows["completion_tokens"].fill_null(0).sum())}
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    return {
        "version": LOG_VERSION,
        "status": "success",
        "eval": {
            "eval_id": _short_id(record.run_id, model.name),
            "run_id": record.run_id,
            "created": created.isoformat(),
            "task": record.name,
            "task_id": record.spec_sha256[:22],
            "task_version": 0,
            "task_file": record.spec_path,
            "task_description": record.description,
            "dataset": {"name": record.name, "location": record.dataset_source, "samples": len(samples),
                        "sample_ids": [s["id"] for s in samples], "shuffled": False},
            "model": model.model,
            "model_generate_config": {k: record.params[k] for k in GENERATE_CONFIG if k in record.params},
            "model_base_url": model.api_base,
            "config": {"epochs": 1},
            "packages": {"evalrun": record.versions.get("evalrun", "")},
            "metadata": {"evalrun": {"model_name": model.name, "spec_sha256": record.spec_sha256,
                                     "dataset_sha256": record.dataset_sha256, "labels": record.labels,
                                     "variants": record.variants, "samples": record.samples,
                                     "params": record.params, "seed": record.seed, "versions": record.versions}},
        },
        "results": {
            "total_samples": len(samples),
            "completed_samples": sum(s["error"] is None for s in samples),
            "scores": _scores(model.name, samples, statistics, record.has_gold),
        },
        "stats": {
            "started_at": created.isoformat(),
            "completed_at": (created + timedelta(seconds=record.duration_s)).isoformat(),
            "model_usage": {model.model: usage},
        },
        "samples": samples,
    }


def _sample(row: Mapping[str, Any], readers: dict[str, Any], axis_columns: list[str]) -> dict[str, Any]:
    messages = json.loads(row["messages"]) if row["messages"] else []
    sent = [{"role": m["role"], "content": m["content"], "source": "input"} for m in messages]
    response = row["response"] or ""
    answer = {"role": "assistant", "content": response, "source": "generate", "model": row["model_string"]}
    usage = {"input_tokens": row["prompt_tokens"] or 0, "output_tokens": row["completion_tokens"] or 0}
    usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    scores: dict[str, Any] = {}
    if row["label"] is not None:
        scores["label"] = {"value": row["label"], "answer": row["label"], "explanation": row["extraction"]}
    if row["gold"] is not None:
        value = NO_ANSWER if row["label"] is None else CORRECT if row["label"] == row["gold"] else INCORRECT
        scores["correct"] = {"value": value, "answer": row["label"], "explanation": row["extraction"]}
    error = None
    if row["error_class"] is not None:
        text = f"{row['error_class']}: {row['error_message']}"
        error = {"message": text, "traceback": text, "traceback_ansi": text}
    return {
        "id": row["job_id"],
        "epoch": 1,  # evalrun's repeated samples are jobs of their own, with their own ids
        "input": sent,
        "target": row["gold"] or "",
        "messages": [*sent, *([answer] if row["response"] is not None else [])],
        "output": {
            "model": row["model_string"],
            "choices": [{"message": answer, "stop_reason": STOP_REASONS.get(row["finish_reason"], "unknown")}]
            if row["response"] is not None else [],
            "completion": response,
            "usage": usage,
            "time": row["latency_s"],
            "error": None if error is None else error["message"],
        },
        "scores": scores,
        "metadata": {
            **{c: row[c] for c in axis_columns if c in row},
            "item_text": row["item_text"],
            "readers": readers or {PRIMARY: {"label": row["label"], "reason": row["extraction"]}},
        },
        "model_usage": {row["model_string"]: usage},
        "total_time": row["latency_s"],
        "error": error,
    }


def _scores(model: str, samples: list[dict[str, Any]], statistics: Mapping[str, Any],
            has_gold: bool) -> list[dict[str, Any]]:
    """The log's EvalScores: per scorer, the run's headline figures for this model (each with its interval in
    the metric's metadata), and how many samples it scored."""
    label: dict[str, dict[str, Any]] = {}
    correct: dict[str, dict[str, Any]] = {}
    for v in _of(statistics.get("variants"), model):
        _metric(correct, f"accuracy/{v.get('variant')}", v.get("accuracy"))
        _metric(label, f"unparsed_rate/{v.get('variant')}", v.get("unparsed_rate"))
    for p in _of(statistics.get("pairs"), model):
        pair = f"{p.get('a')}~{p.get('b')}"
        _metric(label, f"agreement/{pair}", p.get("agreement"))
        kappa = p.get("cohen_kappa")
        if isinstance(kappa, dict):
            _metric(label, f"cohen_kappa/{pair}", {**kappa, "estimate": kappa.get("kappa")})
    found = [("label", label)] + ([("correct", correct)] if has_gold else [])
    return [{"name": name, "scorer": name, "scored_samples": sum(name in s["scores"] for s in samples),
             "unscored_samples": sum(name not in s["scores"] for s in samples), "metrics": metrics}
            for name, metrics in found]


def _of(entries: object, model: str) -> Iterable[Mapping[str, Any]]:
    """summary.json's statistics entries of one model; nothing if the list is missing or malformed."""
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, dict) and e.get("model") == model]


def _metric(metrics: dict[str, dict[str, Any]], name: str, figure: object) -> None:
    """An EvalMetric from a summary figure with an estimate; one without a finite estimate is left out."""
    if not isinstance(figure, dict):
        return
    value = figure.get("estimate")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return
    metrics[name] = {"name": name, "value": value,
                     "metadata": {k: figure[k] for k in ("n", "ci_low", "ci_high") if k in figure}}


def _readings(path: Path) -> dict[str, dict[str, Any]]:
    """job_id -> reader -> its label and reason, for the answers read by more than one reader (none: {})."""
    table = read_table(path, ["job_id", "reader", "label", "reason"], must_exist=False)
    found: dict[str, dict[str, Any]] = {}
    for row in table.iter_rows(named=True):
        found.setdefault(row["job_id"], {})[row["reader"]] = {"label": row["label"], "reason": row["reason"]}
    return found


def _utc(started: str) -> datetime:
    """summary.json's start time (written as 2026-11-23T20:53:00+0000) in UTC."""
    try:
        return datetime.strptime(started, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)
    except ValueError:
        raise EvalrunError(f"summary.json: run.started {started!r} is not a time like 2026-11-23T20:53:00+0000") \
            from None


def _short_id(*parts: str) -> str:
    """A stable 22-character id (the length of Inspect's own), so exporting twice gives the same log."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:22]


def _file_name(created: str, task: str, model: str, task_id: str) -> str:
    """Inspect's `{timestamp}_{task}_{model}_{task id}.json`: `inspect view` lists a .json log only under a name
    that starts with the timestamp, and reads the task and its id from the parts between underscores, so no
    part may hold one."""
    def part(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "x"

    return f"{part(created.replace(':', '-'))}_{part(task)}_{part(model)}_{part(task_id)}.json"

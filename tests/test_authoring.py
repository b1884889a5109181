"""`evalrun new` writes a spec that validates and runs; `evalrun render` shows the exact requests, asking nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import evalrun
from evalrun.cli import main

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer
except ImportError:
    from loopback_server import LoopbackServer


def test_new_writes_a_spec_that_validates_and_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "evalspec.schema.json").write_text("{}", encoding="utf-8")
    assert main(["new", "taste"]) == 0
    spec = tmp_path / "evals" / "taste.yaml"
    assert capsys.readouterr().out.split() == ["evals/taste.yaml", "evals/data/taste.jsonl"]
    assert spec.read_text(encoding="utf-8").startswith(
        "# yaml-language-server: $schema=../schemas/evalspec.schema.json\n")
    assert evalrun.check(spec) == []
    assert main(["new", "taste"]) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err
    assert main(["new", "no/slash"]) == 2

    monkeypatch.setenv("NEW_KEY", "not-a-key")
    with LoopbackServer(default_reply=lambda body: "a" if "one letter" in json.dumps(body) else "Fun. Choice: b") as s:
        text = spec.read_text(encoding="utf-8")
        spec.write_text(text + f"models:\n  - {{model: openai/x, name: x, api_base: '{s.base_url}', "
                        "api_key_env: NEW_KEY}\n", encoding="utf-8")
        run = evalrun.run(spec, out=tmp_path / "reports", retries=0)
    totals = run.summary["totals"]
    assert (totals["jobs"], totals["answered"]) == (12, 12)
    direct, revealed = run.summary["statistics"]["variants"]
    assert direct["labels"]["a"] == 6 and revealed["labels"]["b"] == 6


def test_render_prints_the_exact_requests_without_litellm(tmp_path: Path) -> None:
    spec = Path(__file__).resolve().parents[1] / "evals" / "gender.yaml"
    code = ("import sys, json\nfrom evalrun.cli import main\n"
            f"main(['render', {str(spec)!r}, '--item', 't02', '--variant', 'direct', '--json'])\n"
            "print(json.dumps({'litellm': 'litellm' in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    *requests, tail = [json.loads(line) for line in out.splitlines()]
    assert tail == {"litellm": False}
    # t02's direct question: 2 paraphrases x 2 option orders
    assert [r["job_id"] for r in requests] == [f"t02/direct/p{p}/{o}/evalrun/smollm2/0" for p in (0, 1)
                                               for o in ("female>male", "male>female")]
    first = requests[0]
    assert first["params"] == {"max_tokens": 6, "temperature": 0.7, "seed": 7}
    (message,) = first["messages"]
    assert message["role"] == "user" and message["content"].endswith("Answer with one word: female or male.")
    assert requests[1]["messages"][0]["content"].endswith("Answer with one word: male or female.")


def test_render_names_a_missing_item_or_variant(capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(Path(__file__).resolve().parents[1] / "evals" / "gender.yaml")
    assert main(["render", spec, "--item", "nope"]) == 2
    assert main(["render", spec, "--variant", "directt"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("evalrun: error: --item: no item with id 'nope'")
    assert err[1] == "evalrun: error: --variant: no variant named 'directt' (variants: direct, story)"

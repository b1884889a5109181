"""Shared fixtures, so a test says only what it varies.

- Every test gets its own evalrun home, litellm's bundled price list, and the test API key set
  (`api_key`: the variable a spec's `api_key_env` names, and the secret that must never be shown).
- `write_spec(folder, ...)` writes a spec YAML and its dataset into a folder: a small two-variant,
  two-label spec by default; a test passes the parts it varies (variants, labels, items, models,
  extract, any other top-level key).
- `quiet` is an observer of a runner (sendpath.Observer) that shows nothing, and `one_stage(runner,
  streams, models)` runs one stage of a runner to its end and closes it, for tests that build a
  `Runner` themselves.
- `loopback(...)` starts a scripted OpenAI-compatible server (tests/loopback_server.py) that stops
  when the test ends; rules script replies and faults, `on_request` any other behaviour. (A
  module-scoped fixture, which cannot use a test's fixture, uses ``with LoopbackServer(...)``.)
- `example` is a copy of reports/example (a finished run) the test may change; `toned` registers an axis
  `tone` for the test and gives that copy's results a tone column (formal and casual by turns).
- `chromium` is a headless Chromium (Debian's package, driven by playwright) for the test, or the test is
  skipped saying which of the two is missing; `watch(page)` records what a page of it logs as an error
  and every address it asks for.

A test needing these names for type hints imports them under ``if TYPE_CHECKING:`` from conftest;
at run time it gets them only as fixtures.

Tests marked `slow` (registered in pyproject.toml) take seconds each; `pytest -m "not slow"` skips them.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    import polars as pl
    from playwright.sync_api import Browser, Page

    from evalrun.jobs import Job
    from evalrun.runner import Runner
    from evalrun.spec import ModelConfig

try:  # tests/ may or may not be a package, depending on how pytest was set up
    from tests.loopback_server import LoopbackServer, Rule
except ImportError:
    from loopback_server import LoopbackServer, Rule


@dataclass(frozen=True)
class ApiKey:
    """The API key every test model entry names: `env` is set to `secret` for every test."""

    env: str = "EVALRUN_TEST_KEY"
    # distinctive, so a test can assert it never reaches a report, a log line or an error message
    secret: str = "sk-evalrun-test-Zq7NEVERSHOWNSECRET42"


API_KEY = ApiKey()


class Quiet:
    """A runner's observer that shows nothing: what a test builds a Runner with when progress is not its subject."""

    def finished(self, outcome: object) -> None:
        pass

    def retrying(self, model: str, error: object) -> None:
        pass

    def gave_up(self, model: str, message: str) -> None:
        pass


@pytest.fixture
def quiet() -> Quiet:
    return Quiet()


OneStage = Callable[["Runner", Mapping[str, Iterator["Job"]], Sequence["ModelConfig"]], None]


@pytest.fixture
def one_stage() -> OneStage:
    def run(ran: Runner, streams: Mapping[str, Iterator[Job]], models: Sequence[ModelConfig]) -> None:
        async def stage() -> None:
            try:
                await ran.stage(dict(streams), list(models))
            finally:
                await ran.close()

        asyncio.run(stage())

    return run


@pytest.fixture(autouse=True)
def evalrun_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh EVALRUN_HOME per test, so no test reads or writes ~/.evalrun (or another test's store)."""
    home = tmp_path_factory.mktemp("evalrun-home")
    monkeypatch.setenv("EVALRUN_HOME", str(home))
    # litellm would otherwise fetch its model cost map over the network on import
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.setenv(API_KEY.env, API_KEY.secret)
    yield home


EXAMPLE = Path(__file__).resolve().parent.parent / "reports" / "example"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the example run (reports/example), for a test that changes it."""
    folder = tmp_path / "run"
    shutil.copytree(EXAMPLE, folder)
    return folder


@pytest.fixture
def toned(example: Path) -> Iterator[pl.DataFrame]:
    """An axis `tone` registered (optional, before the model) for the test, as one added after a run would be,
    and the example copy's results.parquet rewritten with a tone column, formal and casual by turns: the
    rewritten results."""
    import polars as pl

    from evalrun.design.axes import Axis, register, unregister

    register(Axis("tone", {"tone": pl.String}, optional=True), before="model")
    try:
        results = pl.read_parquet(example / "results.parquet")
        toned = results.with_columns(tone=pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("formal"))
                                     .otherwise(pl.lit("casual")))
        toned.write_parquet(example / "results.parquet")
        yield toned
    finally:
        unregister("tone")


@pytest.fixture(scope="session")
def api_key() -> ApiKey:
    """The test API key's variable name and secret (set for every test by `evalrun_home`)."""
    return API_KEY


# the default readers: a choice between the labels by the words the loopback server's replies use
CHOICE = {"type": "choice", "choices": {"a": ["alpha"], "b": ["beta"]}}


class SpecWriter:
    """Writes `spec.yaml` (and `items.jsonl` when the dataset is a list of items) into a folder.

    Call it as ``write_spec(folder, variants=..., items=..., models=[write_spec.model(base)])``.
    Each part has a default, so a test names only what it varies:

    - ``items``: dataset rows; a string is an item id (``"i01"`` -> ``{"id": "i01"}``). Written to
      ``items.jsonl`` beside the spec, or inline (``dataset: {items: [...]}``) with ``inline=True``.
    - ``dataset``: extra keys of ``dataset:`` (``gold``, ``id``), or a whole mapping with its own ``path`` or ``hf``.
    - ``variants``: name -> prompt, or name -> a full variant mapping; a bare prompt gets ``extract``.
    - ``labels``, ``extract`` (the reader a bare prompt gets), ``models`` (model strings, or mappings
      such as ``model()`` makes).
    - ``extra``: any other top-level key (``params``, ``prompts``, ``budget``, ...), written after ``models``.
    - ``text``: a YAML snippet appended verbatim, for what a mapping cannot say (e.g. a broken spec).

    The YAML is written block style by PyYAML, so a test that checks where a problem is located
    finds the place with ``where()`` rather than counting lines by hand.
    """

    def __call__(self, folder: Path, *, name: str = "t", labels: Sequence[str] = ("a", "b"),
                 variants: Mapping[str, str | Mapping[str, Any]] | None = None,
                 extract: Mapping[str, Any] = CHOICE,
                 items: Sequence[str | Mapping[str, Any]] = ("i1", "i2"), inline: bool = False,
                 dataset: Mapping[str, Any] | None = None,
                 models: Sequence[str | Mapping[str, Any]] = (), filename: str = "spec.yaml",
                 text: str = "", **extra: Any) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        rows = [{"id": row} if isinstance(row, str) else dict(row) for row in items]
        data: dict[str, Any] = dict(dataset or {})
        if "path" not in data and "hf" not in data:  # a dataset of its own: `path:` or `hf:`
            if inline:
                data = {"items": rows, **data}
            else:
                (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
                data = {"path": "items.jsonl", **data}
        if variants is None:
            variants = {"one": "ONE <{{ id }}>", "two": "TWO <{{ id }}>"}
        spec: dict[str, Any] = {
            "name": name,
            "dataset": data,
            "labels": list(labels),
            "variants": {v: {"prompt": p, "extract": dict(extract)} if isinstance(p, str) else dict(p)
                         for v, p in variants.items()},
        }
        if models:
            spec["models"] = [m if isinstance(m, str) else dict(m) for m in models]
        spec.update(extra)
        path = folder / filename
        path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=1000) + text,
                        encoding="utf-8")
        return path

    @staticmethod
    def where(spec: Path, text: str) -> str:
        """`line:col` of the first occurrence of `text` in a spec: where its problem should be located."""
        for number, line in enumerate(spec.read_text(encoding="utf-8").splitlines(), 1):
            if text in line:
                return f"{number}:{line.index(text) + 1}"
        raise AssertionError(f"{text!r} is not in {spec}")

    @staticmethod
    def model(base: str, name: str = "loop", model: str = "openai/loop", **fields: Any) -> dict[str, Any]:
        """A model entry for a server at `base` that sends the test API key; `fields` adds or overrides keys."""
        return {"model": model, "name": name, "api_base": base, "api_key_env": API_KEY.env, **fields}


@pytest.fixture(scope="session")
def write_spec() -> SpecWriter:
    """`write_spec(folder, ...)`: see SpecWriter. Session-scoped so module fixtures can write specs too."""
    return SpecWriter()


@pytest.fixture
def loopback() -> Iterator[Callable[..., LoopbackServer]]:
    """`loopback(rules, default_reply=..., latency=..., on_request=...)`: a started LoopbackServer.

    Takes LoopbackServer's arguments; every server it started is stopped when the test ends.
    ``on_request(body)`` runs on each chat request as it arrives, before the rules apply: the hook
    for scripted behaviour the rules cannot express (the server also keeps each request's arrival
    time, ``arrivals``, and the most requests it held at once per model, ``peak_in_flight``).
    """
    started: list[LoopbackServer] = []

    def start(rules: Sequence[Rule] = (), **kwargs: Any) -> LoopbackServer:
        server = LoopbackServer(rules, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# Chromium's flags here: headless, and no connection of its own (updates, components, sync, QUIC);
# without the networking ones it waits on connections this machine refuses and the launch hangs
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


@pytest.fixture
def chromium() -> Iterator[Browser]:
    """A headless Chromium for the test, closed when it ends: Debian's `chromium` (what .ci/run installs),
    driven by playwright (the test extra), each launch with a fresh profile of playwright's. The test is
    skipped, saying which, when either is missing; a Chromium that is there but does not start fails it."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium; .ci/run does it as root)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=path, args=list(CHROMIUM_FLAGS))
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A page, with what it logged as an error (console errors, uncaught exceptions) and every address it
    asked for, in order (each request the page made: documents, fetches, images)."""

    page: Page
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def watch() -> Callable[[Page], Watched]:
    """`watch(page)` starts recording the page's errors and requests: call it before the page loads anything."""
    def start(page: Page) -> Watched:
        watched = Watched(page)
        page.on("console", lambda message: watched.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
        page.on("request", lambda request: watched.requests.append(request.url))
        return watched

    return start

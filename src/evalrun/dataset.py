"""The dataset: items with an id, an optional gold label, and template variables.

CSV and JSONL are read line by line with the standard library, so every problem
can name its line (and, for JSON syntax, its column); CSV cells are kept as text
so that ids like "007" survive, and an empty cell is a missing value. Parquet is
read with polars. Every problem found is reported at once: problems with the file
as a whole point at the spec's `dataset:` entry; problems with one item point at
its line in the data file (or at the item itself when items are inline).

A relative `dataset.path` is read beside the spec file as it was named: for a
symlinked spec, beside the link, not its target (like `cd` in a shell, and so one
spec linked into several folders can read each folder's data); a missing file's
message then gives the absolute path tried.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .errors import DatasetError, Problem
from .errors import short as _short
from .spec import HubDataset, Spec

MAX_PROBLEMS_PER_KIND = 5  # a broken 10,000-row file should not print 10,000 lines
# Characters in one CSV cell. The csv module's default, 131,072, refuses ordinary long documents; without any
# limit, one unclosed quote makes the rest of a file a single cell, however large.
MAX_CELL_CHARS = 10_000_000
_LINE_END = re.compile(r"\r\n|\r|\n")  # not str.splitlines(), which also splits at characters JSON strings may hold
# Abbreviations of the C0 control characters, U+0000 to U+001F, and DEL, for naming a stray byte.
_CONTROL_NAMES = ("NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR", "SO",
                  "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS",
                  "RS", "US")
FORMATS = {".csv": "CSV", ".jsonl": "JSONL", ".ndjson": "JSONL", ".parquet": "Parquet"}


@dataclass(frozen=True)
class Dataset:
    items: list[dict[str, object]]
    columns: list[str]
    id_column: str
    gold_column: str | None
    source: str
    sha256: str

    def item_id(self, item: dict[str, object]) -> str:
        return str(item[self.id_column])

    def gold(self, item: dict[str, object]) -> str | None:
        if self.gold_column is None:
            return None
        value = item.get(self.gold_column)
        return None if value is None else str(value)


@dataclass
class _Read:
    items: list[dict[str, object]]
    columns: list[str]
    lines: list[int] | None  # the line each item starts on, for formats with lines
    problems: list[Problem]


def _decode(raw: bytes, file: str) -> tuple[str | None, list[Problem]]:
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [Problem(file, line, col, f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                              "save it as UTF-8, or check that it really is a text file")]


def _read_csv(raw: bytes, file: str) -> _Read:
    text, problems = _decode(raw, file)
    out = _Read([], [], [], problems)
    if text is None:
        return out
    csv.field_size_limit(MAX_CELL_CHARS)  # process-wide, and evalrun reads no other CSV
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    line = 1
    try:
        for row in reader:
            start, line = line, reader.line_num + 1
            if not row or all(not cell.strip() for cell in row):
                continue  # blank line
            if header is None:
                header = [cell.strip() for cell in row]
                for i, name in enumerate(header):
                    if not name:
                        out.problems.append(Problem(file, start, 1, f"column {i + 1} of the header has no name"))
                    elif header.index(name) != i:
                        out.problems.append(Problem(file, start, 1, f"column '{_short(name)}' appears twice in the "
                                                    "header"))
                out.columns = list(dict.fromkeys(header))
                continue
            if len(row) != len(header):
                out.problems.append(Problem(file, start, 1, f"this row has {len(row)} fields, the header has "
                                            f"{len(header)}", "quote fields that contain commas"))
                continue
            out.items.append({name: (cell if cell != "" else None) for name, cell in zip(header, row, strict=True)})
            out.lines.append(start)  # type: ignore[union-attr]
    except csv.Error as exc:
        if str(exc).startswith("field larger than field limit"):  # csv has no finer exception to catch
            # `line` is where the row began, and where a quote left open would be
            out.problems.append(Problem(file, line, 1, f"a cell in this row is over {MAX_CELL_CHARS:,} characters, "
                                        "the limit for a CSV cell", "an opening quote without its closing quote "
                                        "makes the rest of the file one cell; long texts beyond the limit cannot "
                                        "fit a prompt anyway"))
        else:
            out.problems.append(Problem(file, reader.line_num or 1, 1, f"not valid CSV: {_short(exc, 80)}"))
    return out


def _json_problem(exc: json.JSONDecodeError) -> tuple[str, str]:
    """Message and hint for a line that is not JSON, naming a control character if one is to blame."""
    found = exc.doc[exc.pos:exc.pos + 1]
    code = ord(found) if found else -1
    if 0 <= code < 0x20 or code == 0x7F:  # these print as nothing, or garble the terminal
        name = f"U+{code:04X} ({_CONTROL_NAMES[code] if code < 0x20 else 'DEL'})"
        if exc.msg.startswith("Invalid control character"):
            return (f"not valid JSON: a raw control character, {name}, inside a string",
                    f"write it escaped, as \\u{code:04x}, or remove it")
        return f"not valid JSON: a raw control character, {name}, where JSON allows none", "remove it"
    # json ends some messages with "at" and leaves the position to its own formatting; ours is in the location
    message = exc.msg[:-3] + " here" if exc.msg.endswith(" at") else exc.msg
    return f"not valid JSON: {message}", "each line of a JSONL file is one JSON object"


def _read_jsonl(raw: bytes, file: str) -> _Read:
    text, problems = _decode(raw, file)
    out = _Read([], [], [], problems)
    if text is None:
        return out
    columns: dict[str, None] = {}
    for number, line in enumerate(_LINE_END.split(text), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            out.problems.append(Problem(file, number, exc.colno, *_json_problem(exc)))
            continue
        except RecursionError:
            out.problems.append(Problem(file, number, 1, "JSON nested too deeply"))
            continue
        if not isinstance(value, dict):
            kind = {list: "a list", str: "a string", type(None): "null", bool: "a boolean"}.get(type(value), "a number")
            out.problems.append(Problem(file, number, 1, f"each line must be a JSON object, this one is {kind}"))
            continue
        columns.update(dict.fromkeys(value))
        out.items.append(value)
        out.lines.append(number)  # type: ignore[union-attr]
    out.columns = list(columns)
    return out


class _NotParquet(Exception):
    pass


def _read_parquet(path: Path) -> _Read:
    import polars as pl

    with path.open("rb") as f:
        if f.read(4) != b"PAR1":
            raise _NotParquet

    frame = pl.read_parquet(path)
    return _Read(frame.to_dicts(), list(frame.columns), None, [])


def load_dataset(spec: Spec, limit: int | None = None) -> Dataset:
    """Read and check the spec's dataset; raises DatasetError listing every problem."""
    cfg = spec.dataset
    loc = spec.located
    path = cfg.path
    if path is not None:
        file = str(path)
        fmt = FORMATS.get(path.suffix.lower(), "Parquet")
        at_path = ("dataset", "path")
        if not path.exists():
            message, hint = _missing(path, Path(loc.file))
            raise DatasetError([loc.problem(at_path, message, hint=hint)])
        if not path.is_file():
            raise DatasetError([loc.problem(at_path, f"dataset.path: '{file}' is not a file")])
        try:
            raw = path.read_bytes()
            if fmt == "CSV":
                read = _read_csv(raw, file)
            elif fmt == "JSONL":
                read = _read_jsonl(raw, file)
            else:
                read = _read_parquet(path)
        except _NotParquet:
            raise DatasetError([loc.problem(at_path, f"dataset.path: '{file}' is not a Parquet file",
                                            hint="a Parquet file starts with the bytes PAR1")]) from None
        except OSError as exc:
            raise DatasetError([loc.problem(at_path, f"dataset.path: cannot read '{file}': "
                                            f"{exc.strerror or exc}")]) from None
        except Exception as exc:  # polars raises many kinds of errors for a broken file
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise DatasetError([loc.problem(at_path, f"dataset.path: cannot read '{file}' as {fmt}: "
                                            f"{_short(first, 100)}")]) from None
        if read.problems:
            raise DatasetError(_limited(read.problems, loc.problem(at_path, "")))
        items, columns, lines, source = read.items, read.columns, read.lines, file
    elif cfg.hf is not None:
        items, columns, source = _read_hub(cfg.hf, spec)
        lines, file = None, cfg.hf.name
    else:
        items = [dict(item) for item in cfg.items or []]
        columns = list(dict.fromkeys(key for item in items for key in item))
        lines, source, file = None, "inline", loc.file
    if path is None:  # no file's bytes: the rows identify the data (a hub dataset's, whatever revision or cache)
        raw = json.dumps(items, sort_keys=True, default=str).encode()
    # where a problem with the dataset as a whole points
    at_source = ("dataset", "path") if path is not None else ("dataset", "hf") if cfg.hf is not None else \
        ("dataset", "items")

    def where(row: int, column: str | None = None) -> tuple[str, int | None, int | None, str]:
        """File, line, column and a prefix naming the item, for a problem with item `row` (0-based)."""
        if lines is not None:
            return file, lines[row], 1, ""
        if path is not None or cfg.hf is not None:  # Parquet and datasets have no lines
            return (loc.file, *loc.where(at_source), f"row {row + 1}: ")
        item_path = ("dataset", "items", row) + ((column,) if column is not None else ())
        return (loc.file, *loc.where(item_path), f"dataset.items.{row}: ")

    problems: list[Problem] = []
    if not items:
        what = "has no items" if columns else "is empty"
        problems.append(loc.problem(at_source, f"{'.'.join(at_source)}: '{file}' {what}"))
    for column, role in ((cfg.id, "id"), (cfg.gold, "gold")):
        if column is not None and column not in columns and columns:
            close = difflib.get_close_matches(column, columns, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"name the {role} column with `{role}:`"
            written = isinstance(loc.data, dict) and role in (loc.data.get("dataset") or {})
            field = f"dataset.{role}" if written else "dataset"
            shown = "inline items" if path is None and cfg.hf is None else f"'{file}'"
            problems.append(loc.problem(("dataset", role), f"{field}: no {role} column '{_short(column)}' in {shown} "
                                        f"(columns: {', '.join(map(_short, columns)) or 'none'})", hint=hint))
    if problems or not items:
        raise DatasetError(problems)

    found: list[Problem] = []
    first_at: dict[str, int] = {}
    labels = set(spec.labels)
    for row, item in enumerate(items):
        for column in columns:
            item.setdefault(column, None)  # items may omit optional columns
        ident = item.get(cfg.id)
        if ident is None or str(ident).strip() == "":
            f, line, col, prefix = where(row, cfg.id)
            found.append(Problem(f, line, col, f"{prefix}empty id in column '{cfg.id}'"))
            continue
        key = str(ident)
        if key in first_at:
            f, line, col, prefix = where(row, cfg.id)
            first = first_at[key]
            before = f"line {lines[first]}" if lines is not None else f"item {first + 1}"
            found.append(Problem(f, line, col, f"{prefix}duplicate id '{_short(key)}' in column '{cfg.id}'",
                                 f"first used at {before}"))
        else:
            first_at[key] = row
        if cfg.gold is not None:
            gold = item.get(cfg.gold)
            if gold is not None and str(gold) not in labels:
                f, line, col, prefix = where(row, cfg.gold)
                close = difflib.get_close_matches(str(gold), spec.labels, n=1)
                found.append(Problem(f, line, col, f"{prefix}gold label '{_short(gold)}' in column '{cfg.gold}' is "
                                     "not one of the labels",
                                     f"did you mean '{close[0]}'?" if close else "labels: " + ", ".join(spec.labels)))
    if found:
        anchor = loc.problem(at_source, "")
        raise DatasetError(_limited(found, anchor))
    if limit is not None:
        items = items[:limit]
    return Dataset(items=items, columns=list(columns), id_column=cfg.id, gold_column=cfg.gold, source=source,
                   sha256=hashlib.sha256(raw).hexdigest())


def _read_hub(hub: HubDataset, spec: Spec) -> tuple[list[dict[str, object]], list[str], str]:
    """The rows, columns and source (for the run record) of a Hugging Face dataset.

    A hub name goes to `datasets.load_dataset`, which honours HF_HUB_OFFLINE / HF_DATASETS_OFFLINE (and then
    reads only its cache). A local folder that `save_to_disk` wrote (it holds dataset_dict.json or state.json)
    is read with `load_from_disk`; any other folder is one of data files (Parquet, JSONL, CSV), which
    `load_dataset` reads with its packaged builders, without the network."""
    loc = spec.located
    at = ("dataset", "hf")
    try:
        import datasets  # a large dependency tree, needed only here: the `hf` extra
    except ImportError:
        raise DatasetError([loc.problem(at, "dataset.hf: reading a Hugging Face dataset needs the `datasets` "
                                        "library, which is not installed", hint="pip install 'evalrun[hf]'")]) from None
    if hub.folder is not None and not hub.folder.is_dir():
        what = "is not a folder" if hub.folder.exists() else "no such folder"
        raise DatasetError([loc.problem(at, f"dataset.hf: {what} '{hub.folder}'",
                                        hint="a local dataset is a folder, relative to the spec file's folder")])
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # evalrun draws its own progress; restored below
    try:
        if hub.folder is None:
            loaded = datasets.load_dataset(hub.name, hub.config, split=hub.split, revision=hub.revision)
        elif (hub.folder / "dataset_dict.json").is_file() or (hub.folder / "state.json").is_file():
            loaded = datasets.load_from_disk(str(hub.folder))
        else:
            loaded = datasets.load_dataset(str(hub.folder), split=hub.split)
    except Exception as exc:  # datasets raises many kinds: not found, offline and not cached, a broken file
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        if hub.split is not None and first.startswith("Unknown split"):  # load_dataset's only sign of it
            raise DatasetError([loc.problem(("dataset", "split"), f"dataset.split: no split '{_short(hub.split)}' "
                                            f"in '{hub.name}': {_short(first, 100)}")]) from None
        hint = ("offline (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set), only a dataset already in the cache can "
                "be read") if datasets.config.HF_HUB_OFFLINE else None
        raise DatasetError([loc.problem(at, f"dataset.hf: cannot read '{hub.name}': {_short(first, 120)}",
                                        hint=hint)]) from None
    finally:
        if bars:
            datasets.enable_progress_bars()
    if isinstance(loaded, datasets.DatasetDict):
        splits = ", ".join(loaded)
        if hub.split is None:
            raise DatasetError([loc.problem(at, f"dataset.hf: '{hub.name}' has splits ({splits}): choose one",
                                            hint="add `split:` to `dataset:`")])
        if hub.split not in loaded:
            raise DatasetError([loc.problem(("dataset", "split"), f"dataset.split: no split '{_short(hub.split)}' "
                                            f"in '{hub.name}' (splits: {splits})")])
        loaded = loaded[hub.split]
    elif hub.folder is not None and hub.split is not None and hub.split != loaded.split:
        # a folder Dataset.save_to_disk wrote holds one dataset; a split named for it would say what it is not
        raise DatasetError([loc.problem(("dataset", "split"), f"dataset.split: '{hub.name}' holds one dataset "
                                        "without splits", hint="leave out `split:`")])
    named = hub.name + (f"@{hub.revision}" if hub.revision else "")
    details = ", ".join(f"{k} {v}" for k, v in (("config", hub.config), ("split", hub.split)) if v)
    return loaded.to_list(), list(loaded.column_names), f"hf:{named}" + (f" ({details})" if details else "")


def _missing(path: Path, spec_file: Path) -> tuple[str, str | None]:
    """Message and hint for a dataset path that leads to no file."""
    if path.is_symlink():  # exists() follows links: this one points nowhere
        return f"dataset.path: '{path}' is a link to '{path.resolve()}', which does not exist", None
    target = spec_file.resolve()
    if path.is_absolute() or spec_file.parent.resolve() == target.parent:
        # the path shown, relative to the working folder, is exactly the path tried
        return f"dataset.path: no such file '{path}'", "the path is relative to the spec file's folder"
    hint = (f"a spec's paths are relative to the folder of the spec as named, here the link {spec_file}, "
            f"not its target {target}")
    if (target.parent / os.path.relpath(path, spec_file.parent)).exists():
        hint += "; the file is beside the target: link it too, or give an absolute path"
    return f"dataset.path: no such file '{path.absolute()}'", hint


def _limited(problems: list[Problem], anchor: Problem) -> list[Problem]:
    """At most MAX_PROBLEMS_PER_KIND problems of each kind, then one line saying how many were left out."""
    kinds: Counter[str] = Counter()
    out: list[Problem] = []
    for p in problems:
        kind = re.sub(r"'[^']*'|\d+", "_", p.message)
        kinds[kind] += 1
        if kinds[kind] <= MAX_PROBLEMS_PER_KIND:
            out.append(p)
    for kind, n in kinds.items():
        if n > MAX_PROBLEMS_PER_KIND:
            out.append(Problem(anchor.file, anchor.line, anchor.col,
                               f"dataset: {n - MAX_PROBLEMS_PER_KIND} more problems of the kind '{kind}' "
                               "not shown"))
    return out

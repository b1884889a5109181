"""Safe YAML loading that remembers where every value came from.

PyYAML's loaders throw positions away and silently keep the last of duplicate
keys. Here we compose the node tree with the safe loader (no `!!python/...`
tags), then build plain data ourselves so that each value's path maps to its
line and column, duplicate keys are refused, and alias expansion is bounded
(a "billion laughs" document is refused instead of eating the machine).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from .errors import Problem

MAX_BYTES = 1_000_000  # a spec is hand-written; anything bigger is a mistake or an attack
MAX_NODES = 200_000  # bounds alias expansion: values built, counting every repeat

Path = tuple[str | int, ...]


@dataclass
class Located:
    """Plain data from a YAML document, with the position of every value and key."""

    data: object
    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    blocks: set[Path] = field(default_factory=set)  # values written as `|` or `>` block scalars

    def where(self, path: Path, *, key: bool = False) -> tuple[int | None, int | None]:
        """1-based line and column of the value (or its key) at `path`, else of its nearest ancestor."""
        table = self.keys if key else self.values
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if not key and p in self.values:
                return self.values[p]
            p = p[:-1]
            table = self.values
        return self.values.get((), (1, 1))

    def problem(self, path: Path, message: str, *, key: bool = False, hint: str | None = None,
                severity: str = "error") -> Problem:
        line, col = self.where(path, key=key)
        return Problem(self.file, line, col, message, hint, severity)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, located: Located, problems: list[Problem]) -> None:
        self.loader = loader
        self.located = located
        self.problems = problems
        self.count = 0

    def build(self, node: yaml.Node, path: Path) -> object:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig
        mark = node.start_mark
        self.located.values.setdefault(path, (mark.line + 1, mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)  # resolves `<<:` merge keys the way PyYAML does
            out: dict[str, object] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node)
                km = key_node.start_mark
                if not isinstance(key, str):
                    # JSON Schema and templates need string keys; `yes:` or `1:` would be silently odd
                    key = str(key)
                if key in out:
                    self.problems.append(Problem(self.located.file, km.line + 1, km.column + 1,
                                                 f"duplicate key '{key}'",
                                                 "YAML keeps only the last one; remove or rename one"))
                    continue
                self.located.keys[(*path, key)] = (km.line + 1, km.column + 1)
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        if node.style in ("|", ">"):
            self.located.blocks.add(path)
        return self.loader.construct_object(node)


class _TooBig(Exception):
    pass


def load_yaml(text: str, file: str) -> tuple[Located | None, list[Problem]]:
    """Parse one YAML document. Returns the located data (None if unusable) and the problems found."""
    problems: list[Problem] = []
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        return None, [Problem(file, None, None, f"file is larger than {MAX_BYTES:,} bytes; refusing to read it")]
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, [Problem(file, 1, 1, "the file is empty")]
        located = Located(data=None, file=file)
        located.data = _Builder(loader, located, problems).build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        message = exc.problem or str(exc)
        if exc.context and "python" not in (exc.problem or ""):
            message = f"{exc.context}, {message}" if exc.problem else exc.context
        return None, [Problem(file, line, col, f"YAML: {message}")]
    except yaml.YAMLError as exc:
        return None, [Problem(file, None, None, f"YAML: {exc}")]
    except _TooBig:
        return None, [Problem(file, None, None,
                              f"YAML expands to more than {MAX_NODES:,} values (nested aliases?); refusing it")]
    except RecursionError:
        return None, [Problem(file, None, None, "YAML is nested too deeply (a recursive alias?)")]
    finally:
        loader.dispose()
    return located, problems

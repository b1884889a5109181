"""Safe YAML loading that remembers where every value came from.

PyYAML's loaders throw positions away and silently keep the last of duplicate
keys. Here we compose the node tree with the safe loader, then build plain data
ourselves so that:

- each value's path maps to its line and column (and each key's);
- duplicate keys are refused (a key given again by a `<<:` merge is an override, not a duplicate);
- only plain-data tags are accepted: `!!python/...` and custom tags are refused, never constructed;
- keys are always the text written (`yes:` is the key "yes", not True);
- alias and merge expansion is bounded (a "billion laughs" document is refused instead of eating the machine);
- files over MAX_BYTES are refused before they are parsed.

Every problem is collected, not only the first, as long as the document parses at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from .errors import Problem

MAX_BYTES = 1_000_000  # a spec is hand-written; anything bigger is a mistake or an attack
MAX_NODES = 200_000  # bounds alias expansion: values built, counting every repeat

Path = tuple[str | int, ...]

_STD = "tag:yaml.org,2002:"
_MERGE = _STD + "merge"
# Plain data only. `!!set`, `!!omap` and `!!pairs` are read as the mapping or list they are written as.
SAFE_TAGS = frozenset(_STD + t for t in ("str", "int", "float", "bool", "null", "timestamp", "binary",
                                          "map", "seq", "set", "omap", "pairs", "value"))


def short_tag(tag: str) -> str:
    return "!!" + tag[len(_STD):] if tag.startswith(_STD) else tag


@dataclass
class Located:
    """Plain data from a YAML document, with the position of every value and key."""

    data: object
    file: str
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    blocks: set[Path] = field(default_factory=set)  # values written as `|` or `>` block scalars
    # literal `|` block scalars: (line, column) of their first line of text (the line after the `|`)
    block_text: dict[Path, tuple[int, int]] = field(default_factory=dict)
    broken: set[Path] = field(default_factory=set)  # values refused while loading (already reported)

    def where(self, path: Path, *, key: bool = False) -> tuple[int, int]:
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

    def where_in_text(self, path: Path, text_line: int | None) -> tuple[int, int]:
        """Position of line `text_line` (1-based) of the string at `path`, as well as the YAML allows."""
        if path in self.block_text and text_line is not None:
            line, col = self.block_text[path]
            return line + text_line - 1, col
        return self.where(path)  # a flow or folded scalar: its lines are not the file's, so point at its start

    def problem(self, path: Path, message: str, *, key: bool = False, hint: str | None = None,
                severity: str = "error") -> Problem:
        line, col = self.where(path, key=key)
        return Problem(self.file, line, col, message, hint, severity)


class _TooBig(Exception):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path


def _describe_node(node: yaml.Node) -> str:
    return {yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list"}.get(type(node), "a value")


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, text: str, located: Located, problems: list[Problem]) -> None:
        self.loader = loader
        self.lines = text.splitlines()
        self.located = located
        self.problems = problems
        self.count = 0
        self._pairs_memo: dict[int, list[tuple[yaml.Node, yaml.Node]]] = {}

    def _add(self, mark: yaml.Mark, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.located.file, mark.line + 1, mark.column + 1, message, hint))

    def _tick(self, path: Path, amount: int = 1) -> None:
        self.count += amount
        if self.count > MAX_NODES:
            raise _TooBig(path)

    def _tag_ok(self, node: yaml.Node) -> bool:
        if node.tag in SAFE_TAGS or node.tag == _MERGE:
            return True
        self._add(node.start_mark, f"YAML tag '{short_tag(node.tag)}' is not allowed",
                  "a spec is plain data: evalrun reads YAML with a safe loader and never builds objects from tags")
        return False

    def _key(self, node: yaml.Node, path: Path) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            where = "in " + ".".join(map(str, path)) if path else "at the top level"
            self._add(node.start_mark, f"a key {where} is {_describe_node(node)}; keys must be plain text")
            return None
        if not self._tag_ok(node):
            return None
        return str(node.value)  # the text as written: `yes:` is "yes", `1:` is "1"

    def _all_pairs(self, node: yaml.MappingNode, path: Path) -> list[tuple[yaml.Node, yaml.Node]]:
        """The mapping's pairs with `<<:` merges expanded in front (later pairs override earlier ones)."""
        memo = self._pairs_memo.get(id(node))
        if memo is not None:
            return memo
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        own: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                own.append((key_node, value_node))
                continue
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            if not all(isinstance(s, yaml.MappingNode) for s in sources):
                self._add(value_node.start_mark, "YAML: `<<:` must be given a mapping or a list of mappings")
                continue
            for source in reversed(sources):  # the first mapping listed wins, so it comes last
                merged.extend(self._all_pairs(source, path))
                if len(merged) > MAX_NODES:
                    raise _TooBig(path)
        out = merged + own
        self._pairs_memo[id(node)] = out
        return out

    def build(self, node: yaml.Node, path: Path) -> object:
        self._tick(path)
        mark = node.start_mark
        self.located.values.setdefault(path, (mark.line + 1, mark.column + 1))
        if not self._tag_ok(node):
            self.located.broken.add(path)
            return None
        if isinstance(node, yaml.MappingNode):
            return self._build_mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        if node.style in ("|", ">"):
            self.located.blocks.add(path)
        if node.style == "|":  # a literal block keeps its lines, so a template's line N is a line of the file
            self._note_block(node, path)
        try:
            return self.loader.construct_object(node)
        except Exception:  # PyYAML raises ValueError, KeyError, ... for some bad scalars
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            kind = short_tag(node.tag)[2:] if node.tag.startswith(_STD) else node.tag
            self.located.broken.add(path)
            self._add(mark, f"YAML: '{shown}' cannot be read as a {kind}",
                      "put it in quotes to make it text" if node.style is None else None)
            return None

    def _build_mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, object]:
        pairs = self._all_pairs(node, path)
        n_merged = len(pairs) - sum(1 for k, _ in node.value if k.tag != _MERGE)
        chosen: dict[str, tuple[yaml.Node, yaml.Node, int]] = {}
        for i, (key_node, value_node) in enumerate(pairs):
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in chosen and i >= n_merged and chosen[key][2] >= n_merged:
                km = key_node.start_mark
                first = chosen[key][0].start_mark
                self._add(km, f"duplicate key '{key}'",
                          f"first given at line {first.line + 1}; YAML would keep only the last one")
                continue
            chosen[key] = (key_node, value_node, i)
        out: dict[str, object] = {}
        for key, (key_node, value_node, _) in chosen.items():
            km = key_node.start_mark
            self.located.keys[(*path, key)] = (km.line + 1, km.column + 1)
            out[key] = self.build(value_node, (*path, key))
        return out

    def _note_block(self, node: yaml.ScalarNode, path: Path) -> None:
        first = node.start_mark.line + 1  # 0-based index of the line after the `|` header
        indent = None
        for text in self.lines[first:node.end_mark.line + 1]:
            if text.strip():
                indent = len(text) - len(text.lstrip(" "))
                break
        self.located.block_text[path] = (first + 1, (indent or 0) + 1)


def _position(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    line = before.count("\n") + 1
    return line, index - (before.rfind("\n") + 1) + 1


def load_yaml(text: str, file: str) -> tuple[Located | None, list[Problem]]:
    """Parse one YAML document. Returns the located data (None if unusable) and the problems found."""
    problems: list[Problem] = []
    size = len(text.encode("utf-8", "replace"))
    if size > MAX_BYTES:
        return None, [too_big(file, size)]
    located = Located(data=None, file=file)
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # checks for unprintable characters
        node = loader.get_single_node()
        if node is None:
            return None, [Problem(file, 1, 1, "the file is empty",
                                  "a spec needs at least name:, dataset:, labels: and variants:")]
        located.data = _Builder(loader, text, located, problems).build(node, ())
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(file, exc)]
    except yaml.reader.ReaderError as exc:
        line, col = _position(text, exc.position)
        return None, [Problem(file, line, col, f"YAML: character {exc.character!r} is not allowed in a YAML file",
                              "remove it; a spec is UTF-8 text")]
    except yaml.YAMLError as exc:
        return None, [Problem(file, 1, 1, "YAML: " + " ".join(str(exc).split()))]
    except _TooBig as exc:
        line, col = located.where(exc.path[:1], key=True) if exc.path else (1, 1)
        return None, [Problem(file, line, col,
                              f"YAML expands to more than {MAX_NODES:,} values (aliases of aliases?); refusing it",
                              "write the values out, or use fewer nested `*alias` references")]
    except RecursionError:
        return None, [Problem(file, 1, 1, "YAML is nested too deeply (a recursive alias?); refusing it")]
    finally:
        if loader is not None:
            loader.dispose()
    return located, list(dict.fromkeys(problems))  # an aliased node reports its problems once


def too_big(file: str, size: int) -> Problem:
    return Problem(file, 1, 1, f"the file is {size:,} bytes, over the {MAX_BYTES:,}-byte limit for a spec; "
                   "refusing to read it", "a spec is hand-written; put large data in a dataset file")


def _syntax_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = " ".join((exc.problem or exc.context or str(exc)).split())
    hint = None
    if exc.context and exc.problem:
        context = " ".join(exc.context.split())
        cm = exc.context_mark
        if cm is not None and mark is not None and (cm.line, cm.column) != (mark.line, mark.column):
            context += f" that starts at line {cm.line + 1}, column {cm.column + 1}"
        hint = context
    if "\t" in problem or "'\\t'" in problem:
        hint = "YAML indentation must use spaces, not tabs"
    return Problem(file, line, col, f"YAML syntax: {problem}", hint)

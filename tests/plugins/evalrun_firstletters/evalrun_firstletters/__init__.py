"""An evalrun extractor plugin: do the first letters of the answer's lines spell a word (an acrostic)?

    extract: {type: first_letters, word: HELLO, spells: hidden, otherwise: plain}

The first letter of each line that has one is read, in order; the answer is labelled `spells` when they
spell `word` (any case), `otherwise` when they spell something else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from evalrun.extract import ConfigProblem, Extraction, Extractor, ExtractorType, Reading

_FIRST_LETTER = re.compile(r"[^\W\d_]")  # a letter: lines may start with spaces, bullets or digits


class FirstLetters:
    def __init__(self, word: str, spells: str, otherwise: str) -> None:
        self.word = word
        self.spells = spells
        self.otherwise = otherwise

    def extract(self, reading: Reading) -> Extraction:
        letters = "".join(m.group(0) for line in reading.text.splitlines() if (m := _FIRST_LETTER.search(line)))
        if not letters:
            return Extraction(None, "no line has a letter")
        if letters.lower() == self.word.lower():
            return Extraction(self.spells, f"the lines' first letters spell '{letters}'")
        return Extraction(self.otherwise, f"the lines' first letters spell '{letters[:40]}', not '{self.word}'")

    def can_produce(self) -> set[str]:
        return {self.spells, self.otherwise}


def _problems(config: Mapping[str, object], labels: Sequence[str]) -> list[ConfigProblem]:
    return [ConfigProblem(f"'{config[key]}' is not one of the labels", (key,), label=str(config[key]))
            for key in ("spells", "otherwise") if config[key] not in labels]


def _build(config: Mapping[str, object], labels: Sequence[str]) -> Extractor:
    return FirstLetters(str(config["word"]), str(config["spells"]), str(config["otherwise"]))


first_letters = ExtractorType(
    name="first_letters",
    schema={
        "required": ["word", "spells", "otherwise"],
        "properties": {
            "word": {"description": "The word the lines' first letters may spell.", "type": "string",
                     "pattern": "^[A-Za-z]+$"},
            "spells": {"description": "The label when they spell it.", "type": "string"},
            "otherwise": {"description": "The label when they do not.", "type": "string"},
        },
    },
    build=_build,
    problems=_problems,
)

"""The limits on what a suite file and its dataset may hold (docs/suites.md, "Limits").

Each limit turns input that would crash the loader or exhaust memory into a :class:`SuiteError` naming
the file, the line and what to change. The YAML is read by :class:`SuiteLoader`, PyYAML's SafeLoader
with counting added: nesting depth, values reached through aliases (a "billion laughs" document expands
to billions of values from a few lines), the length of integers, and any value a tag cannot build (a bad
``!!timestamp``) reported at its line rather than raised from inside PyYAML.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

#: a suite file larger than this is refused before it is parsed (cases in bulk belong in a dataset)
MAX_SUITE_BYTES = 4 * 1024 * 1024
#: a dataset file larger than this is refused before it is read
MAX_DATASET_BYTES = 100 * 1024 * 1024
#: mappings and lists inside one another, in the suite file or in one dataset row
MAX_DEPTH = 64
#: values that aliases (``*name``) add, counting each alias as a copy of what it names (and a text as one
#: value per 100 characters)
MAX_ALIAS_VALUES = 100_000
#: digits of an integer written in the suite file or a JSONL dataset
MAX_INT_DIGITS = 100
#: repeats x prompts x cases x models
MAX_CELLS = 1_000_000
#: characters of all the prompts filled in with every case (system messages included)
MAX_RENDERED_CHARS = 100_000_000

#: what YAML forbids in a file (C0 controls but tab, LF and CR; DEL; C1 controls but NEL; surrogates; U+FFFE/F)
CONTROL = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_NAMES = {"\x00": "NUL", "\x1b": "ESC", "\x7f": "DEL", "\x08": "backspace", "\x0c": "form feed", "\x0b": "vertical tab"}


def control_char_name(ch: str) -> str:
    """``U+0000 (NUL)``: how a refused character is named in an error."""
    code = f"U+{ord(ch):04X}"
    return f"{code} ({_NAMES[ch]})" if ch in _NAMES else code


def control_problem(text: str) -> tuple[int, str] | None:
    """The line and message for the first character YAML does not allow in ``text``, else None."""
    m = CONTROL.search(text)
    if m is None:
        return None
    line = text.count("\n", 0, m.start()) + 1
    col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
    fix = "remove it" if m.group() == "\x00" else 'remove it, or write it as an escape inside double quotes (e.g. "\\t", "\\x1b")'
    return line, f"the control character {control_char_name(m.group())} at column {col} is not allowed in a YAML file: {fix}."


#: characters refused in a string even when written as an escape: NUL, and lone UTF-16 surrogates
BAD_IN_STRING = re.compile("[\x00\ud800-\udfff]")


def nul_message() -> str:
    return ("holds a NUL character (U+0000) or a lone surrogate (U+D800 to U+DFFF), which cannot be stored or "
            "sent as UTF-8 text: remove it (or the escape that writes it, such as \\0 or \\ud800).")


def int_too_long(digits: int) -> str:
    return (f"a number with {digits} digits is longer than the {MAX_INT_DIGITS} digits allowed: write a "
            "smaller number, or quote it to keep it as text.")


def describe_int(value: int) -> str:
    """``repr`` of an int, or ``a number with about N digits`` where ``repr`` would be too long (or fail)."""
    if value.bit_length() <= 200:
        return repr(value)
    if value.bit_length() < 14_000:  # str() is limited to 4,300 digits
        return f"a number with {len(str(abs(value)))} digits"
    return f"a number with about {int(value.bit_length() * 0.30103) + 1} digits"


class LimitError(ConstructorError):
    """A limit passed or a value a tag cannot build, with a complete message; a MarkedYAMLError so the
    loader reports its line."""


class SuiteLoader(yaml.SafeLoader):
    """SafeLoader that counts depth and alias expansion, bounds integers and wraps constructor crashes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values it stands for, aliases expanded
        self._alias_values = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        is_alias = self.check_event(yaml.AliasEvent)
        mark = self.peek_event().start_mark
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise LimitError(None, None, f"the values are nested more than {MAX_DEPTH} levels deep (mappings and "
                             "lists inside one another): flatten the structure", mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if is_alias:
            size = self._sizes.get(id(node))
            if size is None:
                raise LimitError(None, None, "an alias (*name) is used inside the value it names, which makes "
                                 "an endless value: use the alias outside its anchor's value", mark)
            self._alias_values += size
            if self._alias_values > MAX_ALIAS_VALUES:
                raise LimitError(None, None, f"aliases (*name) expand to more than {MAX_ALIAS_VALUES:,} values "
                                 "(each alias counts as a full copy of what it names, a text as one value per 100 characters): use fewer or smaller "
                                 "aliases, or write the values out", mark)
            return node
        if isinstance(node, SequenceNode):
            size = 1 + sum(self._sizes.get(id(c), 1) for c in node.value)
        elif isinstance(node, MappingNode):
            size = 1 + sum(self._sizes.get(id(k), 1) + self._sizes.get(id(v), 1) for k, v in node.value)
        else:  # a long text counts as one value per 100 characters
            size = 1 + len(node.value) // 100
        self._sizes[id(node)] = size
        return node

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, IndexError):
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            value = node.value if isinstance(node, ScalarNode) else None
            shown = f"{value[:40]!r} " if isinstance(value, str) else ""
            hint = " (e.g. 2024-01-31 or 2024-01-31 12:00:00)" if tag == "!!timestamp" else ""
            raise LimitError(None, None, f"the value {shown}cannot be read as {tag}{hint}: "
                                   f"remove the tag {tag}, or fix the value", node.start_mark) from None

    def construct_yaml_int(self, node: Any) -> int:
        text = str(node.value)
        digits = sum(c.isalnum() for c in text)
        if digits > MAX_INT_DIGITS:
            raise LimitError(None, None, int_too_long(digits).rstrip("."), node.start_mark)
        return super().construct_yaml_int(node)


SuiteLoader.add_constructor("tag:yaml.org,2002:int", SuiteLoader.construct_yaml_int)


def nul_lines(root: yaml.Node | None) -> list[int]:
    """The lines of scalars (keys or values) that hold a NUL (written as an escape: a raw one is refused)."""
    lines: list[int] = []
    seen: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            if BAD_IN_STRING.search(node.value):
                lines.append(node.start_mark.line + 1)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                stack.extend((k, v))
    return sorted(set(lines))


def depth_of(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply lists and dicts nest in ``value`` (a JSON value), counting no further than ``limit + 1``."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, d = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            stack.extend((v, d + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def has_nul(value: Any) -> bool:
    """Whether a NUL character is in any string (key or value) of a JSON value."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if BAD_IN_STRING.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False

"""``${NAME}`` in a suite file: environment variables, replaced inside each parsed value (docs/suites.md).

A variable is replaced in the scalar (a key or a value) the parser read, never in the file's text: a value
with a newline, a ``"`` or ``key: value`` stays one string of the value it was written in, and every line an
error names is the file's own. A plain (unquoted) scalar is typed after the replacement, as if written out:
``timeout: ${T}`` with ``T=30`` is the number 30. ``${NAME:-default}`` uses the default when ``NAME`` is unset
or empty; ``$${`` is a literal ``${``. A ``${...}`` in a comment is not part of any value, so it is never
required.

A variable that holds a credential (its name says so, like ``OPENAI_API_KEY``, or its value looks like a key)
is accepted only inside a model's ``options`` (a judge's too), where the store masks it: anywhere else it
would be sent to every model as prompt text and stored in clear with the results and exports.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from .issues import Loc, Problem, SuiteIssue
from .limits import CONTROL, SuiteLoader, control_char_name

__all__ = ["EnvLoader", "is_credential_variable", "misplaced_credentials"]

_ENV = re.compile(r"\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def is_credential_variable(name: str, value: str = "") -> bool:
    """Whether the environment variable ``name`` (holding ``value``) holds a credential: its name says so
    (``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*_PASSWORD``... as the redaction reads them), or the redaction
    would mask its value (a key's shape, ``user:pass@`` in a URL, a key Tryouts has read)."""
    from ..redact import _ENV_SECRET, _SHAPES, _USERINFO, _known, is_secret_name

    if _ENV_SECRET.search(name) or is_secret_name(name):
        return True
    # by value: a key's shape, a key Tryouts has read, user:pass@ in a URL; not the prose patterns the redaction
    # also masks in messages ("password: ..." in a prompt is text, not a credential)
    return bool(value) and bool(_SHAPES.search(value) or _USERINFO.search(value)
                                or any(secret in value for secret in _known()))


def _missing(name: str) -> str:
    return f"the environment variable {name} is not set: export {name}=... or write ${{{name}:-a default}}."


def _control(name: str, ch: str) -> str:
    return (f"the environment variable {name} holds the control character {control_char_name(ch)}, which a "
            f"suite may not hold: remove it from {name}'s value.")


@dataclass
class _Credential:
    """A scalar that took a credential from a variable: which variable, why it counts, on which line."""

    name: str
    by_name: bool
    line: int
    #: only user:pass@ in a URL (not a key, not by its name): allowed in a model reference too
    userinfo_only: bool = False


@dataclass
class _Found:
    problems: list[SuiteIssue] = field(default_factory=list)
    credentials: dict[int, _Credential] = field(default_factory=dict)  # id(node) -> the first credential in it


class EnvLoader(SuiteLoader):
    """:class:`SuiteLoader` that replaces ``${...}`` inside each scalar as it is composed (the node keeps the
    file's marks; a plain scalar's type is resolved from the replaced text). Unset variables and control
    characters are collected in :attr:`env_problems`; scalars that took a credential in :attr:`credentials`."""

    def __init__(self, stream: str, label: str) -> None:
        # each ${...} is first swapped for a placeholder that is a plain word: in a flow collection ([${P}],
        # {base_url: ${URL}}) a "{" would otherwise start a mapping; the placeholders are replaced by the
        # variables' values in the parsed scalars only, so a value still adds no structure
        nonce = secrets.token_hex(4)
        self._table: list[str] = []

        def hold(m: re.Match) -> str:
            self._table.append(m.group(0))
            return f"__tryouts_env_{nonce}_{len(self._table) - 1}__"

        held = _ENV.sub(hold, stream)
        super().__init__(held)
        self._text = held
        self._held = re.compile(rf"__tryouts_env_{nonce}_(\d+)__")
        self._label = label
        self._found = _Found()

    @property
    def env_problems(self) -> list[SuiteIssue]:
        return self._found.problems

    @property
    def credentials(self) -> dict[int, _Credential]:
        return self._found.credentials

    def compose_scalar_node(self, anchor: Any) -> ScalarNode:
        event = self.get_event()
        value = event.value
        credential = None
        if "__tryouts_env_" in value:
            value, credential = self._expand(value, event.start_mark, event.end_mark)
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolve(ScalarNode, value, event.implicit)
        node = ScalarNode(tag, value, event.start_mark, event.end_mark, style=event.style)
        if credential is not None:
            self._found.credentials[id(node)] = credential
        if anchor is not None:
            self.anchors[anchor] = node
        return node

    def _line(self, held: str, start: Any, end: Any) -> int:
        """The file line of the placeholder ``held`` inside the scalar between the marks (its first line if not
        found): placeholders hold no line break, so lines are the file's own."""
        i = self._text.find(held, start.index, end.index)
        return start.line + 1 + (self._text.count("\n", start.index, i) if i >= 0 else 0)

    def _expand(self, value: str, start: Any, end: Any) -> tuple[str, _Credential | None]:
        credential: list[_Credential] = []

        def repl(h: re.Match) -> str:
            held = h.group(0)
            m = _ENV.fullmatch(self._table[int(h.group(1))])
            if m is None:  # not a placeholder of ours after all
                return held
            escaped, name, default = m.group(1), m.group(2), m.group(3)
            if escaped:
                return m.group(0)[1:]
            raw = os.environ.get(name)
            if raw is None or (raw == "" and default is not None):
                if default is not None:
                    return default
                self._found.problems.append(SuiteIssue(self._label, self._line(held, start, end), "", _missing(name)))
                return m.group(0)
            bad = CONTROL.search(raw)
            if bad:
                self._found.problems.append(SuiteIssue(
                    self._label, self._line(held, start, end), "", _control(name, bad.group())))
                return m.group(0)
            if not credential and is_credential_variable(name, raw):
                from ..redact import _ENV_SECRET, is_secret_name

                by_name = bool(_ENV_SECRET.search(name) or is_secret_name(name))
                credential.append(_Credential(name, by_name, self._line(held, start, end),
                                              userinfo_only=not by_name and _userinfo_only(raw)))
            return raw

        return self._held.sub(repl, value), (credential[0] if credential else None)


def _userinfo_only(value: str) -> bool:
    """Whether ``value`` counts as a credential only for a URL's ``user:pass@`` (no key shape, no known key)."""
    from ..redact import _SHAPES, _USERINFO, _known

    return bool(_USERINFO.search(value)) and not _SHAPES.search(value) and not any(k in value for k in _known())


def _is_reference(loc: Loc) -> bool:
    """Whether ``loc`` is a model reference (``models[i]``, ``models[i].model``, the judge's model): never sent as
    text, and stored with a URL's user-info masked."""
    path = [seg for seg in loc if seg != "<<"]
    if len(path) >= 2 and path[0] == "models" and isinstance(path[1], int):
        return path[2:] in ([], ["model"])
    return path in (["scoring", "judge", "model"], ["scoring", "judge", "model", "model"])


def _in_options(loc: Loc) -> bool:
    """Whether ``loc`` lies inside a model's ``options`` (``models[i].options``, ``scoring.judge.model.options``),
    the one place a credential belongs (merge keys ``<<`` are skipped)."""
    path = [seg for seg in loc if seg != "<<"]
    if len(path) >= 3 and path[0] == "models" and isinstance(path[1], int) and path[2] == "options":
        return True
    return path[:4] == ["scoring", "judge", "model", "options"]


def _message(c: _Credential) -> str:
    why = "holds a credential (its name says so)" if c.by_name else "holds a value that looks like a credential"
    return (f"the environment variable {c.name} {why}: here it would be sent to every model as text and "
            "stored in clear with the results and exports. A key belongs only in a model's options, where "
            f"the store masks it: the option api_key_env set to {c.name} (the provider reads the variable "
            f"itself), or ${{{c.name}}} in the option api_key or in a header; remove ${{{c.name}}} from here.")


def misplaced_credentials(root: Any, credentials: dict[int, _Credential]) -> list[Problem]:
    """One problem per scalar that took a credential from a variable and is reached from outside a model's
    options (through an alias too). Aliases are followed as written: the loader bounds how far they expand."""
    if not credentials or root is None:
        return []
    problems: list[Problem] = []
    reported: set[int] = set()
    stack: list[tuple[Any, Loc]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if isinstance(node, ScalarNode):
            c = credentials.get(id(node))
            if (c is not None and id(node) not in reported and not _in_options(loc)
                    and not (c.userinfo_only and _is_reference(loc))):
                reported.add(id(node))
                problems.append(Problem(loc, _message(c), line=c.line))
        elif isinstance(node, SequenceNode):
            stack.extend((item, (*loc, i)) for i, item in enumerate(node.value))
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                seg = key.value if isinstance(key, ScalarNode) else "?"
                stack.append((key, loc))  # a key is shown at its mapping (its text may be the credential)
                stack.append((value, (*loc, seg)))
    return problems

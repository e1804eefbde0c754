"""Reading a scenario file: `load_scenario(path)` parses the YAML (duplicate keys refused),
validates it against the schema (harness.scenario) and the cross-key checks
(harness.scenario_checks), and raises one `ScenarioError` that names the file and, for every
problem, the key path (`stages[2].hold_s`), its line and what is wrong -- for YAML syntax
errors too."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from harness.scenario import Scenario
from harness.scenario_checks import Problem, semantic_problems, universe_size


class ScenarioError(ValueError):
    """An invalid scenario; the message names the file, key path, line and problem."""

    def __init__(self, file: Path, problems: Sequence[Problem]) -> None:
        self.file = file
        self.problems = list(problems)
        lines = [problem.render(file) for problem in self.problems]
        head = lines[0] if len(lines) == 1 else f"{file}: {len(lines)} problems"
        body = "" if len(lines) == 1 else "\n  " + "\n  ".join(lines)
        super().__init__(head + body)


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping repeats a key (PyYAML would silently keep the last value)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate mapping keys."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            first = seen[key].start_mark.line + 1
            raise DuplicateKeyError(
                problem=f"duplicate key {key!r} (first on line {first})",
                problem_mark=key_node.start_mark,
            )
        seen[key] = key_node
    loader.flatten_mapping(node)
    return {
        loader.construct_object(k, deep=True): loader.construct_object(v, deep=True)
        for k, v in node.value
    }


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _path_at(root: yaml.Node | None, mark: Any) -> str:
    """Key path of the node starting at `mark` in a composed tree (e.g. a duplicate key)."""
    at = (mark.line, mark.column)
    parts: list[int | str] = []
    node = root
    while node is not None:
        pairs: list[tuple[int | str, yaml.Node, yaml.Node]] = []
        if isinstance(node, yaml.MappingNode):
            pairs = [(str(k.value), k, v) for k, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            pairs = [(i, v, v) for i, v in enumerate(node.value)]
        node = None
        for part, first, last in pairs:
            start = (first.start_mark.line, first.start_mark.column)
            if start == at:
                parts.append(part)
                return _render_path(parts)
            if start <= at < (last.end_mark.line, last.end_mark.column):
                parts.append(part)
                node = last
                break
    return _render_path(parts)


_UNION_TAGS: Final[dict[str, tuple[str, str | None]]] = {
    **{tag: ("model", "fixed") for tag in ("fixed", "tier_weighted", "tape_timing")},
    **{tag: ("kind", None) for tag in ("reference", "command", "container", "external")},
}
"""Tags of the discriminated unions (rate model, SUT kind): tag -> (key, default)."""
_TAG_KEYS: Final[dict[str, tuple[str]]] = {"rate_model": ("model",), "sut_kind": ("kind",)}
"""Error types of a bad union tag -> the key to blame."""


def _key_path(loc: Sequence[int | str], data: Any) -> tuple[str, list[int | str]]:
    """Render a pydantic loc as `a.b[2].c`, dropping union tags (they are not keys of the
    data); also return the kept elements for the line lookup."""
    kept: list[int | str] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if not last and isinstance(node, Mapping) and part in _UNION_TAGS:
            key, default = _UNION_TAGS[str(part)]
            if node.get(key, default) == part:
                continue  # the tag of a discriminated union, not a key
        in_mapping = isinstance(node, Mapping) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            node = node[part]
        elif not last or not isinstance(part, str) or not isinstance(node, Mapping):
            continue  # a union tag or validator name, not a key
        else:
            node = None
        kept.append(part)
    return _render_path(kept), kept


def _render_path(parts: Sequence[int | str]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line_of(root: yaml.Node | None, parts: Sequence[int | str]) -> int | None:
    """1-based line of the deepest node of `parts` found in the composed YAML tree."""
    if root is None:
        return None
    node, line = root, root.start_mark.line + 1
    for part in parts:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    child = value_node
                    line = key_node.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def _yaml_context_path(text: str, line: int) -> str:
    """Best-effort key path enclosing 1-based `line` of block-style YAML (for syntax errors)."""
    lines = text.splitlines()[: max(line - 1, 0)]
    parts: list[tuple[int, int | str]] = []  # (indent, key or item index)
    items: dict[int, int] = {}  # indent of a "- " item -> count so far
    for raw in lines:
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        while parts and parts[-1][0] >= indent:
            popped = parts.pop()
            if isinstance(popped[1], int):
                break
        for deeper in [k for k in items if k > indent]:
            del items[deeper]
        if stripped.startswith("- "):
            items[indent] = items.get(indent, -1) + 1
            while parts and parts[-1][0] >= indent:
                parts.pop()
            parts.append((indent, items[indent]))
            stripped = stripped[2:].lstrip()
            indent += 2
        key = stripped.split(":", 1)[0].strip() if ":" in stripped else None
        if key and " " not in key:
            parts.append((indent, key))
    return _render_path([p for _, p in parts])


def _parse(file: Path) -> tuple[Any, yaml.Node | None]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(file, [Problem("", f"cannot read the scenario file: {exc}")]) from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        column = f", column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = f"YAML error{column}: {problem}" + (f" ({context})" if context else "")
        path = _yaml_context_path(text, line) if line else ""
        if isinstance(exc, DuplicateKeyError):
            path = _path_at(yaml.compose(text, Loader=yaml.SafeLoader), mark)
        raise ScenarioError(file, [Problem(path, message, line)]) from exc
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
        raise ScenarioError(
            file, [Problem("", f"the scenario must be a YAML mapping; it is {kind}")]
        )
    return data, root


def parse_scenario(data: Mapping[str, Any], file: Path, root: yaml.Node | None = None) -> Scenario:
    """Validate already-parsed YAML `data` from `file`; raises ScenarioError."""
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"]) + _TAG_KEYS.get(error["type"], ())
            path, kept = _key_path(loc, data)
            problems.append(Problem(path, _message(error), _line_of(root, kept)))
        problems.sort(key=lambda p: p.line or 0)
        raise ScenarioError(file, problems) from None
    size, problem = universe_size(scenario)
    found = [problem] if problem else []
    found += semantic_problems(scenario, size)
    if found:
        located = [Problem(p.path, p.message, _line_of(root, _split_path(p.path))) for p in found]
        raise ScenarioError(file, located)
    return scenario


def _message(error: Any) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown key (not part of the scenario format; see scenarios/README.md)"
    if error["type"] == "missing":
        return "required key is missing"
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    given = error.get("input")
    if error["type"] not in ("missing",) and not isinstance(given, (dict, list)):
        message += f" (got {given!r})"
    return message


def _split_path(path: str) -> list[int | str]:
    parts: list[int | str] = []
    for chunk in path.replace("]", "").split("."):
        name, *indices = chunk.split("[")
        if name:
            parts.append(name)
        parts.extend(int(i) for i in indices)
    return parts


def load_scenario(path: Path | str) -> Scenario:
    """Load and validate a scenario file; raises ScenarioError (file, key path, line, what)."""
    file = Path(path)
    data, root = _parse(file)
    return parse_scenario(data, file, root)

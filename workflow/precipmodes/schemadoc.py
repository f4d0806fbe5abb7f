"""The configuration reference, rendered from the config schema (its one source).

:func:`render_reference` turns ``precipmodes/schemas/config.schema.yaml`` into Markdown: one table per
top-level section, one row per key with its default, its allowed values (enums, types, bounds) and its
``description``. The documentation site renders it at build time (``docs/hooks.py``) and
``config/README.md`` holds the same text (``tests/workflow/demo_run/test_docs.py`` checks it is current)::

    python -m precipmodes.schemadoc config/README.md

Only PyYAML and the standard library: the docs build imports this module without the scientific stack.
"""

from __future__ import annotations

import importlib.resources
import json
import sys
from typing import Any, Mapping

import yaml

SCHEMA = importlib.resources.files("precipmodes") / "schemas" / "config.schema.yaml"

HEADER = """# Configuration reference

Every key of the workflow's config, its default and its allowed values. Generated from the config schema
(`workflow/precipmodes/schemas/config.schema.yaml`, the one home of these facts) by
`python -m precipmodes.schemadoc`; edit the schema, not this page. `config/config.yaml` is the default
config (the offline demo); a key you leave out takes the default below. `<name>` stands for a name you
choose (an experiment, a rule, a variable).
"""


def _resolve(node: Mapping, root: Mapping) -> Mapping:
    while "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _value(value: Any) -> str:
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _allowed(node: Mapping, root: Mapping) -> str:
    """Allowed values of ``node`` in words: enum, const, type with bounds, array items, alternatives."""
    node = _resolve(node, root)
    if "enum" in node:
        return "one of " + ", ".join(_value(v) for v in node["enum"])
    if "const" in node:
        return _value(node["const"])
    alternatives = node.get("anyOf") or node.get("oneOf")
    if alternatives:
        return " or ".join(_allowed(sub, root) for sub in alternatives)
    kinds = node.get("type", "")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    words = " or ".join("null" if k == "null" else k for k in kinds if k) or "any value"
    if "array" in kinds and isinstance(node.get("items"), Mapping):
        low, high = node.get("minItems"), node.get("maxItems")
        count = (f"{low} items" if low == high and low is not None else
                 ", ".join(w for w in (f"at least {low} items" if low else "", f"at most {high} items" if high
                                       else "") if w))
        words = words.replace("array", f"list of ({_allowed(node['items'], root)})" + (f", {count}" if count else ""))
    if "object" in kinds and isinstance(node.get("additionalProperties"), Mapping) and "properties" not in node:
        words = words.replace("object", f"mapping of name to ({_allowed(node['additionalProperties'], root)})")
    bounds = [f"{sign} {node[key]}" for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"),
                                                      ("maximum", "≤"), ("exclusiveMaximum", "<")) if key in node]
    if "pattern" in node:
        bounds.append("ISO-8601 instant with a time zone" if "description" in node else f"matching {node['pattern']}")
    if node.get("minLength"):
        bounds.append("not empty")
    return words + (" " + ", ".join(bounds) if bounds else "")


def _text(node: Mapping, root: Mapping) -> str:
    description = node.get("description") or _resolve(node, root).get("description", "")
    return " ".join(str(description).split()).replace("|", "\\|")


def _rows(node: Mapping, path: str, root: Mapping) -> list[tuple[str, str, str, str]]:
    """(key path, default, allowed, description) of ``node`` and of every key below it."""
    target = _resolve(node, root)
    default = _value(node["default"]) if "default" in node else ""
    extra = target.get("additionalProperties")
    named = isinstance(extra, Mapping) and "properties" in _resolve(extra, root)
    if "properties" not in target and not named:
        return [(path, default, _allowed(node, root), _text(node, root))]
    rows = [(path, default, "section", _text(node, root))] if "." in path else []
    for key, child in target.get("properties", {}).items():
        rows += _rows(child, f"{path}.{key}", root)
    if isinstance(extra, Mapping):
        rows += _rows(extra, f"{path}.<name>", root)
    return rows


def _is_section(node: Mapping, root: Mapping) -> bool:
    extra = _resolve(node, root).get("additionalProperties")
    return "properties" in _resolve(node, root) or (isinstance(extra, Mapping) and "properties" in _resolve(extra, root))


def render_reference(schema: Mapping | None = None) -> str:
    """The configuration reference of ``schema`` (default: the package's config schema) as Markdown."""
    root = yaml.safe_load(SCHEMA.read_text(encoding="utf-8")) if schema is None else schema
    parts = [HEADER]
    for key, node in root["properties"].items():
        parts.append(f"\n## `{key}`\n")
        if _is_section(node, root):
            default = f" Default: {_value(node['default'])}." if "default" in node else ""
            parts.append(f"\n{_text(node, root)}.{default}\n".replace("..", "."))
        parts.append("\n| key | default | allowed | meaning |\n| --- | --- | --- | --- |\n")
        parts += [f"| `{path}` | {default} | {allowed} | {text} |\n" for path, default, allowed, text in _rows(node, key, root)]
        if "x-rule-fallbacks" in node:
            parts.append(_fallbacks(node["x-rule-fallbacks"]))
    return "".join(parts)


def _fallbacks(table: Mapping) -> str:
    """The per-rule values used where neither ``resources.<rule>`` nor ``resources.default`` sets a key."""
    rows = "".join(f"| `{rule}` | {v['threads']} | {v['mem_mb']} | {v['runtime']} |\n" for rule, v in table.items())
    return ("\nWhere neither `resources.<rule>` nor `resources.default` sets a key, a rule's jobs get (sized for the "
            "demo; the figure rules share `figures`):\n\n| rule | threads | mem_mb | runtime (minutes) |\n"
            "| --- | --- | --- | --- |\n" + rows)


def main(argv: list[str] | None = None) -> int:
    """Write the reference to the file named in ``argv`` (stdout without one)."""
    argv = sys.argv[1:] if argv is None else argv
    text = render_reference()
    if argv:
        with open(argv[0], "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

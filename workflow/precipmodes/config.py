"""Configuration: JSON-schema validation with clear messages, defaults, instants.

``validate_config`` checks a config mapping against the schema that ships inside the package
(``precipmodes/schemas/config.schema.yaml``, read with :mod:`importlib.resources`, so a wheel or a
non-editable install finds it too), fills in defaults and raises
:class:`~precipmodes.errors.ConfigError` naming the key path, the bad value and
the allowed values.
"""

from __future__ import annotations

import copy
import datetime as _dt
import functools
import importlib.resources
import os
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import numpy as np
import pandas as pd
import yaml

from precipmodes.errors import ConfigError
from precipmodes.grid import normalise_domain_lon

SCHEMA_PATH = importlib.resources.files("precipmodes") / "schemas" / "config.schema.yaml"


@functools.cache
def _parsed_schema() -> dict:
    return yaml.load(SCHEMA_PATH.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_schema() -> dict:
    """The config schema (the one home of every config key, its default and its allowed values): a copy of
    the one parsed per process (libyaml's loader where PyYAML has it)."""
    return copy.deepcopy(_parsed_schema())


def layers_origin(configfiles: list, overrides: Mapping, default: str | Path) -> str:
    """What a validation error names as the config's origin: the files given (or the default) and
    the keys set with ``--config``."""
    base = ", ".join(map(str, configfiles)) if configfiles else f"{default} (the default demo config)"
    extra = f" with --config {', '.join(sorted(map(str, overrides)))}" if overrides else ""
    return f"config from {base}{extra}"


def validate_config(config: Mapping, origin: str = "config", overrides: Mapping | None = None) -> dict:
    """Return a validated copy of ``config`` with defaults filled in.

    ``overrides``: the values given with ``--config`` (Snakemake reads the value of ``key={...}`` with
    YAML's base loader, so every number, boolean and null inside arrives as a string); where ``config``
    still holds such a string and the schema asks for a number, integer, boolean or null there, it is
    converted (:func:`_typed_overrides`). Raises ConfigError listing every violation as
    ``<key.path>: <problem>``.
    """
    config = _stringify_dates(copy.deepcopy(dict(config)))
    schema = load_schema()
    if overrides:
        config = _typed_overrides(config, overrides, schema, schema)
    _nest_flat_source(config, schema, origin)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [_describe(error) for error in errors]
        raise ConfigError(f"invalid {origin}:\n  " + "\n  ".join(dict.fromkeys(lines)))
    _fill_defaults(config, schema, schema)
    _check_semantics(config, origin)
    return config


def _rule_fallbacks() -> dict:
    """``{rule: {threads, mem_mb, runtime}}``: the schema's ``resources.x-rule-fallbacks``."""
    return _parsed_schema()["properties"]["resources"]["x-rule-fallbacks"]


def rule_resources(config: Mapping, rule: str, key: str) -> int:
    """``resources.<rule>.<key>`` of the validated ``config``, else ``resources.default.<key>``, else the
    schema's fallback for the rule (:func:`_rule_fallbacks`: threads, mem_mb in MB, runtime in minutes)."""
    table = config.get("resources", {})
    return table.get(rule, {}).get(key, table.get("default", {}).get(key, _rule_fallbacks()[rule][key]))


def section_defaults(name: str, values: Mapping | None = None) -> dict:
    """Config section ``name`` with its schema defaults filled in under ``values`` (for callers outside
    Snakemake, e.g. tests and notebooks, that call a file-level step with only some keys).

    ``name`` is a top-level key (``svd``) or a dotted path of keys (``source.files``: the options of
    one source kind, as :func:`precipmodes.io.sources.source_options` hands them on, without ``kind``;
    ``experiments.<name>``: one experiment's entry). The schema is the one home of every default: file-level steps
    read their section's keys directly, so a section passed in must be complete, as the validated
    config is.
    """
    schema = load_schema()
    node: Mapping = schema
    for part in name.split("."):
        known = node.get("properties", {})
        node = _resolve(known[part] if part in known else node["additionalProperties"], schema)
    section = dict(copy.deepcopy(values or {}))
    _fill_defaults(section, node, schema)
    return section


SOURCE_KINDS = ("demo", "files", "http", "seed_binary")


def _nest_flat_source(config: dict, schema: Mapping, origin: str) -> None:
    """Move a kind's options written directly under ``source`` (``source: {kind: files, paths: [...]}``) to
    the key named after the kind (``source.files.paths``), where the schema and every reader expect them.

    Raises ConfigError showing the nested form when the options are split between both places; unknown keys
    are left for the schema to name.
    """
    source = config.get("source")
    if not isinstance(source, dict) or source.get("kind") not in SOURCE_KINDS:
        return
    kind = source["kind"]
    options = schema["$defs"][f"source_{kind}"]["properties"]
    flat = {key: value for key, value in source.items() if key not in ("kind", *SOURCE_KINDS)}
    if not flat or not all(key in options for key in flat):
        return
    if kind in source:
        nested = {"source": {"kind": kind, kind: {**source[kind], **flat}}}
        shown = "\n".join("    " + line for line in yaml.safe_dump(nested, sort_keys=False).splitlines())
        raise ConfigError(
            f"invalid {origin}:\n  source: the options of source.kind {kind} are split between source "
            f"({sorted(flat)}) and source.{kind}; write them in one place:\n{shown}")
    config["source"] = {key: value for key, value in source.items() if key not in flat} | {kind: flat}


def _typed_overrides(value: Any, override: Any, schema: Mapping, root: Mapping) -> Any:
    """``value`` with the strings that ``override`` (the ``--config`` values) put there converted to the
    number, integer, boolean or null the schema asks for at their place; anything else is left to the
    validation, which names the key."""
    schema = _resolve(schema, root)
    if isinstance(value, dict) and isinstance(override, dict):
        return {key: _typed_overrides(item, override[key], _child_schema(schema, value, key, root), root)
                if key in override else item for key, item in value.items()}
    if isinstance(value, list) and isinstance(override, list) and len(value) == len(override):
        items = schema.get("items", {}) if isinstance(schema.get("items"), dict) else {}
        return [_typed_overrides(item, given, items, root) for item, given in zip(value, override)]
    if isinstance(value, str) and value == override:
        return _from_text(value, _schema_types(schema, root))
    return value


def _child_schema(schema: Mapping, instance: Mapping, key: str, root: Mapping) -> Mapping:
    """The schema of ``instance[key]`` (properties, then those of a matching if/then, then
    additionalProperties); ``{}`` when the schema says nothing."""
    for sub in [schema, *(clause.get("then", {}) for clause in schema.get("allOf", [])
                          if "if" in clause and jsonschema.Draft202012Validator(clause["if"]).is_valid(instance))]:
        if key in sub.get("properties", {}):
            return _resolve(sub["properties"][key], root)
    extra = schema.get("additionalProperties")
    return _resolve(extra, root) if isinstance(extra, dict) else {}


_JSON_TYPES = {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string"}


def _schema_types(schema: Mapping, root: Mapping) -> set[str]:
    """JSON types a schema allows (from type, enum, const, anyOf/oneOf); empty when unconstrained."""
    schema = _resolve(schema, root)
    kinds = schema.get("type", [])
    types = {kinds} if isinstance(kinds, str) else set(kinds)
    for value in [*schema.get("enum", []), *([schema["const"]] if "const" in schema else [])]:
        types.add(_JSON_TYPES.get(type(value), "string"))
    for sub in [*schema.get("anyOf", []), *schema.get("oneOf", [])]:
        types |= _schema_types(sub, root)
    return types


def _from_text(text: str, types: set[str]) -> Any:
    """``text`` as the first of null, boolean, integer, number that ``types`` allows and it spells;
    ``text`` itself when none fits or strings are allowed (then only YAML's null is converted)."""
    word = text.strip().lower()
    if "null" in types and word in ("null", "~"):
        return None
    if "string" in types or not types:
        return text
    if "boolean" in types and word in ("true", "false"):
        return word == "true"
    try:
        number = float(text)
    except ValueError:
        return text
    if "integer" in types and number.is_integer():
        return int(text) if text.strip().lstrip("+-").isdigit() else int(number)
    return number if "number" in types else text


def _stringify_dates(value: Any) -> Any:
    """Unquoted YAML dates arrive as date objects; turn them back into ISO strings.

    Dates without a time zone still fail the schema's instant pattern, which asks
    for an offset, so the user sees which key to quote and complete.
    """
    if isinstance(value, dict):
        return {k: _stringify_dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify_dates(v) for v in value]
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    return value


def _describe(error: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        return f"{key}: unknown key(s) {extra}; allowed keys are {allowed}"
    if error.validator in ("enum", "const"):
        allowed = schema.get("enum", [schema.get("const")])
        return f"{key}: {error.instance!r} is not allowed; allowed values are {allowed}"
    if error.validator == "propertyNames" or "propertyNames" in error.absolute_schema_path:
        return (f"{key}: name {error.instance!r} is not allowed; names must match "
                f"^[A-Za-z0-9_-]+$ (letters, digits, '_' and '-')")
    if error.validator == "pattern" and "ISO-8601" in str(schema.get("description", "")):
        return (f"{key}: {error.instance!r} is not an ISO-8601 instant with a time zone; "
                f"write it quoted, e.g. \"2006-01-01T00:00+09:00\"")
    if error.validator == "anyOf" and isinstance(error.instance, str):
        return (f"{key}: {error.instance!r} is not an ISO-8601 instant with a time zone "
                f"(e.g. \"2005-12-31T15:00Z\") or 'first'")
    if error.validator == "required":
        return f"{key}: {error.message}"
    description = schema.get("description")
    hint = f" ({description})" if description else ""
    return f"{key}: {error.message}{hint}"


def _fill_defaults(instance: Any, schema: Mapping, root: Mapping) -> None:
    """Fill ``default`` values of ``properties`` recursively (also inside matching if/then)."""
    if not isinstance(instance, dict):
        return
    schema = _resolve(schema, root)
    subschemas = [schema]
    for clause in schema.get("allOf", []):
        condition = clause.get("if")
        if condition is not None and jsonschema.Draft202012Validator(condition).is_valid(instance):
            subschemas.append(clause.get("then", {}))
    for sub in subschemas:
        for name, prop in sub.get("properties", {}).items():
            prop = _resolve(prop, root)
            if name not in instance and "default" in prop:
                instance[name] = copy.deepcopy(prop["default"])
            if name in instance:
                _fill_defaults(instance[name], prop, root)
        extra = sub.get("additionalProperties")
        if isinstance(extra, dict):
            declared = sub.get("properties", {})
            for name, value in instance.items():
                if name not in declared:
                    _fill_defaults(value, extra, root)


def _resolve(schema: Mapping, root: Mapping) -> Mapping:
    ref = schema.get("$ref") if isinstance(schema, Mapping) else None
    if ref and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node[part]
        return {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


OUTPUT_FOLDER_KEYS = ("results_dir", "archive_dir")


def refuse_unsafe_folders(config: Mapping, workdir: str | os.PathLike = ".", origin: str = "config") -> None:
    """Raise ConfigError when ``results_dir`` or ``archive_dir`` is ``/``, the home folder, the working
    directory ``workdir`` or one of its ancestors (symbolic links resolved).

    The workflow writes into these folders and cleans up its own leftovers there; a folder that also
    holds the user's other files (and the working directory's .snakemake) must not be one of them.
    """
    workdir = Path(workdir).resolve()
    problems = []
    for key in OUTPUT_FOLDER_KEYS:
        folder = (workdir / config[key]).resolve()
        if folder == Path(folder.anchor):
            what = "the root of the file system"
        elif folder == Path.home().resolve():
            what = "your home folder"
        elif folder == workdir:
            what = "the working directory"
        elif folder in workdir.parents:
            what = "a folder above the working directory"
        else:
            continue
        problems.append(f"{key}: {config[key]!r} is {what} ({folder}); the workflow writes into {key} and "
                        f"cleans up its own leftovers there, so give it a folder of its own (a new sub-folder, e.g. "
                        f"{key}: {load_schema()['properties'][key]['default']})")
    if problems:
        raise ConfigError(f"invalid {origin}:\n  " + "\n  ".join(problems))


def _check_semantics(config: dict, origin: str = "config") -> None:
    problems = []
    west, east = config["domain"]["lon"]
    south, north = config["domain"]["lat"]
    low, high = normalise_domain_lon(west, east)
    if not (west < east or east < 0 <= west):  # east < 0 <= west: across 180° in -180..180 longitudes
        problems.append(f"domain.lon: west {west} must be less than east {east} (a domain across the 180° "
                        f"meridian: e.g. [150, 210] or [150, -150])")
    elif high - low > 360:
        problems.append(f"domain.lon: [{west}, {east}] spans {high - low:g} degrees, more than the globe's 360")
    if not south < north:
        problems.append(f"domain.lat: south {south} must be less than north {north}")
    for name, experiment in config["experiments"].items():
        ranges = {part: parse_range(experiment[part]) for part in ("train", "test")}
        for part, (start, end) in ranges.items():
            if not start < end:
                problems.append(f"experiments.{name}.{part}: start {experiment[part][0]} must be before "
                                f"end {experiment[part][1]} (ranges are half-open [start, end))")
        (a, b), (c, d) = ranges["train"], ranges["test"]
        if a < b and c < d and a < d and c < b:  # caught here, before any rule runs (split checks again)
            problems.append(f"experiments.{name}: train {experiment['train']} and test {experiment['test']} "
                            "overlap; ranges are half-open [start, end): make them disjoint "
                            "(e.g. train end = test start)")
    rules = _rule_fallbacks()
    for name in sorted(set(config.get("resources", {})) - set(rules) - {"default"}):
        problems.append(f"resources.{name}: no rule of that name (the figure rules share 'figures'); use one of "
                        f"default, {', '.join(rules)}")
    if problems:
        raise ConfigError(f"invalid {origin}:\n  " + "\n  ".join(problems))


def iso_utc(value) -> str:
    """A datetime64 as ISO-8601 to the second (no zone: the workflow's times are naive UTC)."""
    return str(np.datetime64(value, "s"))


def parse_instant(text: str) -> np.datetime64:
    """ISO-8601 instant with offset -> naive UTC ``datetime64[ns]``."""
    stamp = pd.Timestamp(text)
    if stamp.tzinfo is None:
        raise ConfigError(f"instant {text!r} has no time zone; add one, e.g. {text}+09:00 or {text}Z")
    return np.datetime64(stamp.tz_convert("UTC").tz_localize(None).to_datetime64(), "ns")


def parse_range(bounds: list[str]) -> tuple[np.datetime64, np.datetime64]:
    """Half-open ``[start, end)`` as naive UTC datetime64 values."""
    return parse_instant(bounds[0]), parse_instant(bounds[1])


def resolution(config: Mapping) -> tuple[float, float] | None:
    """``domain.resolution`` as ``(dlon, dlat)`` degrees, or None to keep the source grid."""
    res = config["domain"].get("resolution")
    if res is None:
        return None
    if isinstance(res, (int, float)):
        return float(res), float(res)
    return float(res[0]), float(res[1])

"""Config validation: defaults, and clear errors naming the key path and allowed values."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from precipmodes.config import parse_instant, parse_range, refuse_unsafe_folders, resolution, validate_config
from precipmodes.errors import ConfigError
from precipmodes.io.configfile import load_config

MINIMAL = {
    "source": {"kind": "demo"},
    "domain": {"lon": [128.0, 148.0], "lat": [30.0, 46.0]},
    "experiments": {"e1": {"train": ["2006-01-01T00:00+09:00", "2007-01-01T00:00+09:00"],
                           "test": ["2007-01-01T00:00+09:00", "2008-01-01T00:00+09:00"]}},
}


def with_changes(**sections):
    config = yaml.safe_load(yaml.safe_dump(MINIMAL))
    config.update(sections)
    return config


def test_default_config_file_is_valid_and_mirrors_the_seed(repo):
    config = load_config(repo / "config" / "config.yaml")
    assert config["source"]["kind"] == "demo"
    seed = config["experiments"]["seed"]
    assert seed["n_modes"] == 25
    assert parse_range(seed["train"]) == (np.datetime64("2005-12-31T15:00"), np.datetime64("2010-12-31T15:00"))
    assert config["accumulation"] == {"hours": 72, "anchor": "auto", "min_completeness": 1.0, "partition_months": "auto"}
    assert config["threshold"] == {"wet_mm": 0.0, "min_wet_fraction": 0.2}


def test_defaults_are_filled_including_kind_specific_ones():
    config = validate_config(MINIMAL)
    assert config["source"] == {"kind": "demo", "demo": {"seed": 20060101, "step_hours": 6,
                                                         "start": "2006-01-01T00:00+09:00",
                                                         "end": "2016-01-01T00:00+09:00",
                                                         "gaps": {"station_fraction": 0.01, "outage": True}},
                                "max_mm_per_hour": 500, "max_window_mm": 10000, "implausible": "error"}
    assert config["land_mask"]["method"] == "auto"
    assert config["land_mask"]["min_fraction"] == 0.5
    assert config["experiments"]["e1"]["n_modes"] == 25
    assert config["svd"]["center"] is False
    assert config["nmf"]["init"] == "nndsvd"
    assert config["domain"]["resolution"] is None
    assert config["coverage"] == {"min_cell_fraction": 0.8, "min_window_fraction": 0.8}
    assert config["experiments"]["e1"]["months"] is None
    assert config["accumulation"]["anchor"] == "auto"


def test_files_source_defaults():
    config = validate_config(with_changes(source={"kind": "files", "files": {"paths": ["x.nc"], "variable": "pr"}}))
    assert config["source"]["files"]["regrid"] == "refuse"
    assert config["source"]["files"]["chunks"] == {"time": 744}
    assert "demo" not in config["source"]  # only the active kind's options get defaults


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"source": {"kind": "dem"}}, "source.kind: 'dem' is not allowed; allowed values are ['demo', 'files', 'http', 'seed_binary']"),
        ({"source": {"kind": "demo", "demo": {"sed": 3}}}, "source.demo: unknown key(s) ['sed']"),
        ({"source": {"kind": "demo", "sed": 3}}, "source: unknown key(s) ['sed']"),
        ({"source": {"kind": "files", "files": {"paths": ["a.nc"]}}}, "source.files: 'variable' is a required property"),
        ({"source": {"kind": "files"}}, "source: 'files' is a required property"),
        ({"source": {"kind": "http", "http": {"preset": "cpc_global_daily"}}}, "source.http: 'years' is a required property"),
        ({"svd": {"method": "qr"}}, "svd.method: 'qr' is not allowed; allowed values are ['auto', 'gram', 'tsqr', 'randomized']"),
        ({"threshold": {"min_wet_fraction": 1.5}}, "threshold.min_wet_fraction: 1.5 is greater than the maximum of 1"),
        ({"nmf": {"max_iter": "many"}}, "nmf.max_iter: 'many' is not of type 'integer'"),
        ({"colour": "red"}, "<top level>: unknown key(s) ['colour']"),
        ({"domain": {"lon": [148, 128], "lat": [30, 46]}}, "domain.lon: west 148 must be less than east 128"),
        ({"experiments": {"e1": {**MINIMAL["experiments"]["e1"], "months": [12, 13]}}},
         "experiments.e1.months.1: 13 is greater than the maximum of 12"),
        ({"experiments": {"e1": {**MINIMAL["experiments"]["e1"], "months": [0]}}},
         "experiments.e1.months.0: 0 is less than the minimum of 1"),
        ({"coverage": {"min_cell_fraction": 0}}, "coverage.min_cell_fraction: 0 is less than or equal to the minimum of 0"),
        ({"coverage": {"min_window": 0.5}}, "coverage: unknown key(s) ['min_window']"),
        ({"accumulation": {"hours": 6e12}}, "accumulation.hours: 6000000000000.0 is greater than the maximum of 8784"),
        ({"source": {"kind": "files", "files": {"paths": ["a.nc"], "variable": "pr", "step_hours": 6e12}}},
         "source.files.step_hours: 6000000000000.0 is greater than the maximum of 8784"),
    ],
)
def test_bad_values_name_the_key(changes, expected):
    with pytest.raises(ConfigError) as info:
        validate_config(with_changes(**changes))
    assert expected in str(info.value)


def test_domain_lon_across_the_dateline():
    for lon in ([150, 210], [150, -150], [190, 200], [-180, 180], [0, 360]):
        assert validate_config(with_changes(domain={"lon": lon, "lat": [-10, 10]}))["domain"]["lon"] == lon
    for lon, message in (([10, 5], "domain.lon: west 10 must be less than east 5 (a domain across the 180° "
                                   "meridian: e.g. [150, 210] or [150, -150])"),
                         ([-10, -20], "domain.lon: west -10 must be less than east -20"),
                         ([-180, 360], "domain.lon: [-180, 360] spans 540 degrees, more than the globe's 360")):
        with pytest.raises(ConfigError) as info:
            validate_config(with_changes(domain={"lon": lon, "lat": [-10, 10]}))
        assert message in str(info.value)


@pytest.mark.parametrize("name", ["a/b", "..", "../escape", "x y", ""])
def test_experiment_names_cannot_escape_results(name):
    experiment = MINIMAL["experiments"]["e1"]
    with pytest.raises(ConfigError, match=r"\^\[A-Za-z0-9_-\]\+\$"):
        validate_config(with_changes(experiments={name: experiment}))


def test_missing_experiment_field_and_unquoted_date():
    bad = {"train": ["2006-01-01", "2007-01-01T00:00+09:00"]}
    with pytest.raises(ConfigError) as info:
        validate_config(with_changes(experiments={"e1": bad}))
    message = str(info.value)
    assert "experiments.e1: 'test' is a required property" in message
    assert "experiments.e1.train.0: '2006-01-01' is not an ISO-8601 instant with a time zone" in message


def test_yaml_date_objects_are_reported_as_missing_a_time_zone(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "source: {kind: demo}\n"
        "domain: {lon: [128, 148], lat: [30, 46]}\n"
        "experiments:\n"
        "  e1: {train: [2006-01-01, 2007-01-01], test: [2007-01-01, 2008-01-01]}\n"
    )
    with pytest.raises(ConfigError, match=r"experiments.e1.train.0: '2006-01-01' is not an ISO-8601 instant"):
        load_config(path)


def test_reversed_range_is_refused():
    experiment = {"train": ["2007-01-01T00:00Z", "2006-01-01T00:00Z"], "test": MINIMAL["experiments"]["e1"]["test"]}
    with pytest.raises(ConfigError, match=r"experiments.e1.train: start 2007-01-01T00:00Z must be before end"):
        validate_config(with_changes(experiments={"e1": experiment}))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file .*nope.yaml not found"):
        load_config(tmp_path / "nope.yaml")


def test_parse_instant_converts_to_naive_utc():
    assert parse_instant("2006-01-01T00:00+09:00") == np.datetime64("2005-12-31T15:00", "ns")
    assert parse_instant("2005-12-31T15:00Z") == np.datetime64("2005-12-31T15:00", "ns")
    with pytest.raises(ConfigError, match="has no time zone"):
        parse_instant("2006-01-01T00:00")


def test_resolution_forms():
    assert resolution({"domain": {"resolution": 0.5}}) == (0.5, 0.5)
    assert resolution({"domain": {"resolution": [0.0625, 0.05]}}) == (0.0625, 0.05)
    assert resolution({"domain": {"resolution": None}}) is None


def test_flat_source_form_is_read_as_the_nested_form():
    flat = {"kind": "files", "paths": ["a.nc"], "variable": "pr"}
    nested = {"kind": "files", "files": {"paths": ["a.nc"], "variable": "pr"}}
    assert validate_config(with_changes(source=flat)) == validate_config(with_changes(source=nested))
    unknown = {"kind": "files", "paths": ["a.nc"], "variable": "pr", "colour": "blue"}
    with pytest.raises(ConfigError, match=r"source: unknown key\(s\) \['colour', 'paths', 'variable'\]"):
        validate_config(with_changes(source=unknown))  # a key of no kind: nothing is moved, the schema names it


def test_source_options_split_between_flat_and_nested_are_refused_showing_one_place():
    split = {"kind": "files", "variable": "pr", "files": {"paths": ["a.nc"]}}
    with pytest.raises(ConfigError) as info:
        validate_config(with_changes(source=split), origin="config from my.yaml")
    message = str(info.value)
    assert message.startswith("invalid config from my.yaml:")
    assert "the options of source.kind files are split between source (['variable']) and source.files" in message
    shown = yaml.safe_load(message.split("one place:\n", 1)[1])
    assert shown == {"source": {"kind": "files", "files": {"paths": ["a.nc"], "variable": "pr"}}}
    assert validate_config(with_changes(**shown))["source"]["files"]["paths"] == ["a.nc"]


def test_options_of_other_kinds_may_stay_and_only_the_active_ones_are_used():
    from precipmodes.io.sources import source_options

    source = {"kind": "files", "files": {"paths": ["x.nc"], "variable": "pr"}, "demo": {"seed": 3}}
    config = validate_config(with_changes(source=source))
    demo_defaults = validate_config(MINIMAL)["source"]["demo"]
    assert config["source"]["demo"] == {**demo_defaults, "seed": 3}  # validated, defaults filled
    options = source_options(config["source"])
    assert options["kind"] == "files" and options["paths"] == ["x.nc"] and "seed" not in options


def test_section_defaults_fill_a_partial_section_as_validation_does():
    from precipmodes.config import section_defaults

    config = validate_config(with_changes(svd={"gaps": {"tol": 1e-6}}, experiments={"e1": {
        **MINIMAL["experiments"]["e1"], "n_modes": 4}}))
    assert section_defaults("svd", {"gaps": {"tol": 1e-6}}) == config["svd"]
    entry = {**MINIMAL["experiments"]["e1"], "n_modes": 4}
    assert section_defaults("experiments.e1", entry) == config["experiments"]["e1"]
    assert section_defaults("source.demo") == config["source"]["demo"]  # a dotted path: one kind's options
    files = section_defaults("source.files", {"paths": ["x.nc"], "variable": "pr"})
    source = validate_config(with_changes(source={"kind": "files", "files": {"paths": ["x.nc"], "variable": "pr"}}))
    assert files == source["source"]["files"]


def test_layers_origin_names_the_files_given():
    from precipmodes.config import layers_origin

    assert layers_origin([], {}, "config/config.yaml") == "config from config/config.yaml (the default demo config)"
    assert layers_origin(["a.yaml", "b.yaml"], {"nmf": {}, "domain": {}}, "d.yaml") == \
        "config from a.yaml, b.yaml with --config domain, nmf"


def test_strings_from_the_command_line_become_the_numbers_the_schema_asks_for():
    """`--config 'accumulation={"min_completeness": 0.9}'` hands every value inside as a string (Snakemake reads
    it with YAML's base loader); those strings are typed where the schema wants a number, integer, boolean or null."""
    given = {"accumulation": {"min_completeness": "0.9", "hours": "24"}, "svd": {"center": "true"},
             "domain": {"lon": ["128", "148"], "lat": ["30", "46"], "resolution": "null"},
             "experiments": {"e1": {"months": ["12", "1", "2"]}}}
    config = with_changes(**{key: value for key, value in given.items() if key != "experiments"})
    config["experiments"]["e1"]["months"] = given["experiments"]["e1"]["months"]
    typed = validate_config(config, overrides=given)
    assert typed["accumulation"]["min_completeness"] == 0.9 and typed["accumulation"]["hours"] == 24
    assert typed["svd"]["center"] is True
    assert typed["domain"]["lon"] == [128, 148] and typed["domain"]["resolution"] is None
    assert typed["experiments"]["e1"]["months"] == [12, 1, 2]


def test_only_command_line_strings_are_typed_and_bad_ones_still_name_the_key():
    quoted = with_changes(accumulation={"min_completeness": "0.9"})  # a quoted number in a YAML file stays an error
    with pytest.raises(ConfigError, match=r"accumulation.min_completeness: '0.9' is not of type 'number'"):
        validate_config(quoted)
    given = {"accumulation": {"hours": "many", "min_completeness": "6e12"}}
    with pytest.raises(ConfigError) as info:
        validate_config(with_changes(**given), overrides=given)
    assert "accumulation.hours: 'many' is not of type 'integer'" in str(info.value)
    assert "accumulation.min_completeness: 6000000000000.0 is greater than the maximum of 1" in str(info.value)
    huge = {"accumulation": {"hours": "6e12"}}
    with pytest.raises(ConfigError, match=r"accumulation.hours: 6000000000000 is greater than the maximum of 8784"):
        validate_config(with_changes(**huge), overrides=huge)


@pytest.mark.parametrize("key", ["results_dir", "archive_dir"])
def test_output_folders_that_hold_other_files_are_refused(tmp_path, key):
    """/, the home folder, the working directory and the folders above it (also through a symbolic link)."""
    workdir = tmp_path / "project" / "work"
    workdir.mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "project")
    for value, what in [("/", "the root of the file system"), (str(Path.home()), "your home folder"),
                        (".", "the working directory"), ("..", "a folder above the working directory"),
                        (str(tmp_path / "link"), "a folder above the working directory")]:
        with pytest.raises(ConfigError) as info:
            refuse_unsafe_folders(validate_config(with_changes(**{key: value})), workdir, origin="my.yaml")
        assert f"invalid my.yaml:\n  {key}: {value!r} is {what}" in str(info.value)
        assert "give it a folder of its own" in str(info.value)
    for value in ("results", "../elsewhere", str(tmp_path / "project" / "out")):
        refuse_unsafe_folders(validate_config(with_changes(**{key: value})), workdir)


def test_rule_resources_take_the_rule_then_default_then_the_schemas_fallback():
    from precipmodes.config import load_schema, rule_resources

    config = validate_config(with_changes(resources={"svd": {"threads": 8}, "default": {"mem_mb": 9000}}))
    assert rule_resources(config, "svd", "threads") == 8              # the rule's own
    assert rule_resources(config, "svd", "mem_mb") == 9000            # resources.default
    assert rule_resources(config, "svd", "runtime") == 60             # the schema's fallback for svd
    assert rule_resources(config, "download", "mem_mb") == 9000
    assert rule_resources(config, "download", "runtime") == 120
    fallbacks = load_schema()["properties"]["resources"]["x-rule-fallbacks"]
    assert all(set(entry) == {"threads", "mem_mb", "runtime"} for entry in fallbacks.values())


def test_resources_of_a_rule_that_does_not_exist_are_refused():
    """A config written for the rule accumulate (gone: the partitions are read as one) would silently do
    nothing; it is refused naming the key."""
    with pytest.raises(ConfigError, match=r"resources\.accumulate: no rule of that name .* use one of default, raw"):
        validate_config(with_changes(resources={"accumulate": {"mem_mb": 16000}}))

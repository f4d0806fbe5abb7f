"""The documentation site builds offline and strict, from the sources it documents.

``mkdocs build --strict`` fails on any warning: a broken internal link or anchor, a page missing from the
navigation, a docstring mkdocstrings cannot render. The configuration reference is generated from the
config schema (also written to ``config/README.md``, which must be current), and the gallery from the
figures of the demo run the suite makes anyway (the ``demo_run`` fixture). The build runs with the network
cut off where possible (``unshare -n``), so the site never needs the internet.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import yaml
from helpers.workflow import REPO, offline_prefix, require

from precipmodes.config import load_schema
from precipmodes.schemadoc import render_reference


def key_paths(node, path="", root=None):
    """Every key path of the schema (``<name>`` for names the user chooses), as the reference spells it."""
    root = root or node
    while "$ref" in node:
        target = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    paths = [path] if path else []
    for key, child in node.get("properties", {}).items():
        paths += key_paths(child, f"{path}.{key}" if path else key, root)
    if isinstance(node.get("additionalProperties"), dict) and "properties" in node["additionalProperties"]:
        paths += key_paths(node["additionalProperties"], f"{path}.<name>", root)
    return paths


def test_config_readme_is_the_generated_reference():
    assert (REPO / "config" / "README.md").read_text() == render_reference(), (
        "config/README.md is out of date: run  python -m precipmodes.schemadoc config/README.md")


def test_reference_names_every_key_with_a_description():
    text = render_reference()
    # a top-level section is a heading with its description below it, every other key a table row
    rows = dict(re.findall(r"^## `([^`]+)`\n\n(?:(?!\|)(.+)\n)?", text, re.M))
    rows |= dict(re.findall(r"^\| `([^`]+)` \|.*\| ([^|]*) \|$", text, re.M))
    missing = [path for path in key_paths(load_schema()) if path not in rows]
    assert not missing, f"keys missing from the reference: {missing}"
    undescribed = [path for path, meaning in rows.items() if not meaning.strip()]
    assert not undescribed, f"schema keys without a description: {undescribed}"


def test_readme_config_for_your_own_data_runs_on_the_eobs_file(shared_data, tmp_path):
    """The README's E-OBS config validates as written and, pointed at the real file, reads it (raw) and plans
    the whole run: its variable, domain and split fit the file."""
    import xarray as xr
    from helpers.workflow import run_snakemake

    from precipmodes.config import validate_config

    text = (REPO / "README.md").read_text()
    section = re.search(r"^## Your own data\n(.*?)(?=^## )", text, re.S | re.M).group(1)
    config = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    validated = validate_config(config)
    assert validated["source"]["files"]["variable"] == "pr" and validated["experiments"]["djf"]["months"] == [12, 1, 2]
    assert validated["domain"]["resolution"] is None
    (path,) = config["source"]["files"]["paths"]
    (data := tmp_path / "data").mkdir()
    (data / os.path.basename(path)).symlink_to(shared_data / os.path.basename(path))  # read in place
    (tmp_path / "eobs.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(tmp_path, "runs/eobs/prepared/raw.nc", "--cores", "1", "--configfile", str(tmp_path / "eobs.yaml"))
    with xr.open_dataset(shared_data / os.path.basename(path)) as eobs, \
            xr.open_dataset(tmp_path / "runs/eobs/prepared/raw.nc") as raw:
        assert (raw.sizes["lat"], raw.sizes["lon"]) == (eobs.sizes["lat"], eobs.sizes["lon"]) == (19, 29)
    planned = run_snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "eobs.yaml"))
    assert "svd" in planned.stdout and "figures" in planned.stdout


def test_site_builds_strict_offline_with_the_demo_gallery(demo_run, tmp_path):
    require(importlib.util.find_spec("mkdocs") is not None and importlib.util.find_spec("mkdocstrings") is not None,
            "mkdocs and mkdocstrings not installed (pip install -e '.[docs]')")
    results = demo_run / "results"
    figures = sorted(results.glob("*/figures/*.png"))
    assert figures, f"the demo run drew no figures in {results}"
    site = tmp_path / "site"
    env = {**os.environ, "PRECIPMODES_GALLERY_RESULTS": str(results)}
    result = subprocess.run(offline_prefix() + [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    gallery = (site / "gallery" / "index.html").read_text()
    for png in figures:
        experiment = png.parent.parent.name
        assert (site / "gallery" / experiment / png.name).read_bytes() == png.read_bytes()
        assert f'src="{experiment}/{png.name}"' in gallery, png.name
    assert "SVD spatial modes of experiment" in gallery  # the report's caption, experiment filled in
    reference = (site / "reference" / "configuration" / "index.html").read_text()
    assert all(f"<code>{path.replace('<', '&lt;').replace('>', '&gt;')}</code>" in reference
               for path in key_paths(load_schema()))
    api = (site / "api" / "index.html").read_text()
    assert all(name in api for name in ("precipmodes.decomposition.svd.SVD", "precipmodes.decomposition.nmf.NMF", "validate_config"))
    assert (site / "benchmarks" / "figures" / "nmf_error_vs_time.png").is_file()


def test_readme_is_a_front_page_whose_links_resolve():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    targets = {link.split("#")[0] for link in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in link}
    assert targets and not [t for t in targets if not (REPO / t).exists()]

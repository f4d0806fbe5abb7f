"""MkDocs hooks: the pages generated at build time (mkdocs.yml ``hooks:``).

- ``reference/configuration.md``: the configuration reference, rendered from the config schema
  (:func:`precipmodes.schemadoc.render_reference`, the same text as ``config/README.md``);
- ``benchmarks/index.md`` and its figures: ``benchmarks/README.md``, the one home of the benchmark tables;
- ``gallery.md`` and its images: every figure of a run's results folder (``PRECIPMODES_GALLERY_RESULTS``,
  default ``results``), captioned with the report captions of ``workflow/report/<figure>.rst``. CI builds
  the site from the demo run of the test suite (tests/workflow/demo_run/test_docs.py); without a results folder the page
  says how to fill it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import jinja2

from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from precipmodes.schemadoc import render_reference  # noqa: E402


def _run_config(results: Path) -> dict:
    """The run's config as its outputs' provenance sidecars (``<file>.nc.json``) record it, merged."""
    config: dict = {}
    for sidecar in sorted(results.rglob("*.nc.json")):
        for key, value in json.loads(sidecar.read_text()).get("config", {}).items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
    return config


def _caption(figure: str, experiment: str, config: dict) -> str:
    """The report caption of ``figure`` (the Jinja template workflow/report/<figure>.rst, rendered as
    Snakemake renders it for the report: the run's config and the figure's experiment)."""
    rst = REPO / "workflow" / "report" / f"{figure}.rst"
    if not rst.is_file():
        return ""
    snakemake = SimpleNamespace(config=config, wildcards=SimpleNamespace(experiment=experiment))
    text = jinja2.Environment(undefined=jinja2.ChainableUndefined).from_string(rst.read_text()).render(
        snakemake=snakemake)
    return " ".join(text.replace("``", "`").split())


def _gallery(results: Path, config) -> tuple[str, list[File]]:
    figures = sorted(results.glob("*/figures/*.png"))
    if not figures:
        return ("# Gallery\n\nNo figures: build the site after a run, with its results folder in "
                "`PRECIPMODES_GALLERY_RESULTS` (default `results/`):\n\n```bash\nsnakemake --cores all && "
                "mkdocs build --strict\n```\n"), []
    lines = ["# Gallery\n",
             f"The figures of the run this site was built from (`{results.name}/`; CI builds it from the demo "
             "run of its tests: SYNTHETIC data), with the captions of the Snakemake report. They are drawn by "
             "the run, not kept in the repository.\n"]
    files = []
    run_config = _run_config(results)
    for experiment in sorted({path.parent.parent.name for path in figures}):
        lines.append(f"\n## Experiment `{experiment}`\n")
        for path in (p for p in figures if p.parent.parent.name == experiment):
            target = f"gallery/{experiment}/{path.name}"
            files.append(File.generated(config, target, abs_src_path=str(path)))
            lines.append(f"\n### {path.stem}\n\n![{path.stem}]({target})\n\n{_caption(path.stem, experiment, run_config)}\n")
    return "".join(lines), files


def on_files(files: Files, config) -> Files:
    files.append(File.generated(config, "reference/configuration.md", content=render_reference()))
    files.append(File.generated(config, "benchmarks/index.md",
                                content=(REPO / "benchmarks" / "README.md").read_text()))
    for image in sorted((REPO / "benchmarks" / "figures").glob("*.png")):
        files.append(File.generated(config, f"benchmarks/figures/{image.name}", abs_src_path=str(image)))
    results = Path(os.environ.get("PRECIPMODES_GALLERY_RESULTS", REPO / "results")).resolve()
    page, images = _gallery(results, config)
    files.append(File.generated(config, "gallery.md", content=page))
    for image in images:
        files.append(image)
    return files

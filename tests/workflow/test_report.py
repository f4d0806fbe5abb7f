"""`snakemake --report` gives one self-contained HTML; headless Chromium renders every figure in it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

from helpers import figures_synthetic as fs
import pytest
from helpers.workflow import offline_prefix, require
from helpers.figures_synthetic import figure_run  # noqa: F401 (session fixture)

pytestmark = pytest.mark.workflow

# Appended to a copy of the report: after the page (a React app) loads, measure where the landing page's
# title sits and read the collapsed config, decode every embedded figure, show one through the app's own
# image view, and write what rendered into <pre id="figure-check">.
CHECK_SCRIPT = """<script>
window.addEventListener('load', () => setTimeout(async () => {
  const out = {};
  const title = document.querySelector('#app h1.title');
  const box = title ? title.getBoundingClientRect() : null;
  out['(title)'] = box ? {top: box.top, bottom: box.bottom, text: title.textContent,
                          viewport: [window.innerWidth, window.innerHeight]} : null;
  const details = document.querySelector('details.precipmodes-config');
  const config = document.getElementById('precipmodes-config');
  out['(config)'] = details ? {open: details.open, summary: details.querySelector('summary').textContent,
                               text: config ? config.textContent : ''} : null;
  for (const [path, r] of Object.entries(results)) {
    const img = new Image();
    await new Promise(done => { img.onload = done; img.onerror = done; img.src = r.data_uri; });
    out[path] = {width: img.naturalWidth, height: img.naturalHeight, caption: (r.caption || '').length};
  }
  const first = Object.keys(results)[0];
  app.setView({content: 'img', contentPath: results[first].data_uri, resultPath: first});
  await new Promise(done => setTimeout(done, 1000));
  const shown = document.querySelector('#app img[src^="data:image/png"]');
  out['(app view)'] = shown ? {width: shown.naturalWidth, height: shown.naturalHeight} : null;
  const pre = document.createElement('pre');
  pre.id = 'figure-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}, 500));
</script>"""


@pytest.fixture(scope="module")
def report(figure_run):  # noqa: F811
    result = fs.run_figure_rules(figure_run, "--report", str(figure_run / "report.html"))
    assert result.returncode == 0, result.stderr[-4000:]
    return figure_run / "report.html"


def test_report_is_self_contained_with_config_and_captions(report):
    html = report.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']https?:", html), "report loads remote resources"
    for name in fs.FIGURE_NAMES:
        assert f"results/small/figures/{name}.png" in html
    assert "coastline_resolution" in html and "SYNTHETIC demo data" in html  # config + workflow description
    assert "Key numbers of experiment" in html


def test_report_figures_render_in_headless_chromium(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    require(chromium is not None, "Debian chromium not installed (tests/run_tests.sh installs it as root)")
    page = tmp_path / "check.html"
    html = report.read_text()
    cut = html.rindex("</body>")
    page.write_text(html[:cut] + CHECK_SCRIPT + html[cut:])
    command = offline_prefix() + [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,900", "--virtual-time-budget=30000",
        "--dump-dom", page.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="figure-check">(.*?)</pre>', result.stdout, re.S)
    assert found, f"check script did not finish:\n{result.stderr[-3000:]}"
    rendered = json.loads(found.group(1))
    for name in fs.FIGURE_NAMES:
        entry = rendered[f"results/small/figures/{name}.png"]
        assert entry["width"] > 200 and entry["height"] > 100, name
        assert entry["caption"] > 100, f"{name}: no caption"
    assert rendered["(app view)"] and rendered["(app view)"]["width"] > 200
    title = rendered["(title)"]
    assert title and "principal patterns of precipitation" in title["text"]
    width, height = title["viewport"]  # a 1400 x 900 window (less the browser's own bars in height)
    assert width == 1400 and height <= 900, title
    assert 0 <= title["top"] and title["bottom"] <= height, f"the title is outside the first viewport: {title}"
    config = rendered["(config)"]
    assert config and not config["open"] and "Configuration of this run" in config["summary"], config
    resolved = json.loads(config["text"])  # the collapsed config is the run's full, readable JSON
    assert resolved["figures"]["coastline_resolution"] and resolved["results_dir"] == "results"


def test_report_subcategories_have_no_sort_prefixes(report):
    html = report.read_text()
    for name in ("Data selection", "Key numbers", "Modes", "Test period", "Time series"):
        assert f'"{name}"' in html, name
    assert not re.search(r'"\d (key numbers|data selection|modes|time series|test period|demo truth)"', html)


def test_report_carries_the_runtime_of_every_job_that_ran(report, figure_run):  # noqa: F811
    """The report's Statistics page charts each job's runtime (Snakemake's job metadata); the same jobs are in
    the timing table the workflow writes at the end of the run (results/logs/timings.tsv, from each job's log)."""
    from precipmodes.steps.runhooks import timing_table

    html = report.read_text()
    spec = re.search(r"var runtimes_spec = (\{.*?\});\s*$", html, re.M | re.S)
    assert spec, "no runtimes chart in the report"
    runtimes = json.loads(spec.group(1))["data"]["values"]
    charted = sorted(r["rule"] for r in runtimes)
    logged = sorted(rule for rule, _, _ in timing_table(figure_run / "results" / "logs"))
    assert charted == logged == sorted(fs.FIGURE_RULES), (charted, logged)  # one job per figure rule
    assert all(r["runtime"] > 0 for r in runtimes)
    table = (figure_run / "results" / "logs" / "timings.tsv").read_text().splitlines()
    assert table[0] == "rule\tlog\tseconds\tshare" and len(table) == len(logged) + 1

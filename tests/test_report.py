"""``execo-sweep report``: the page is written by the real command, then opened in a real
headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it) from ``file://``."""

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import textwrap

import pytest
from browser import DevTools, dump_dom, find_chromium, parse_html, screenshot

from execo_engine.cli.report.page import script_json, table
from execo_engine.sweep import ParamSweeper, sweep

#: A level whose markup would, if it ran, change the title and add an element.
EVIL = (
    "<img src=x onerror=\"document.title='pwned';"
    "document.body.appendChild(document.createElement('pwned'))\">"
)
#: A recorded value's name that would end a <script> element and start another (and, were
#: plotly to read it as its markup, break a line and turn bold).
EVIL_NAME = "</script><script>document.title='pwned'</script><!--<br><b>bold</b>"
GRID = {"size": [1, 2, 4], "algo": ["quick", EVIL], "seed": [1, 2]}
ERROR = f"ValueError: {EVIL}\n  in test_sort"


def cli(*args, check=True, timeout=300, **options):
    result = subprocess.run(
        [sys.executable, "-m", "execo_engine", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        **options,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="session")
def chromium():
    """Chromium's binary (skipped where it is missing, except in CI, where .ci/run installs
    it)."""
    found = find_chromium()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed: .ci/run installs it (apt-get install chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return found


def latency(combination):
    return (
        combination["size"] * (1.5 if combination["algo"] == EVIL else 1.0)
        + combination["seed"] / 10
    )


def make_sweep(location):
    """12 combinations: 8 done with results, 2 failed for good (2 attempts each), 1 with one
    failed attempt (todo again), 1 claimed by a process that died."""
    combinations = sweep(GRID)
    sweeper = ParamSweeper(location, combinations, save_sweeps=True, max_attempts=2)
    failing = [c for c in combinations if c["size"] == 4 and c["algo"] == "quick"]
    retried = next(c for c in combinations if c["size"] == 4 and c["algo"] == EVIL)
    held = next(c for c in combinations if c["size"] == 4 and c["algo"] == EVIL and c != retried)
    for combination in failing:
        for _ in range(2):
            assert sweeper.take(combination) is None
            sweeper.fail(combination, ERROR)
    assert sweeper.take(retried) is None
    sweeper.fail(retried, "TimeoutError: once")
    for combination in combinations:
        if combination["size"] != 4:
            assert sweeper.take(combination) is None
            values = {"latency": latency(combination), EVIL_NAME: 1.0, "label": combination["algo"]}
            sweeper.record_result(combination, values, "passed", 0.01 * combination["size"])
            sweeper.done(combination)
    code = textwrap.dedent(f"""
        import os, sys
        from execo_engine.sweep import HashableDict, ParamSweeper
        assert ParamSweeper({str(location)!r}).take(HashableDict({dict(held)!r})) is None
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    return combinations


def tables(page_text):
    """The tables' data the page carries (parsed as the browser parses it)."""
    root = parse_html(page_text)
    return {t["id"]: t for t in json.loads(root.find("script", id="report-tables").text())}


def column(spec, name):
    """The cells of column ``name`` of a table's data."""
    [found] = [c for c in spec["columns"] if c["name"] == name]
    if "levels" in found:
        return [found["levels"][code] for code in found["codes"]]
    return found["values"]


@pytest.mark.slow
def test_report_in_a_browser_counts_failures_figures_and_hostile_text(tmp_path, chromium, poll):
    directory, page = tmp_path / "sweep", tmp_path / "out" / "report.html"
    page.parent.mkdir()
    make_sweep(directory)
    written = cli("report", directory, "-o", page)
    assert f"wrote {page}" in written.stdout
    assert [p.name for p in page.parent.iterdir()] == ["report.html"]  # no temporary left

    text = page.read_text()
    static = parse_html(text)
    # self-contained: no external resource, plotly.js inlined once, a policy allowing no network
    assert not [e for e in static.iter() if e.attrs.get("src") or e.tag in ("link", "iframe")]
    assert text.count("plotly.js v") == 1
    policy = static.find("meta", http_equiv="Content-Security-Policy").attrs["content"]
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy.split("script-src")[1]

    dom = dump_dom(chromium, str(page))
    root = parse_html(dom)
    assert root.find("title").text() == f"Sweep report: {directory}"  # the handler never ran
    assert not root.find_all("img") and not root.find_all("pwned")
    assert "<pwned" not in dom

    # progress: the counts of the sweep, and the dead owner
    row = root.find("tr", id="sweep-0")
    counts = {
        state: row.find("td", cls=f"n-{state}").text()
        for state in ("done", "failed", "inprogress", "skipped", "remaining", "total")
    }
    assert counts == {
        "done": "8",
        "failed": "2",
        "inprogress": "1",
        "skipped": "0",
        "remaining": "1",
        "total": "12",
    }
    assert row.find("td", cls="n-dead").text().startswith("1")
    # nobody alive works on it: no rate, no time left
    assert (row.find("td", cls="n-rate").text(), row.find("td", cls="n-left").text()) == (
        "idle",
        "-",
    )
    assert "execo-sweep reclaim" in root.find("section", id="progress").text()

    # failures, drawn by the page's script: each combination with its attempts and last error
    failures = root.find("table", id="table-failures")
    heads = [th.text() for th in failures.find("thead").find("tr").find_all("th")]
    shown = [
        dict(zip(heads, (td.text() for td in tr.find_all("td")), strict=True))
        for tr in failures.find("tbody").find_all("tr")
    ]
    assert sorted((r["seed"], r["attempts"], r["state"], r["last error"]) for r in shown) == [
        ("1", "1", "todo", "TimeoutError: once"),
        ("1", "2", "failed", ERROR),
        ("2", "2", "failed", ERROR),
    ]

    # per factor: the hostile level is a row, as text
    algo = root.find("table", cls="factor", data_factor="algo")
    levels = {tr.find("td").text(): tr for tr in algo.find("tbody").find_all("tr")}
    assert set(levels) == {"quick", EVIL}
    assert levels["quick"].find("td", cls="n-failed").text() == "2"

    # figures: each numeric value (and the duration) against each factor, drawn by plotly
    figures = root.find_all("div", cls="figure")
    assert len(figures) == 3 * 3
    assert all("js-plotly-plot" in f.classes and f.find("svg", cls="main-svg") for f in figures)
    titles = {f.find("text", cls="gtitle").text() for f in figures}
    assert titles == {f"{v} by {f}" for v in ("latency", EVIL_NAME, "duration") for f in GRID}
    legends = {t.text() for f in figures for t in f.find_all("text", cls="legendtext")}
    assert f"algo={EVIL}" in legends  # plotly shows the markup as text
    ticks = {t.text() for f in figures for t in f.find_all("g", cls="xtick")}
    assert EVIL in ticks

    # results: the hostile value name is a column, each result a row
    results = root.find("table", id="table-results")
    heads = [th.text() for th in results.find("thead").find("tr").find_all("th")]
    assert EVIL_NAME in heads and "latency" in heads
    assert len(results.find("tbody").find_all("tr")) == 8

    png = tmp_path / "report.png"
    screenshot(chromium, str(page), str(png))
    from PIL import Image

    with Image.open(png) as image:
        pixels = image.convert("RGB")
        colours = pixels.getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 50  # text, bars: not a blank page
        present = {colour for _, colour in colours}
        assert (0x2E, 0x7D, 0x32) in present and (0xC6, 0x28, 0x28) in present  # done, failed
        white = sum(n for n, colour in colours if colour == (255, 255, 255))
        assert white < 0.97 * image.width * image.height


@pytest.mark.slow
def test_tables_sort_filter_and_hostile_text_stays_text_without_the_policy(tmp_path, chromium):
    """Escaping alone keeps hostile text as text: the page's Content-Security-Policy is
    bypassed here, so that nothing but the escaping stands in the way."""
    directory, page = tmp_path / "sweep", tmp_path / "report.html"
    combinations = make_sweep(directory)
    cli("report", directory, "-o", page)
    browser = DevTools(chromium)
    try:
        browser.call("Page.setBypassCSP", browser.session, enabled=True)
        browser.open(page.as_uri())
        assert browser.evaluate("document.title") == f"Sweep report: {directory}"
        assert browser.evaluate("document.querySelectorAll('img, pwned').length") == 0
        assert browser.evaluate("document.querySelectorAll('.js-plotly-plot').length") == 9

        # hover, as plotly does it for the pointer (throttled: the label comes when it comes):
        # every result's combination, and the spread and count of each mean
        browser.evaluate("""window.hoverLines = () => Array.from(
            document.querySelectorAll('.hoverlayer .hovertext tspan.line')
        ).map(line => line.textContent);
        window.latencyBySize = () => Array.from(document.querySelectorAll('.js-plotly-plot'))
            .find(d => d.querySelector('.gtitle').textContent === 'latency by size')""")

        def hover(trace, point, shown):
            browser.evaluate(f"""(() => {{
                const div = latencyBySize();
                const k = div.data.findIndex(t => t.name === {json.dumps(trace)});
                Plotly.Fx.hover(div, [{{curveNumber: k, pointNumber: {point}}}]);
            }})()""")
            browser.wait_for(f"hoverLines().some(line => {shown})")
            return tuple(browser.evaluate("hoverLines()"))

        done = [c for c in combinations if c["size"] != 4]
        for point, combination in enumerate(sorted(done, key=latency)):
            value = f"latency = {latency(combination)!r}"
            dots = browser.evaluate(
                "latencyBySize().data.find(t => t.name === 'each result')"
                f".y.indexOf({latency(combination)!r})"
            )
            assert hover("each result", dots, f"line === {json.dumps(value)}") == (
                f"size={combination['size']}",
                f"algo={combination['algo']}",
                f"seed={combination['seed']}",
                value,
                "outcome: passed",
            ), point
        lows = [latency(c) for c in done if c["size"] == 1 and c["algo"] == "quick"]
        assert hover("algo=quick", 0, "line.startsWith('n = ')") == (
            "size=1",
            "algo=quick",
            f"latency: mean {sum(lows) / 2:.4g}",
            f"min {min(lows):.4g}, max {max(lows):.4g}, std {statistics.stdev(lows):.3g}",
            "n = 2 result(s)",
        )
        assert browser.evaluate("document.querySelectorAll('img, pwned').length") == 0

        read = """Array.from(document.querySelectorAll('#table-results tbody tr'))
            .map(tr => tr.children[%d].textContent)"""
        heads = browser.evaluate(
            "Array.from(document.querySelectorAll('#table-results thead tr:first-child th'))"
            ".map(th => th.textContent)"
        )
        at = heads.index("latency")
        expected = sorted(latency(c) for c in combinations if c["size"] != 4)
        click = f"document.querySelectorAll('#table-results thead tr:first-child th')[{at}].click()"
        browser.evaluate(click)
        assert [float(v) for v in browser.evaluate(read % at)] == expected
        browser.evaluate(click)
        assert [float(v) for v in browser.evaluate(read % at)] == expected[::-1]

        count = "document.querySelector('#holder-results .count').textContent"
        browser.evaluate(f"""(() => {{
            const box = document.querySelectorAll('#table-results tr.filters input')[{at}];
            box.value = '>2';
            box.dispatchEvent(new Event('input'));
        }})()""")
        kept = [v for v in expected if v > 2]
        browser.wait_for(f"{count}.startsWith('1\u2013{len(kept)} of {len(kept)} ')")
        assert sorted(float(v) for v in browser.evaluate(read % at)) == kept

        browser.evaluate("""(() => {
            const box = document.querySelector('#holder-results input[type=search]');
            box.value = '<img src=x';
            box.dispatchEvent(new Event('input'));
        })()""")
        mine = [v for v in kept if v in {latency(c) for c in combinations if c["algo"] == EVIL}]
        browser.wait_for(f"{count}.startsWith('1\u2013{len(mine)} of {len(mine)} ')")
        algo = heads.index("algo")
        assert set(browser.evaluate(read % algo)) == {EVIL}
        assert browser.evaluate("document.title") == f"Sweep report: {directory}"
        assert browser.evaluate("document.querySelectorAll('img, pwned').length") == 0
    finally:
        browser.close()


@pytest.mark.slow
def test_watch_rewrites_the_page_which_reloads_until_the_sweep_is_complete(
    tmp_path, chromium, poll
):
    directory, page = tmp_path / "sweep", tmp_path / "report.html"
    sweeper = ParamSweeper(directory, sweep({"n": [1, 2, 3]}), save_sweeps=True)

    def finish(combination):
        sweeper.record_result(combination, {"y": combination["n"] * 1.5})
        sweeper.done(combination)

    finish(sweeper.get_next())
    watching = subprocess.Popen(
        [sys.executable, "-m", "execo_engine", "report", directory, "-o", page, "--watch", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    browser = DevTools(chromium)
    summary = "document.getElementById('summary').textContent"
    filter_box = "document.querySelectorAll('#table-results tr.filters input')[1]"
    count = "document.querySelector('#holder-results .count').textContent"
    try:
        poll(page.exists, "the first page")
        text = page.read_text()
        assert text.endswith("</html>\n") and 'data-reload="0.5"' in text
        browser.open(page.as_uri())
        browser.wait_for(f"{summary}.includes('1 of 3 combinations done')")
        # a filter typed in the page survives its reloads (evaluated again if one interrupts)
        browser.wait_for(
            f"(() => {{ const box = {filter_box}; box.value = '>2';"
            " box.dispatchEvent(new Event('input')); return true; })()"
        )
        for combination in sweeper:
            finish(combination)
            # every read of the page while it is rewritten finds a whole page
            assert page.read_text().endswith("</html>\n")
        assert watching.wait(timeout=120) == 0, watching.stderr.read()
        assert 'data-reload=""' in page.read_text()
        # the open page reloaded itself and shows the last one, filtered as it was
        browser.wait_for(
            f"{summary}.includes('3 of 3 combinations done')"
            " && document.documentElement.getAttribute('data-ready-ms')"  # its script ran
        )
        assert "complete" in browser.evaluate(summary)
        assert browser.evaluate("document.body.getAttribute('data-reload')") == ""
        assert browser.evaluate(f"{filter_box}.value") == ">2"
        assert browser.wait_for(f"{count}.startsWith('1\u20132 of 2 (filtered from 3)') && {count}")
    finally:
        browser.close()
        if watching.poll() is None:
            watching.kill()
            watching.wait()
    assert "complete" in watching.stdout.read().splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "sweep"]


@pytest.mark.slow  # a watching subprocess
def test_ctrl_c_stops_the_watch_with_a_last_page_that_no_longer_reloads(tmp_path, poll):
    directory, page = tmp_path / "sweep", tmp_path / "report.html"
    ParamSweeper(directory, sweep({"n": [1, 2]}), save_sweeps=True)
    watching = subprocess.Popen(
        [sys.executable, "-m", "execo_engine", "report", directory, "-o", page, "--watch", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        poll(page.exists, "the first page")
        assert 'data-reload="60"' in page.read_text()
        watching.send_signal(signal.SIGINT)
        assert watching.wait(timeout=120) == 130, watching.stderr.read()
    finally:
        if watching.poll() is None:
            watching.kill()
            watching.wait()
    text = page.read_text()
    assert 'data-reload=""' in text and "--watch stopped at " in text
    assert watching.stdout.read().splitlines()[-1] == f"wrote {page}: watch stopped"


@pytest.mark.slow
def test_report_of_a_location_with_several_sweeps(location, tmp_path):
    """A directory or a PostgreSQL sweep holding two sweeps: a progress row, failures,
    figures and results for each."""
    make_sweep(location("top/first"))
    second = ParamSweeper(location("top/second"), sweep({"x": [1, 2]}), save_sweeps=True)
    for combination in second:
        second.record_result(combination, {"y": combination["x"] * 2.0})
        second.done(combination)
    page, top = tmp_path / "report.html", location("top")
    if top.startswith("postgresql://postgres@"):  # a password the page must not show
        top = top.replace("postgresql://postgres@", "postgresql://postgres:s3cr3t@")
    cli("report", top, "-o", page)
    text = page.read_text()
    assert "s3cr3t" not in text
    root = parse_html(text)
    progress = root.find("table", id="progress-table")
    names = [tr.find("span", cls="name").text() for tr in progress.find("tbody").find_all("tr")]
    assert [n.split("/")[-1] for n in names] == ["first", "second"]
    assert [td.text() for td in progress.find_all("td", cls="n-done")] == ["8", "2"]
    assert [td.text() for td in progress.find_all("td", cls="n-failed")] == ["2", "0"]
    data = tables(text)
    assert column(data["failures"], "sweep") == [names[0]] * 3
    assert sorted(column(data["results"], "sweep")) == [names[0]] * 8 + [names[1]] * 2
    figures = root.find_all("div", cls="figure")
    assert len(figures) == 9 + 1  # the second: y against x (no duration recorded)


SWEPT_TESTS = """
import pytest

@pytest.mark.execo_sweep({"size": [1, 2, 3], "algo": ["a", "b"]})
def test_sort(size, algo, execo_record):
    execo_record(latency=size * (2 if algo == "b" else 1) / 10)
    assert (size, algo) != (3, "b"), "too slow"

@pytest.mark.execo_sweep({"n": [1, 2]})
def test_fill(n, execo_record):
    execo_record(seconds=n / 4)
"""


@pytest.mark.slow
def test_report_of_a_pytest_sweep_dir_shows_each_sweep_and_the_run(pytester):
    pytester.makepyfile(test_grid=SWEPT_TESTS)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for command in (["init", "-q"], ["add", "test_grid.py"], ["commit", "-qm", "grid"]):
        subprocess.run([*git, *command], cwd=pytester.path, check=True, capture_output=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=pytester.path, check=True, capture_output=True, text=True
    ).stdout.strip()
    result = pytester.runpytest_subprocess("--execo-sweep-dir=results", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=7, failed=1)
    cli("report", pytester.path / "results", "-o", pytester.path / "report.html")
    text = (pytester.path / "report.html").read_text()
    root = parse_html(text)
    progress = root.find("table", id="progress-table")
    done = {
        tr.find("span", cls="name").text(): tr.find("td", cls="n-done").text()
        for tr in progress.find("tbody").find_all("tr")
    }
    assert sorted(done.values()) == ["2", "5"] and len(done) == 2
    sort, fill = sorted(done, key=lambda name: "test_fill" in name)
    assert (done[sort], done[fill]) == ("5", "2")
    data = tables(text)
    assert sorted(column(data["results"], "sweep")) == sorted([sort] * 6 + [fill] * 2)
    [error] = column(data["failures"], "last error")
    assert error.startswith("test_grid.py:6: AssertionError: too slow")
    runs = data["runs"]
    assert sorted(column(runs, "sweep")) == sorted(done)  # the session wrote to both sweeps
    assert column(runs, "commit") == [commit, commit]
    assert sorted(column(runs, "results")) == [2, 6]
    assert len(set(column(runs, "id"))) == 1
    assert len(root.find_all("div", cls="figure")) == 2 * 2 + 2  # latency, duration; seconds


@pytest.mark.slow  # a worker subprocess
def test_a_live_worker_gives_a_rate_and_a_time_left(tmp_path):
    directory, page = tmp_path / "sweep", tmp_path / "report.html"
    sweeper = ParamSweeper(directory, sweep({"n": list(range(10))}), save_sweeps=True)
    for combination in sweeper.get_next_batch(3):
        sweeper.record_result(combination, {"y": 1.0})
        sweeper.done(combination)
    sweeper.get_next()  # held by this live process
    cli("report", directory, "-o", page)
    row = parse_html(page.read_text()).find("tr", id="sweep-0")
    assert row.find("td", cls="n-workers").text() == f"1{socket.gethostname()}:{os.getpid()}"
    pace, left = row.find("td", cls="n-rate").text(), row.find("td", cls="n-left").text()
    assert re.fullmatch(r"[0-9.e+]+/(s|min|h|day)", pace), pace
    assert re.fullmatch(r"\d+ s|\d+ min \d\d s|\d+ h \d\d min|\d+ d \d\d h", left), left


def test_report_without_saved_sweeps_nor_results_says_so(tmp_path):
    directory, page = tmp_path / "plain", tmp_path / "report.html"
    combinations = sweep({"n": [1, 2, 3]})
    ParamSweeper(directory, combinations).done(combinations[0])  # execo's default: not saved
    cli("report", directory, "-o", page)
    text = page.read_text()
    assert "Per-factor counts need saved sweeps" in text
    assert "No numeric value recorded yet" in text
    assert "No result recorded yet." in text and "results" not in tables(text)


def test_report_of_a_sweep_of_elements_that_are_not_dicts(tmp_path):
    directory, page = tmp_path / "plain", tmp_path / "report.html"
    sweeper = ParamSweeper(directory, [1, 2, (3, "<b>")], save_sweeps=True, max_attempts=1)
    sweeper.take(1)
    sweeper.record_result(1, {"y": 2.0})
    sweeper.done(1)
    sweeper.take(2)
    sweeper.fail(2, "boom")
    cli("report", directory, "-o", page)
    text = page.read_text()
    data = tables(text)
    assert column(data["failures"], "combination") == [2]
    assert column(data["results"], "combination") == [1]
    assert "Per-factor counts need saved sweeps of dicts" in text


@pytest.mark.parametrize(
    "args,message",
    [
        (["report", "{missing}"], "no such directory"),
        (
            ["report", "{sweep}", "--watch", "0"],
            "--watch 0: give a finite number of seconds above 0",
        ),
        (
            ["report", "{sweep}", "--watch", "inf"],
            "--watch inf: give a finite number of seconds above 0",
        ),
        (["report", "{sweep}", "-o", "{sweep}"], "a directory; give the path of the HTML file"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, args, message):
    ParamSweeper(tmp_path / "sweep", sweep({"n": [1]}), save_sweeps=True)
    paths = {"missing": tmp_path / "missing", "sweep": tmp_path / "sweep"}
    result = cli(*[a.format(**paths) for a in args], check=False)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_without_plotly_the_message_says_how_to_install_it(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "plotly.py").write_text("raise ImportError('No module named plotly')\n")
    ParamSweeper(tmp_path / "sweep", sweep({"n": [1]}), save_sweeps=True)
    result = cli(
        "report",
        tmp_path / "sweep",
        check=False,
        env={**os.environ, "PYTHONPATH": str(shadow)},
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "pip install 'execo_engine[report]'" in result.stderr
    assert not (tmp_path / "report.html").exists()


def test_json_in_a_script_element_cannot_end_it():
    value = {"</script><!--": ["<img src=x>", "a & b", "\u2028\u2029", "é"]}
    text = script_json(value)
    assert json.loads(text) == value
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}


def test_table_columns_carry_repeated_cells_once():
    rows = [{"level": "a" if i % 2 else "<b>", "x": i / 3, "n": None} for i in range(100)]
    spec = table("t", rows, ["level", "x", "n"])
    level, x, n = spec["columns"]
    assert (level["type"], level["levels"], level["codes"][:3]) == ("text", ["<b>", "a"], [0, 1, 0])
    assert (x["type"], x["values"]) == ("number", [i / 3 for i in range(100)])
    assert n["levels"] == [None] and spec["rows"] == 100


def test_watch_of_a_sweep_of_no_combination_writes_one_page_and_stops(tmp_path):
    ParamSweeper(tmp_path / "empty", [], save_sweeps=True)
    page = tmp_path / "empty.html"
    # looping, it would write a page every 0.05 s until the timeout fails the test
    result = cli("report", tmp_path / "empty", "-o", page, "--watch", "0.05", timeout=60)
    assert result.stdout == f"wrote {page} (0/0 done, complete)\n"
    assert '<body data-reload="">' in page.read_text()  # the page no longer reloads

"""The course in a real JupyterLab, driven through headless Chromium (Playwright), as a learner would use it.

For 01_learner and every lesson with an explorer (an ipywidgets `interactive`, `.widget-interact` in the page):
Run All must finish with no error output. Every change of every slider, dropdown and checkbox of every explorer must
draw a new plot: each control is changed and back twice at the defaults (median redraw ≤ 0.5 s), then every slider
goes to End and to Home (each redraw ≤ 1.5 s). Each explorer then shows exactly one plot and no widget error. In 01, ProgressCB's Output holds the loss plot as an image, and no
notebook shows `<Figure size ...>` text. The latencies go to a markdown table (WSCOURSE_BROWSER_REPORT, default
build/browser_report.md) and to stdout.

Skips without Chromium (/usr/bin/chromium, or WSCOURSE_CHROMIUM) or playwright, unless WSCOURSE_BROWSER=required.
WSCOURSE_BROWSER_BUSY=1 keeps one core busy meanwhile, to see the latencies under load.

Pitfalls: never `playwright install` (we use the system Chromium, with --no-sandbox for root). The server serves
a temp copy of nbs/ with outputs stripped, so nothing is saved into the repo and every <img> is drawn by this
run. `page.evaluate` waits for a returned promise: Run All's resolves only when every cell has run, so it is
started without returning it. Some changes redraw a byte-identical PNG: a redraw is a new <img> element (a MutationObserver, times from
performance.now() in the page), never a changed src. Sliders are ~125 px wide: drive them with the keyboard on
`.noUi-handle`, not by dragging. Run All stops at an error, so "done" is kernel idle with no `[*]` prompt left.
Reopening a notebook reuses its kernel: each notebook's session is deleted (REST, X-XSRFToken from the `_xsrf`
cookie, from inside the page) and its tab closed.
"""
import contextlib, json, os, secrets, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get('WSCOURSE_CHROMIUM', '/usr/bin/chromium')
REPORT = Path(os.environ.get('WSCOURSE_BROWSER_REPORT', ROOT/'build'/'browser_report.md'))
BUDGET = {'default': 0.5, 'extreme': 1.5}       # seconds from the input event to the new plot (issue 18)
RUN_ALL_TIMEOUT = 420_000                       # ms per notebook: 01's DDP cell launches torchrun

def missing_tools():
    "Why the browser test can't run here, or None."
    if not os.access(CHROMIUM, os.X_OK): return f'no Chromium at {CHROMIUM}'
    try: import playwright.sync_api  # noqa: F401
    except ImportError: return 'playwright is not installed'

MISSING = missing_tools()
if MISSING and os.environ.get('WSCOURSE_BROWSER') != 'required':
    pytest.skip(f'{MISSING} (WSCOURSE_BROWSER=required makes this a failure)', allow_module_level=True)

def code_sources(nb):
    return [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']

NOTEBOOKS = ['01_learner.ipynb'] + sorted(nb.name for nb in (ROOT/'nbs').glob('[0-9][0-9]_*.ipynb')
                                          if any('interactive(' in s or '_explorer(' in s for s in code_sources(nb)))

# JupyterLab user settings for the run: no news/update toast; every cell attached to the DOM; no autosave (a save of a
# notebook full of images, every 2 min, competes with a redraw for the 2 cores)
LAB_SETTINGS = {'@jupyterlab/apputils-extension/notification': {'fetchNews': 'false', 'checkForUpdates': False},
                '@jupyterlab/notebook-extension/tracker': {'windowingMode': 'none'},
                '@jupyterlab/docmanager-extension/plugin': {'autosave': False}}

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def strip_outputs(path):
    "Clear outputs, execution counts and saved widget state."
    nb = json.loads(path.read_text())
    for c in nb['cells']:
        if c['cell_type'] == 'code': c['outputs'], c['execution_count'] = [], None
    nb['metadata'].pop('widgets', None)
    path.write_text(json.dumps(nb, indent=1))

@contextlib.contextmanager
def jupyter_lab():
    "A JupyterLab server on a temp copy of nbs/ (outputs stripped, trusted), Jupyter dirs in the temp dir; yields its URL."
    tmp, proc, log = Path(tempfile.mkdtemp(prefix='wscourse-browser-')), None, None
    try:
        root = tmp/'nbs'
        shutil.copytree(ROOT/'nbs', root, ignore=shutil.ignore_patterns('.ipynb_checkpoints'))
        for nb in root.glob('*.ipynb'): strip_outputs(nb)
        for name, value in LAB_SETTINGS.items():
            f = tmp/'settings'/f'{name}.jupyterlab-settings'
            f.parent.mkdir(parents=True, exist_ok=True); f.write_text(json.dumps(value))
        env = {**os.environ, 'WSCOURSE_DATASET': 'digits', 'JUPYTERLAB_SETTINGS_DIR': str(tmp/'settings'),
               'JUPYTERLAB_WORKSPACES_DIR': str(tmp/'workspaces'), 'JUPYTER_CONFIG_DIR': str(tmp/'config'),
               'JUPYTER_DATA_DIR': str(tmp/'data'), 'JUPYTER_RUNTIME_DIR': str(tmp/'runtime')}
        env.pop('MPLBACKEND', None)                 # the kernel must pick matplotlib's inline backend
        subprocess.run([sys.executable, '-m', 'jupyter', 'trust', *map(str, root.glob('*.ipynb'))],
                       env=env, check=True, capture_output=True)
        port, token, log = free_port(), secrets.token_hex(16), (tmp/'server.log').open('w')
        proc = subprocess.Popen([sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--allow-root',
                                 '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={port}', '--ServerApp.port_retries=0',
                                 f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={root}',
                                 '--LabApp.expose_app_in_browser=True', '--LabApp.extension_manager=readonly'],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        url, deadline = f'http://127.0.0.1:{port}', time.time() + 90
        while True:
            try: urllib.request.urlopen(f'{url}/api/status?token={token}', timeout=2); break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError('JupyterLab did not start:\n' + (tmp/'server.log').read_text()[-3000:])
                time.sleep(0.5)
        yield f'{url}/lab?token={token}'
    finally:
        if proc is not None:
            proc.terminate()
            try: proc.wait(20)
            except subprocess.TimeoutExpired: proc.kill(); proc.wait()
        if log: log.close()
        shutil.rmtree(tmp, ignore_errors=True)

# --- JupyterLab, from inside the page (window.jupyterapp: --LabApp.expose_app_in_browser) ---

PANEL = 'window.jupyterapp.shell.currentWidget'
KERNEL_IDLE = f"""(() => {{ const p = {PANEL}, s = p && p.sessionContext && p.sessionContext.session;
    return !!(s && s.kernel && s.kernel.status === 'idle')
        && ![...p.node.querySelectorAll('.jp-InputPrompt')].some(e => e.textContent.includes('*')); }})()"""

def open_lab(page, url):
    "Load JupyterLab and wait until its plugins are up and the layout is restored."
    page.goto(url)
    page.wait_for_function('window.jupyterapp', timeout=120_000)
    page.evaluate('async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }')

def open_notebook(page, name):
    "Open `name` and wait until its kernel is idle with no cell queued."
    page.evaluate("async name => { await window.jupyterapp.commands.execute('docmanager:open', {path: name}); }", name)
    page.wait_for_function(f"""name => {PANEL}.context.path === name && {KERNEL_IDLE}
        && {PANEL}.node.querySelector('.jp-Notebook-ExecutionIndicator[data-status=idle]')""", arg=name, timeout=120_000, polling=500)

def run_all(page):
    "Run All, then wait until the kernel has stayed idle with no `[*]` prompt for 2 s (Run All stops at an error)."
    page.evaluate(f"() => {{ window.__wsIdleSince = null; window.jupyterapp.commands.execute('runmenu:run-all'); }}")
    page.wait_for_timeout(1000)
    page.wait_for_function(f"""() => {{ if (!{KERNEL_IDLE}) return window.__wsIdleSince = null, false;
        window.__wsIdleSince = window.__wsIdleSince || performance.now();
        return performance.now() - window.__wsIdleSince > 2000; }}""", timeout=RUN_ALL_TIMEOUT, polling=500)

def cell_errors(page):
    "Every error output of the open notebook, as 'cell source\\n-> Ename: evalue'."
    return page.evaluate(f"""() => [...{PANEL}.content.model.cells].filter(c => c.type === 'code').flatMap(c =>
        c.outputs.toJSON().filter(o => o.output_type === 'error').map(o => c.sharedModel.getSource() + '\\n-> ' + o.ename + ': ' + o.evalue))""")

def unexecuted_cells(page):
    "Code cells with source that Run All left without an execution count."
    return page.evaluate(f"""() => [...{PANEL}.content.model.cells].filter(c => c.type === 'code'
        && c.sharedModel.getSource().trim() && c.executionCount == null).map(c => c.sharedModel.getSource().slice(0, 200))""")

def shut_down_and_close(page):
    "Delete the notebook's session (which stops its kernel), close its tab, and check no kernel is left."
    page.evaluate(f"""async () => {{ const p = {PANEL}, s = p && p.sessionContext && p.sessionContext.session;
        if (!s) return; const id = s.id; p.context.model.dirty = false; p.dispose();
        const xsrf = decodeURIComponent((document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '');
        const r = await fetch('/api/sessions/' + id, {{method: 'DELETE', headers: {{'X-XSRFToken': xsrf}}}});
        if (!r.ok) throw new Error('DELETE session: HTTP ' + r.status); }}""")
    for _ in range(60):
        if not page.evaluate("async () => (await (await fetch('/api/kernels')).json()).length"): return
        time.sleep(0.5)
    raise AssertionError('a kernel still runs 30 s after its session was deleted')

# --- explorers ---

# Per explorer i: times its <img> elements were added; t0 = the first input event after arming.
INSTRUMENT = f"""() => {{ const w = window.__ws = {{t0: null, armed: false, imgs: []}};
    if (!window.__wsListening) for (const ev of ['keydown', 'change', 'click']) document.addEventListener(ev, () => {{
        const w = window.__ws; if (w.armed && w.t0 === null) w.t0 = performance.now(); }}, true);
    window.__wsListening = true;
    [...{PANEL}.node.querySelectorAll('.widget-interact')].forEach((box, i) => {{
        box.dataset.wsExplorer = i; w.imgs.push([]);
        new MutationObserver(recs => {{ const t = performance.now();
            for (const r of recs) for (const n of r.addedNodes)
                if (n.nodeType === 1 && (n.tagName === 'IMG' || n.querySelector('img'))) w.imgs[i].push(t); }})
            .observe(box, {{childList: true, subtree: true}}); }});
    return w.imgs.length; }}"""

def redraw_latency(page, i, act, what):
    "Seconds from the input event of `act()` to a new <img> in explorer i (then waits for the kernel to idle)."
    page.evaluate('() => { window.__ws.t0 = null; window.__ws.armed = true; }')
    act()
    try:
        page.wait_for_function(f"i => {{ const w = window.__ws; return w.t0 !== null && w.imgs[i].some(t => t > w.t0) && {KERNEL_IDLE}; }}",
                               arg=i, timeout=30_000)
    except Exception as e:
        raise AssertionError(f'explorer {i}: no new plot within 30 s after {what}') from e
    return page.evaluate('i => { const w = window.__ws; w.armed = false; return (Math.min(...w.imgs[i].filter(t => t > w.t0)) - w.t0) / 1000; }', i)

def control_name_and_value(control):
    "A control's description and its current value as shown (readout, selected option, checked)."
    return control.evaluate("""e => { const clean = t => (t || '').replace(/\\u200b/g, '').trim();   // a checkbox's label is a zero-width space
        const label = clean((e.querySelector('.widget-label') || {}).innerText) || clean(e.innerText);
        const readout = e.querySelector('.widget-readout'), select = e.querySelector('select'), box = e.querySelector('input[type=checkbox]');
        return [label, readout ? readout.innerText : select ? select.value : box ? String(box.checked) : '?']; }""")

def all_of(box, css):
    return [box.locator(css).nth(j) for j in range(box.locator(css).count())]

ROUNDS = 3   # a control over budget is measured again, up to this many rounds: a busy moment of a shared CI machine is not the code

def drive_explorer(page, name, i, rows):
    """Change every control of explorer i and back, twice, then every slider to End, then to Home; appends table rows.
    A control whose round is over budget gets another round (at most ROUNDS), and the best round counts (over_budget)."""
    box = page.locator(f'[data-ws-explorer="{i}"]')
    def record(control, action, kind, act, round_):
        latency = redraw_latency(page, i, act, f'{control_name_and_value(control)[0]}: {action}')
        label, value = control_name_and_value(control)
        rows.append((f'{name} #{i}', label, f'{action} → {value}' + (f' (round {round_})' if round_ > 1 else ''), latency, kind))
        return latency
    def at_defaults(control, changes):
        "Rounds of changes (each returns to the default) until one round's median is within budget."
        import statistics
        for round_ in range(1, ROUNDS + 1):
            if statistics.median([record(control, what, 'default', act, round_) for what, act in changes]) <= BUDGET['default']: return
    sliders = all_of(box, '.widget-slider')
    for s in sliders:
        h = s.locator('.noUi-handle')
        at_max = h.get_attribute('aria-valuenow') == h.get_attribute('aria-valuemax')
        keys = (('ArrowLeft', 'ArrowRight') if at_max else ('ArrowRight', 'ArrowLeft')) * 2
        at_defaults(s, [(key, lambda key=key: h.press(key)) for key in keys])
    for d in all_of(box, '.widget-dropdown'):
        sel = d.locator('select')
        options, start = sel.locator('option').evaluate_all('os => os.map(o => o.value)'), sel.input_value()
        values = (options[(options.index(start) + 1) % len(options)], start) * 2
        at_defaults(d, [('select', lambda v=v: sel.select_option(v)) for v in values])
    for c in all_of(box, '.widget-checkbox'):
        at_defaults(c, [('click', lambda: c.locator('input').click())] * 4)
    back = {'End': 'ArrowLeft', 'Home': 'ArrowRight'}
    for key, bound in (('End', 'aria-valuemax'), ('Home', 'aria-valuemin')):   # cumulative: the last End has every slider at max
        for s in sliders:
            h = s.locator('.noUi-handle')
            if h.get_attribute('aria-valuenow') == h.get_attribute(bound): continue
            for round_ in range(1, ROUNDS + 1):
                if round_ > 1: redraw_latency(page, i, lambda: h.press(back[key]), f'one step back before round {round_}')
                if record(s, key, 'extreme', lambda: h.press(key), round_) <= BUDGET['extreme']: break

def check_explorer_shows_one_plot(page, i):
    "One plot at a time, and no widget error or traceback in explorer i."
    box = page.locator(f'[data-ws-explorer="{i}"]')
    text = box.inner_text()
    for bad in ('Error displaying widget', 'Model not found', 'Traceback'):
        assert bad not in text, f'explorer {i} shows {bad!r}:\n{text[-2000:]}'
    assert box.locator('img').count() == 1, f'explorer {i} shows {box.locator("img").count()} plots, not one'

def over_budget(rows):
    """Controls over budget in every round: at the defaults the median of a round's 4 changes (one stray slow frame is
    noise), at an extreme each redraw."""
    import re, statistics
    rounds = {}
    for e, c, a, t, k in rows:
        m = re.search(r' \(round (\d+)\)$', a)
        action, round_ = (a[:m.start()], int(m[1])) if m else (a, 1)
        key = (e, c, k) if k == 'default' else (e, c, k, action)
        rounds.setdefault(key, {}).setdefault(round_, []).append(t)
    over = []
    for key, by_round in rounds.items():
        medians = {r: statistics.median(ts) for r, ts in by_round.items()}
        if min(medians.values()) > BUDGET[key[2]]:
            over.append(f"{' '.join(key)}: {min(medians.values()):.2f} s at best (round medians {[round(m, 2) for m in medians.values()]}; budget {BUDGET[key[2]]} s)")
    return over

# --- the test ---

LATENCIES, RUN_ALL_SECONDS = [], {}

def latency_table():
    lines = ['| explorer | control | action | latency s | setting | within budget |', '|---|---|---|---|---|---|']
    lines += [f'| {e} | {c} | {a} | {t:.3f} | {k} | {"yes" if t <= BUDGET[k] else f"NO (> {BUDGET[k]} s)"} |' for e, c, a, t, k in LATENCIES]
    lines += ['', '| notebook | Run All s |', '|---|---|'] + [f'| {nb} | {t:.1f} |' for nb, t in RUN_ALL_SECONDS.items()]
    return '\n'.join(lines) + '\n'

@pytest.fixture(scope='module')
def page():
    "One Chromium page on JupyterLab for the module; the latency report is written when it ends."
    if MISSING: pytest.fail(f'WSCOURSE_BROWSER=required but {MISSING}')
    from playwright.sync_api import sync_playwright
    REPORT.unlink(missing_ok=True)
    busy = subprocess.Popen([sys.executable, '-c', 'while True: pass']) if os.environ.get('WSCOURSE_BROWSER_BUSY') == '1' else None
    try:
        with jupyter_lab() as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox'])
            try:
                page = browser.new_page(viewport={'width': 1400, 'height': 1000})
                open_lab(page, url)
                yield page
            finally: browser.close()
    finally:
        if busy: busy.kill(); busy.wait()
        if LATENCIES or RUN_ALL_SECONDS:
            REPORT.parent.mkdir(parents=True, exist_ok=True); REPORT.write_text(latency_table())
            print(f'\n{latency_table()}\n(written to {REPORT})')

@pytest.mark.parametrize('nb', NOTEBOOKS)
def test_notebook_in_jupyterlab(page, nb):
    "Run All without errors; ProgressCB's plot is an image; every explorer redraws within budget, one plot at a time."
    open_notebook(page, nb)
    try:
        t = time.perf_counter(); run_all(page); RUN_ALL_SECONDS[nb] = time.perf_counter() - t
        errors = cell_errors(page)
        assert not errors, f'{nb}: error outputs after Run All:\n\n' + '\n\n'.join(errors)
        assert not unexecuted_cells(page), f'{nb}: Run All left cells unexecuted: {unexecuted_cells(page)}'
        outputs = page.locator('.jp-OutputArea').all_inner_texts()
        assert not any('<Figure size' in o for o in outputs), f'{nb}: a Figure rendered as text'
        progress = page.locator('.widget-vbox:has(.widget-hprogress)')   # ProgressCB: bar, label, Output with the plot
        assert progress.count() or not nb.startswith('01_'), "01's fit shows no ProgressCB"
        for j in range(progress.count()):
            assert progress.nth(j).locator('.widget-output img').count() == 1, "ProgressCB's Output doesn't hold one plot image"
        n = page.evaluate(INSTRUMENT)
        assert n or nb.startswith('01_'), f'{nb}: no explorer (.widget-interact) rendered'
        first = len(LATENCIES)
        for i in range(n): drive_explorer(page, Path(nb).stem, i, LATENCIES)
        rows = LATENCIES[first:]
        for i in range(n): check_explorer_shows_one_plot(page, i)
        assert not over_budget(rows), 'redraws over budget:\n' + '\n'.join(over_budget(rows))
    finally:
        shut_down_and_close(page)

"""Run the course's widgets in real JupyterLab, in headless Chromium, and check that they work.

By default it opens the smallest notebook that holds both of notebook 02's widgets: 02's own parameters,
imports and beta-slider cells, and a compare panel over the models a course run saved in `<outputs>/models`
(01's SFT and 02's DPO model; the embedded model stands in for a missing one), so nothing is trained again.
`--notebook` opens a whole course notebook instead. JupyterLab runs on loopback with a random token, on a copy
(autosave never touches the course); every cell runs from the Run menu, then the beta slider is dragged and the
compare panel's Generate pressed, and the rendered output must change. Screenshots go to `<outputs>/browser/`.
Exit status 0 when every check passed.

Usage: python tools/browser_check.py [--notebook 02_dpo.ipynb|PATH] [--timeout 480]
Chromium: `SMOLKIT_CHROMIUM=/path/to/chrome`, else `chromium` on PATH (Debian: apt-get install chromium).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# User settings for the test's JupyterLab: no autosave, no news or update checks, every cell kept in the DOM.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
}


def log(message: str) -> None:
    """Progress on stderr (pytest shows it when the test fails)."""
    print(f"[browser_check {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BrowserCheckError(AssertionError):
    """A widget did not render or did not react, or the notebook did not run."""


def find_chromium() -> str:
    """The Chromium executable: $SMOLKIT_CHROMIUM, else chromium/chromium-browser/google-chrome on PATH."""
    path = os.environ.get("SMOLKIT_CHROMIUM") or next(
        (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)
    if not path or not os.access(path, os.X_OK):
        raise FileNotFoundError(
            "No Chromium found for the browser test. Install it (Debian/Ubuntu, as root: "
            "`apt-get install -y chromium`; `make test` does this itself when run as root), or point "
            "SMOLKIT_CHROMIUM at a Chrome/Chromium executable.")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_lab_settings(folder: Path) -> None:
    """Write the test's JupyterLab user settings (see LAB_SETTINGS) into `folder`."""
    for plugin, values in LAB_SETTINGS.items():
        path = folder / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@contextmanager
def jupyter_lab(root: Path, env: dict[str, str], log: Path, start_timeout: float = 90) -> Iterator[str]:
    """Run JupyterLab on 127.0.0.1 with a random token in `root`; yield its base URL with the token."""
    port, token = free_port(), secrets.token_hex(16)
    state = Path(tempfile.mkdtemp(prefix="lab-state-"))
    write_lab_settings(state / "settings")
    env = {**env, "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"), "JUPYTER_RUNTIME_DIR": str(state / "runtime")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False", "--LabApp.news_url=",
           "--LabApp.extension_manager=readonly", "--ServerApp.allow_remote_access=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--ServerApp.allow_root=True")  # CI and containers run as root
    with log.open("w") as log_file:
        proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=root,
                                start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + start_timeout
            while True:
                if proc.poll() is not None:
                    raise BrowserCheckError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise BrowserCheckError(f"JupyterLab did not answer within {start_timeout:.0f} s:\n"
                                            f"{log.read_text()[-3000:]}")
                time.sleep(0.5)
            yield f"{url}|{token}"
        finally:
            proc.terminate()  # the server shuts its kernels down on SIGTERM
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=10)
            shutil.rmtree(state, ignore_errors=True)


# JavaScript run in the page: the state of every code cell's prompt, and any error output.
CELL_STATE_JS = r"""() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')]
    .map(p => p.textContent.trim());
  const errors = [...document.querySelectorAll(
      '.jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(o => o.textContent).filter(t => /Traceback \(most recent call last\)/.test(t));
  return {prompts, errors};
}"""


def accept_kernel_dialog(page) -> None:
    """Accept JupyterLab's 'Select Kernel' dialog if it is open (it can open late on a busy machine)."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    if dialog.count():
        dialog.get_by_role("button", name="Select").click()
        dialog.wait_for(state="detached", timeout=30_000)


def kernel_idle(server: str) -> bool:
    """True when the server has a kernel running and it is idle (asked over the REST API)."""
    url, token = server.split("|")
    try:
        with urllib.request.urlopen(f"{url}/api/kernels?token={token}", timeout=5) as resp:
            kernels = json.load(resp)
    except OSError:
        return False
    return bool(kernels) and all(k.get("execution_state") == "idle" for k in kernels)


def click_run_all(page) -> None:
    """Run > Run All Cells, from JupyterLab's menu bar (after accepting a kernel dialog, if one is open)."""
    accept_kernel_dialog(page)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def run_all_cells(page, server: str, timeout: float, start_timeout: float = 120) -> float:
    """Run every cell from JupyterLab's Run menu; wait until all have run (or one failed). Returns seconds."""
    deadline = time.monotonic() + start_timeout
    while not kernel_idle(server):
        accept_kernel_dialog(page)
        if time.monotonic() > deadline:
            raise BrowserCheckError(f"the notebook's kernel was not up and idle within {start_timeout:.0f} s")
        time.sleep(1)
    click_run_all(page)
    start = last_click = time.monotonic()
    done_since = None
    while True:
        state = page.evaluate(CELL_STATE_JS)
        if state["errors"]:
            raise BrowserCheckError("a cell failed while running in JupyterLab:\n" + state["errors"][0][-3000:])
        if all(p == "[ ]:" for p in state["prompts"]):  # nothing queued: a dialog or a slow start ate the click
            if time.monotonic() - start > start_timeout:
                raise BrowserCheckError(f"Run All Cells started nothing within {start_timeout:.0f} s")
            if time.monotonic() - last_click > 20:
                log("no cell started yet; choosing Run All Cells again")
                click_run_all(page)
                last_click = time.monotonic()
        finished = state["prompts"] and all(p[1:-2].strip().isdigit() for p in state["prompts"])
        if finished:
            done_since = done_since or time.monotonic()
            if time.monotonic() - done_since > 2:  # stable: the kernel is not still picking up cells
                return time.monotonic() - start
        else:
            done_since = None
        if time.monotonic() - start > timeout:
            raise BrowserCheckError(f"cells still not all run after {timeout:.0f} s: prompts {state['prompts']}")
        time.sleep(1)


def cell_output(page, code: str):
    """The output area of the code cell whose source contains `code`."""
    cell = page.locator(".jp-CodeCell").filter(has=page.locator(".jp-InputArea-editor", has_text=code))
    if cell.count() != 1:
        raise BrowserCheckError(f"expected one cell containing {code!r}, found {cell.count()}")
    return cell.locator(".jp-OutputArea").first


def wait_changed(read, before: str, what: str, timeout: float = 60) -> str:
    """Poll `read()` until it differs from `before`; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = read()
        if now != before:
            return now
        time.sleep(0.5)
    raise BrowserCheckError(f"{what} did not change within {timeout:.0f} s (still {before[:200]!r})")


def widget_root(output, what: str):
    """The rendered ipywidgets view inside a cell's output, or a clear failure when it did not render."""
    view = output.locator(".jupyter-widgets").first
    try:
        view.wait_for(state="visible", timeout=30_000)
    except Exception as err:
        raise BrowserCheckError(f"the {what} widget did not render; the output shows: "
                                f"{output.inner_text()[:500]!r}") from err
    return view


def check_beta_slider(page, shots: Path) -> dict:
    """Drag the beta slider; the curve image and the printed summary must change."""
    output = cell_output(page, "show_beta_explorer(")
    widget_root(output, "beta slider")
    slider = output.locator(".widget-slider").first
    handle = slider.locator(".noUi-handle").first
    summary = output.locator(".widget-output .jp-OutputArea-output", has_text="beta=").first
    image = output.locator(".widget-output img").first
    summary.wait_for(timeout=30_000)
    handle.scroll_into_view_if_needed()
    before_text, before_img = summary.inner_text(), image.get_attribute("src")
    before_readout = slider.locator(".widget-readout").inner_text()
    shots.mkdir(parents=True, exist_ok=True)
    output.screenshot(path=str(shots / "beta_before.png"))
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()
    after_text = wait_changed(lambda: summary.inner_text(), before_text, "the beta explorer's printed summary")
    after_img = wait_changed(lambda: image.get_attribute("src"), before_img, "the beta explorer's loss curve")
    after_readout = slider.locator(".widget-readout").inner_text()
    output.screenshot(path=str(shots / "beta_after.png"))
    shown_beta = float(after_text.split("|")[0].removeprefix("beta="))
    if abs(shown_beta - float(after_readout)) > 0.001 * max(1.0, shown_beta):
        raise BrowserCheckError(f"summary {after_text[:60]!r} does not match the slider's readout {after_readout!r}")
    return {"readout": [before_readout, after_readout], "summary": [before_text[:40], after_text[:40]],
            "image_changed": before_img != after_img}


def check_compare_panel(page, shots: Path) -> dict:
    """Type a new prompt and press Generate; the side-by-side replies must be redrawn for that prompt."""
    output = cell_output(page, "show_compare(")
    widget_root(output, "compare panel")
    prompt_box = output.locator(".widget-textarea textarea").first
    result = output.locator(".smolkit-compare").first
    result.wait_for(timeout=30_000)
    before = result.inner_text()
    columns = result.locator("th").count()
    if columns < 2:
        raise BrowserCheckError(f"the compare panel shows {columns} model column(s), expected at least 2")
    new_prompt = "Answer yes or no: is the sea salty?"
    prompt_box.fill(new_prompt)
    prompt_box.press("Tab")  # leave the box so the new value is sent to the kernel
    output.get_by_role("button", name="Generate").click()
    after = wait_changed(lambda: result.inner_text(), before, "the compare panel's replies", timeout=120)
    if new_prompt not in after:
        raise BrowserCheckError(f"the replies were redrawn but not for the new prompt: {after[:300]!r}")
    output.scroll_into_view_if_needed()
    output.screenshot(path=str(shots / "compare.png"))
    return {"columns": columns, "prompt_shown": new_prompt}


WIDGETS_NOTEBOOK = "02_widgets.ipynb"
# 02's cells that the widgets need, found by what they contain: parameters, imports, the beta slider.
WIDGET_CELLS = ("PROFILE = ", "from smolkit import", "show_beta_explorer(")
COMPARE_SAVED_MODELS = """# The models the course saved (01: SFT, 02: DPO); the embedded one stands in for one missing.
saved = {name: outputs_dir() / "models" / name for name in ("sft", "dpo")}
models = {name: load_model(str(path) if path.is_dir() else "embedded") for name, path in saved.items()}
show_compare(models, prompt="Answer yes or no: is fire cold?", max_new_tokens=P.max_new_tokens)"""


def widgets_notebook(source: Path) -> dict:
    """Notebook 02's widget cells alone, plus a compare panel over the saved models: nothing to train."""
    nb = json.loads(source.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"
             and any(key in "".join(c["source"]) for key in WIDGET_CELLS)]
    found = ["".join(c["source"]) for c in cells]
    missing = [key for key in WIDGET_CELLS if not any(key in text for text in found)]
    if missing:
        raise BrowserCheckError(f"{source.name} has no cell containing {missing}: the widget notebook cannot be built")
    title = {"cell_type": "markdown", "metadata": {}, "source": [f"# The widgets of {source.name}, on saved models"]}
    compare = {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
               "source": COMPARE_SAVED_MODELS.splitlines(keepends=True)}
    return {**nb, "cells": [title, *cells, compare]}


def check_notebook(notebook: str | None = None, timeout: float = 480, outputs: Path | None = None) -> dict:
    """Open `notebook` (default: 02's widgets on saved models) in JupyterLab in Chromium, run it, work its widgets."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT))
    from smolkit.runtime import outputs_dir

    chromium = find_chromium()
    outputs = outputs or outputs_dir()
    shots = outputs / "browser"
    lab_root, run_outputs = shots / "lab", shots / "run-outputs"
    shutil.rmtree(lab_root, ignore_errors=True)
    lab_root.mkdir(parents=True)
    if notebook is None:  # reads the saved models, writes nothing: it may run on the course's outputs
        notebook, run_outputs = WIDGETS_NOTEBOOK, outputs
        (lab_root / notebook).write_text(json.dumps(widgets_notebook(ROOT / "notebooks" / "02_dpo.ipynb"), indent=1))
    else:
        source = Path(notebook) if Path(notebook).is_file() else ROOT / "notebooks" / notebook
        notebook = source.name
        shutil.copy(source, lab_root / notebook)  # a copy: the course's file stays untouched (no autosave there)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel uses the inline backend
    env.update(SMOLKIT_PROFILE="smoke", SMOLKIT_OUTPUTS=str(run_outputs), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT))
    report: dict = {"notebook": notebook, "chromium": chromium}
    start = time.monotonic()
    with jupyter_lab(lab_root, env, shots / "jupyterlab.log") as server, sync_playwright() as pw:
        url, token = server.split("|")
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(f"{url}/lab/tree/{notebook}?token={token}", wait_until="domcontentloaded")
            page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=90_000)
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=90_000)
            page.wait_for_timeout(1000)  # a kernel dialog, if any, opens right after the notebook
            report["lab_ready_s"] = round(time.monotonic() - start, 1)
            log(f"JupyterLab shows {notebook} after {report['lab_ready_s']} s; running all cells")
            try:
                report["run_all_s"] = round(run_all_cells(page, server, timeout), 1)
                log(f"all cells ran in {report['run_all_s']} s; moving the beta slider")
                step = time.monotonic()
                report["beta_slider"] = check_beta_slider(page, shots)
                report["beta_slider_s"] = round(time.monotonic() - step, 1)
                log("beta slider reacted; pressing Generate in the compare panel")
                step = time.monotonic()
                report["compare_panel"] = check_compare_panel(page, shots)
                report["compare_panel_s"] = round(time.monotonic() - step, 1)
            finally:
                page.screenshot(path=str(shots / f"{Path(notebook).stem}.png"))
        finally:
            browser.close()
            if run_outputs != outputs:  # a whole notebook trained its own models: 0.5 GB each, not needed after
                shutil.rmtree(run_outputs / "models", ignore_errors=True)
                shutil.rmtree(run_outputs / "checkpoints", ignore_errors=True)
    report["total_s"] = round(time.monotonic() - start, 1)
    (shots / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str]) -> int:
    """Command line: run the check and print what was measured."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", default=None, help="a course notebook to open whole (default: 02's widgets)")
    parser.add_argument("--timeout", type=float, default=480, help="seconds allowed for running all cells")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(check_notebook(args.notebook, args.timeout), indent=2))
    except (BrowserCheckError, FileNotFoundError) as err:
        print(f"browser check FAILED: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

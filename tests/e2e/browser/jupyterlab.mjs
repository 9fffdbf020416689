// Drives stock JupyterLab 4 in Debian's Chromium as a user would, against a notebook server
// whose kernels run behind the gateway. Prints one JSON line per step on stdout; the Go test
// reads them (and, for the GPU wait, answers on stdin).
//
//   node jupyterlab.mjs <notebook base URL> <token> <artifacts dir> <scenario> <kernel display name>
//
// Scenarios:
//   session   click the kernel's launcher tile and run a cell at once; interrupt a sleep;
//             restart; close the tab, reopen the notebook: the same kernel answers.
//   gpu-wait  open a notebook on the kernel while every GPU is held, run a cell at once; print
//             {"step":"waiting","line":...} once the page shows the wait, then wait for a line on
//             stdin (the test frees a GPU) and for the cell's output.
//   tile      open the launcher and wait for the kernel's tile ({"step":"tile","icon":...}).
//   suspend   run x = 41 and leave the tab open; once the page says the kernel was suspended
//             ({"step":"suspended","line":...}) and a line "come back" arrives on stdin, run
//             print(x + 1) and wait for 42 and the line saying what was restored
//             ({"step":"resumed",...}).
//
// playwright-core comes from NODE_PATH (hack/tools.sh installs it into the cache).
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const [base, token, artifacts, scenario, kernelName] = process.argv.slice(2);
const t0 = Date.now();
const seconds = () => (Date.now() - t0) / 1000;
const report = (step, extra = {}) => console.log(JSON.stringify({ step, at: seconds(), ...extra }));
const note = (s) => process.stderr.write(`${seconds().toFixed(1)}s ${s}\n`);

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
let page;

async function openLab(path) {
  const p = await context.newPage();
  p.on("console", (m) => { if (m.type() === "error") process.stderr.write(`console error: ${m.text()}\n`); });
  await p.goto(`${base}${path}${path.includes("?") ? "&" : "?"}token=${token}`);
  return p;
}

// newNotebookFromLauncher clicks the launcher tile of the kernel, as a user does, and returns
// the new notebook's path once the status bar names its kernel. JupyterLab itself drops a cell
// run while the status bar still says "No Kernel | Initializing" (its session requests are on
// their way; a few tenths of a second, whatever serves the kernels); the gateway answers them
// at once, so from then on, "Starting" until "Idle", a cell waits for the kernel and runs.
async function newNotebookFromLauncher() {
  page = await openLab("/lab?reset");
  const tile = page.locator('.jp-LauncherCard[data-category="Notebook"]', { hasText: kernelName });
  await tile.first().waitFor({ timeout: 120000 });
  await tile.first().click();
  const editor = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .cm-content").last();
  await editor.waitFor({ timeout: 60000 });
  const path = (await page.title()).split(" - ")[0]; // "Untitled.ipynb - JupyterLab"
  await page.waitForFunction((name) => {
    const bar = document.querySelector("#jp-main-statusbar")?.textContent ?? "";
    return bar.includes(`${name} | `) && !bar.includes("Initializing");
  }, kernelName, { timeout: 60000, polling: 20 });
  return path;
}

// run types code into the notebook's last cell and runs it (Shift+Enter), at once.
async function run(code) {
  const editor = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .cm-content").last();
  await editor.click();
  await page.keyboard.type(code);
  await page.keyboard.press("Shift+Enter");
}

// output waits for an output of the notebook containing text.
async function output(text, timeout = 120000) {
  await page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output", { hasText: text }).first().waitFor({ timeout });
}

async function kernelStatusText() {
  return (await page.locator("#jp-main-statusbar").textContent()) ?? "";
}

async function menu(top, item) {
  await page.locator(".lm-MenuBar-itemLabel", { hasText: top }).first().click();
  await page.locator(".lm-Menu-itemLabel", { hasText: item }).first().click();
}

async function kernelIdOf(path) {
  return page.evaluate(async (path) => {
    const sessions = await (await fetch("/api/sessions")).json();
    return sessions.find((s) => s.path === path)?.kernel?.id ?? "";
  }, path);
}

try {
  if (scenario === "session") {
    const nbPath = await newNotebookFromLauncher();
    const statusAtRun = await kernelStatusText();
    const ranAt = seconds();
    await run("print(6*7)");
    await output("42");
    report("first-cell", { statusAtRun, secondsToOutput: seconds() - ranAt });
    note(`notebook ${nbPath}`);

    await run("import time\nprint('sleeping', flush=True)\ntime.sleep(60)");
    await output("sleeping");
    await menu("Kernel", "Interrupt Kernel");
    await output("KeyboardInterrupt", 60000);
    report("interrupted");

    await run("marker = 'before restart'");
    await menu("Kernel", "Restart Kernel");
    await page.locator(".jp-Dialog-button.jp-mod-accept").click();
    await page.locator("#jp-main-statusbar", { hasText: "Idle" }).waitFor({ timeout: 120000 });
    await run("print('marker' in dir())");
    await output("False");
    report("restarted");

    await run("marker = 'kept'; print('set', marker)");
    await output("set kept");
    const kernelBefore = await kernelIdOf(nbPath);
    await page.screenshot({ path: `${artifacts}/jupyterlab-session.png`, fullPage: true });
    await page.keyboard.press("Control+s");
    await page.close(); // the user closes the tab
    page = await openLab(`/lab/tree/${nbPath}`);
    await page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell .cm-content").last().waitFor({ timeout: 120000 });
    await page.locator("#jp-main-statusbar", { hasText: "Idle" }).waitFor({ timeout: 120000 });
    // A new cell at the end, as the user adds one.
    await page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").last().click();
    await page.keyboard.press("Escape");
    await page.keyboard.press("b");
    await run("print('after reopening:', marker)");
    await output("after reopening: kept");
    report("reopened", { notebook: nbPath, kernelBefore, kernelAfter: await kernelIdOf(nbPath) });
    await page.screenshot({ path: `${artifacts}/jupyterlab-reopened.png`, fullPage: true });
  } else if (scenario === "gpu-wait") {
    await newNotebookFromLauncher();
    await run("print('got a GPU')");
    const waiting = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output", { hasText: "waiting for a GPU" }).first();
    await waiting.waitFor({ timeout: 120000 });
    await page.screenshot({ path: `${artifacts}/jupyterlab-waiting-for-a-gpu.png`, fullPage: true });
    report("waiting", { line: (await waiting.textContent())?.trim(), status: await kernelStatusText() });
    const lines = createInterface({ input: process.stdin });
    for await (const l of lines) { if (l.trim() === "freed") break; }
    const freedAt = seconds();
    await output("got a GPU", 180000);
    report("ran", { secondsAfterFree: seconds() - freedAt });
    await page.screenshot({ path: `${artifacts}/jupyterlab-got-a-gpu.png`, fullPage: true });
  } else if (scenario === "tile") {
    page = await openLab("/lab?reset");
    const tile = page.locator('.jp-LauncherCard[data-category="Notebook"]', { hasText: kernelName }).first();
    await tile.waitFor({ timeout: 120000 });
    const icon = await tile.locator("img").first().getAttribute("src").catch(() => "");
    await page.screenshot({ path: `${artifacts}/jupyterlab-launcher.png`, fullPage: true });
    report("tile", { icon });
  } else if (scenario === "suspend") {
    const nbPath = await newNotebookFromLauncher();
    await run("x = 41\nprint('x is set')");
    await output("x is set");
    report("ran", { notebook: nbPath });
    // The user leaves the tab open and goes away.
    const suspended = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output", { hasText: "given back" }).first();
    await suspended.waitFor({ timeout: 300000 });
    await page.screenshot({ path: `${artifacts}/jupyterlab-suspended.png`, fullPage: true });
    report("suspended", { line: (await suspended.textContent())?.trim(), status: await kernelStatusText() });
    // The user comes back when the test says (it checks the GPU went back first).
    const lines = createInterface({ input: process.stdin });
    for await (const l of lines) { if (l.trim() === "come back") break; }
    const ranAt = seconds();
    await run("print(x + 1)");
    await output("42", 300000);
    const resumed = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output", { hasText: "resumed" }).last();
    await resumed.waitFor({ timeout: 60000 });
    await page.screenshot({ path: `${artifacts}/jupyterlab-resumed.png`, fullPage: true });
    report("resumed", { line: (await resumed.textContent())?.trim(), secondsToOutput: seconds() - ranAt });
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
} catch (e) {
  if (page) {
    await page.screenshot({ path: `${artifacts}/jupyterlab-${scenario}-failure.png`, fullPage: true }).catch(() => {});
    const text = await page.evaluate(() => document.body.innerText).catch(() => "");
    process.stderr.write(`page text at failure:\n${text}\n`);
  }
  throw e;
} finally {
  await browser.close();
}

// Opens the notebook server in Debian's chromium, creates a notebook on the python3-gpu kernel,
// runs print(6*7) and waits for 42 on the page; keeps a screenshot.
//
//   node notebook.mjs <notebook base URL> <token> <screenshot path>
//
// playwright-core comes from NODE_PATH (hack/tools.sh installs it into the cache).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const [base, token, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const failShot = shot.replace(/\.png$/, "-failure.png");
let page;
try {
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (m) => process.stderr.write(`console ${m.type()}: ${m.text()}\n`));
  // The classic notebook UI. Log in with the token, make a notebook whose metadata names the
  // python3-gpu kernelspec through the contents API (as "New > Python 3 (1 GPU)" would), then
  // open it as a user would: the page starts a kernel of that spec.
  await page.goto(`${base}/tree?token=${token}`);
  const name = "gpu-check.ipynb";
  const status = await page.evaluate(async (name) => {
    const xsrf = document.cookie.split("; ").find((c) => c.startsWith("_xsrf="))?.split("=")[1] ?? "";
    const spec = await (await fetch("/api/kernelspecs/python3-gpu")).json();
    const r = await fetch(`/api/contents/${name}`, {
      method: "PUT", headers: { "Content-Type": "application/json", "X-XSRFToken": xsrf },
      body: JSON.stringify({
        type: "notebook", format: "json",
        content: {
          nbformat: 4, nbformat_minor: 5, cells: [],
          metadata: { kernelspec: { name: "python3-gpu", display_name: spec.spec.display_name, language: spec.spec.language } },
        },
      }),
    });
    return r.status;
  }, name);
  if (status !== 200 && status !== 201) throw new Error(`creating ${name}: HTTP ${status}`);
  await page.goto(`${base}/notebooks/${name}`);
  // Wait for the kernel (a GPU pod) to start and report idle.
  await page.waitForSelector("#kernel_indicator_icon.kernel_idle_icon", { timeout: 240000 });
  const cell = page.locator(".CodeMirror").first();
  await cell.click();
  await page.keyboard.type("print(6*7)");
  await page.keyboard.press("Shift+Enter");
  await page.locator(".output_area pre", { hasText: "42" }).first().waitFor({ timeout: 120000 });
  const kernel = await page.locator("#kernel_indicator .kernel_indicator_name").textContent();
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({ notebook: name, kernel, output: "42" }));
} catch (e) {
  if (page) {
    await page.screenshot({ path: failShot, fullPage: true }).catch(() => {});
    const text = await page.evaluate(() => document.body.innerText).catch(() => "");
    process.stderr.write(`page text at failure:\n${text}\nscreenshot: ${failShot}\n`);
  }
  throw e;
} finally {
  await browser.close();
}

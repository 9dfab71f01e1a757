// Drives a headless Debian chromium for the widget's test
// (test/integration/test_widget.py): one JSON command per line on stdin, one
// JSON answer per line on stdout, in order. Every command that waits has a
// timeout (ms, default 15000); CSS selectors reach into open shadow roots.
//
//   {"cmd": "open", "url": "..."}                -> {"ok": true}
//   {"cmd": "click" | "focus", "selector": "..."}
//   {"cmd": "fill", "selector": "...", "value": "..."}
//   {"cmd": "type", "selector": "...", "text": "..."}   (key by key: input events)
//   {"cmd": "press", "selector": "...", "key": "Enter"}
//   {"cmd": "wait_for_selector", "selector": "...", "state": "visible"}
//   {"cmd": "wait_for_text", "selector": "...", "text": "..."}  (one match contains it)
//   {"cmd": "texts", "selector": "..."}           -> {"ok": true, "value": [innerText...]}
//   {"cmd": "attribute", "selector": "...", "name": "..."}
//   {"cmd": "eval", "expression": "..."}          -> its value (JSON)
//   {"cmd": "init_script", "script": "..."}       (run in every page before its own)
//   {"cmd": "reload"} | {"cmd": "screenshot", "path": "...", "selector": "..."}
//   {"cmd": "quit"}
// Errors: {"ok": false, "error": "..."}. Page errors and console messages go
// to stderr, for the test's log.
import { chromium } from "playwright-core";
import readline from "node:readline";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // CI runs as root, where chromium refuses its sandbox. Names under .test
  // reach 127.0.0.1: a page there is not a secure context, as a site on
  // plain http: is not (http://127.0.0.1 and localhost are).
  args: ["--no-sandbox", "--host-resolver-rules=MAP *.test 127.0.0.1"],
  timeout: 60000,
});
const page = await browser.newPage({ viewport: { width: 900, height: 640 } });
page.on("pageerror", (error) => console.error(`[pageerror] ${error.message}`));
page.on("console", (message) => console.error(`[console.${message.type()}] ${message.text()}`));

const commands = {
  open: ({ url, timeout }) => page.goto(url, { timeout, waitUntil: "load" }).then(() => null),
  reload: ({ timeout }) => page.reload({ timeout, waitUntil: "load" }).then(() => null),
  click: ({ selector, timeout }) => page.locator(selector).click({ timeout }),
  focus: ({ selector, timeout }) => page.locator(selector).focus({ timeout }),
  fill: ({ selector, value, timeout }) => page.locator(selector).fill(value, { timeout }),
  type: ({ selector, text, timeout }) =>
    page.locator(selector).pressSequentially(text, { timeout, delay: 20 }),
  press: ({ selector, key, timeout }) => page.locator(selector).press(key, { timeout }),
  wait_for_selector: ({ selector, state = "visible", timeout }) =>
    page.locator(selector).first().waitFor({ state, timeout }).then(() => null),
  wait_for_text: ({ selector, text, timeout }) =>
    page.locator(selector, { hasText: text }).first().waitFor({ timeout }).then(() => null),
  texts: ({ selector }) => page.locator(selector).allInnerTexts(),
  attribute: ({ selector, name, timeout }) =>
    page.locator(selector).first().getAttribute(name, { timeout }),
  eval: ({ expression }) => page.evaluate(expression),
  init_script: ({ script }) => page.addInitScript(script),
  screenshot: ({ path, selector, timeout }) =>
    (selector ? page.locator(selector) : page).screenshot({ path, timeout }).then(() => null),
};

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  const request = JSON.parse(line);
  if (request.cmd === "quit") break;
  let answer;
  try {
    const run = commands[request.cmd];
    if (!run) throw new Error(`unknown command ${request.cmd}`);
    const value = await run({ timeout: 15000, ...request });
    answer = { ok: true, value: value === undefined ? null : value };
  } catch (error) {
    answer = { ok: false, error: String(error && error.message ? error.message : error) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
await browser.close();

// integrity.mjs -- one load of the mock web client through pbxgate in a
// real headless Chromium (a fresh, empty profile each time): what the page
// shows, whether a script set the marker `window.pwned`, and the status of
// each response the page got.
//
// Usage: node integrity.mjs URL   (run by tests/integration/test_integrity.py)
// Prints one JSON object {ok, app, pwned, responses: {path: status}, error?}
// on stdout. The browser is Debian's /usr/bin/chromium.

import { chromium } from 'playwright-core';

const url = process.argv[2];
const out = { ok: false, responses: {} };
let browser;
try {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30000,
  });
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.on('response', (r) => { out.responses[new URL(r.url()).pathname] = r.status(); });
  await page.goto(url, { waitUntil: 'load', timeout: 30000 });
  // the genuine app.js writes 'ready'; wait for it or for the page to settle
  await page.waitForFunction(() => document.getElementById('app').textContent !== 'loading',
    null, { timeout: 3000 }).catch(() => {});
  out.app = await page.evaluate(() => document.getElementById('app').textContent);
  out.pwned = await page.evaluate(() => window.pwned === 1);
  out.ok = true;
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  if (browser) await browser.close();
}
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);

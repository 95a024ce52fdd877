// login.mjs -- pbxgate's login in a real headless Chromium: enrolment link,
// password and TOTP, sign-in with a code, the mock PBX page and its WebSocket
// through the gateway, a per-user lockdown seen from two client addresses,
// the account page at a phone's 390 px width in English and Japanese (unique
// ids, every control labelled in the page's language and inside the
// viewport), logout, and screenshots of the login page in both languages.
//
// Usage: node login.mjs CONFIG.json   (written by tests/integration/test_browser.py)
//   base      https://localhost:PORT seen by the gateway from the allowed address
//   other     https://localhost:PORT seen by the gateway from another address
//   enrol     path and query of the enrolment link (`pbxgate user add --enrol`)
//   user      the account name
//   allow     the CIDR the account is locked to (the address behind `base`)
//   shots     directory for the screenshots
// Prints one JSON object {ok, steps: [...], error?} on stdout; exit 0 iff ok.
// The browser is Debian's /usr/bin/chromium: playwright-core never downloads one.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const STEP = 30;
const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const steps = [];
const PASSWORD = 'browser test password 42';

function note(name, detail) {
  steps.push({ step: name, ...detail });
}

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

function totp(secret, step) {
  return execFileSync('oathtool', ['--totp', '-b', '-N', '@' + step * STEP, secret],
    { timeout: 10000 }).toString().trim();
}

// The current 30 s step, waiting out its last seconds so that a code made
// now is still inside the gateway's window when it is checked (bounded).
async function safeStep() {
  const deadline = Date.now() + (STEP + 5) * 1000;
  while (Date.now() < deadline) {
    const t = Date.now() / 1000;
    if (t % STEP < STEP - 4) return Math.floor(t / STEP);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('no usable TOTP step');
}

// Submits the form holding `field` and returns the main-frame response.
async function submit(page, field) {
  const [resp] = await Promise.all([
    page.waitForNavigation({ timeout: 20000 }),
    page.locator(`form:has([name="${field}"]) button[type="submit"]`).first().click(),
  ]);
  return resp;
}

async function enrol(page) {
  const r = await page.goto(cfg.base + cfg.enrol);
  check(r.status() === 200, 'enrolment page answers 200, got ' + r.status());
  const html = await page.content();
  const m = html.match(/otpauth:\/\/totp\/[^"<]*?secret=([A-Z2-7]+)/);
  check(m, 'otpauth URI on the enrolment page');
  check(await page.locator('.qr svg').count() === 1, 'QR code rendered as inline SVG');
  const secret = m[1];
  const step = await safeStep();
  await page.fill('#password', PASSWORD);
  await page.fill('#password2', PASSWORD);
  await page.fill('#code', totp(secret, step - 1));
  const done = await submit(page, 'password2');
  check(done.status() === 200, 'enrolment accepted, got ' + done.status());
  const text = await page.locator('body').innerText();
  const codes = text.match(/\b[a-z2-7]{5}-[a-z2-7]{5}\b/g) || [];
  note('enrol', { status: done.status(), recovery_codes: codes.length });
  return { secret, step: step - 1, codes };
}

async function signIn(page, secret, step) {
  const r = await page.goto(cfg.base + '/webclient/');
  check(page.url().startsWith(cfg.base + '/_pbxgate/login?rd='),
    'redirected to the login page, at ' + page.url());
  note('redirect to login', { url: page.url(), status: r.status() });
  await page.fill('#username', cfg.user);
  await page.fill('#password', PASSWORD);
  const r1 = await submit(page, 'password');
  check(await page.locator('#code').count() === 1, 'the code form after the password');
  await page.fill('#code', totp(secret, step));
  const r2 = await submit(page, 'code');
  check(r2.status() === 200, 'web client page after login, got ' + r2.status());
  check((await page.title()) === 'Mock PBX Web Client', 'mock PBX page title: ' + await page.title());
  const cookies = await page.context().cookies(cfg.base);
  const sess = cookies.find((c) => c.name === '__Host-pbxgate');
  check(sess && sess.secure && sess.httpOnly && sess.path === '/', 'session cookie attributes');
  note('login', { password_step: r1.status(), url: page.url(), title: await page.title() });
}

async function webSocket(page) {
  // the page's own UI: its JSON login, then its WebSocket
  await page.fill('input[name="Username"]', '1000');
  await page.fill('input[name="Password"]', 'demo1000');
  await page.click('#login button[type="submit"]');
  await page.locator('#events li', { hasText: 'message:' }).first().waitFor({ timeout: 15000 });
  // and a socket opened by script in the page, receiving one frame
  const frame = await page.evaluate(async () => {
    const tok = await (await fetch('/webclient/api/Login/GetAccessToken', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ Username: '1000', Password: 'demo1000', SecurityCode: '' }),
    })).json();
    const sk = await (await fetch('/webclient/api/MyPhone/session', {
      method: 'POST', headers: { Authorization: 'Bearer ' + tok.Token.access_token },
    })).json();
    return await new Promise((resolve, reject) => {
      const ws = new WebSocket('wss://' + location.host + '/ws/webclient?sessionId=' +
        encodeURIComponent(sk.sessionKey) + '&pass=' + encodeURIComponent(sk.pass));
      const timer = setTimeout(() => reject(new Error('no frame in 10 s')), 10000);
      ws.onopen = () => ws.send('echo me');
      ws.onmessage = (m) => { clearTimeout(timer); ws.close(); resolve(String(m.data)); };
      ws.onerror = () => { clearTimeout(timer); reject(new Error('websocket error')); };
    });
  });
  check(frame.length > 0, 'a WebSocket frame');
  note('websocket', { first_frame: frame });
}

// Changing the list needs the password and a code (a recovery code here,
// so that no TOTP step has to pass after the login's).
async function lockdown(page, code) {
  await page.goto(cfg.base + '/_pbxgate/account');
  await page.fill('#lockdown', cfg.allow);
  const form = page.locator('form:has(#lockdown)');
  await form.locator('input[name="current"]').fill(PASSWORD);
  await form.locator('input[name="code"]').fill(code);
  const r = await submit(page, 'lockdown');
  check(r.status() === 200, 'lockdown saved, got ' + r.status());
  const here = await page.goto(cfg.base + '/webclient/');
  check(here.status() === 200 && page.url() === cfg.base + '/webclient/',
    'allowed address still reaches the web client, got ' + here.status());
  // same browser, same cookie (cookies do not depend on the port), but the
  // gateway sees the connection come from another address
  const there = await page.goto(cfg.other + '/webclient/');
  check(there.status() === 403, 'other address refused, got ' + there.status());
  note('lockdown', { allow: cfg.allow, allowed_status: here.status(), other_status: there.status() });
}

const PHONE = { width: 390, height: 844 };
const JAPANESE = /[\u3040-\u30ff\u4e00-\u9fff]/;

// Every visible control of the account page, with its bounding box as the
// browser lays it out (playwright's boundingBox, over the DevTools protocol)
// and the text of its labels.
async function controls(page) {
  const out = [];
  const all = page.locator('input:not([type="hidden"]), textarea, button, select');
  for (let i = 0; i < await all.count(); i++) {
    const el = all.nth(i);
    const box = await el.boundingBox();
    const info = await el.evaluate((e) => ({
      tag: e.tagName.toLowerCase(), id: e.id, name: e.getAttribute('name'),
      labels: e.labels ? [...e.labels].map((l) => l.innerText.trim()) : [],
      text: e.tagName === 'BUTTON' ? e.innerText.trim() : '',
    }));
    out.push({ ...info, box });
  }
  return out;
}

// The account page on a phone, in each language the login pages speak.
async function accountOnPhone(context) {
  const out = {};
  for (const lang of ['en', 'ja']) {
    const page = await context.newPage();
    await page.setViewportSize(PHONE);
    await page.setExtraHTTPHeaders({ 'Accept-Language': lang });
    const r = await page.goto(cfg.base + '/_pbxgate/account');
    check(r.status() === 200, `account page ${lang}, got ${r.status()}`);
    const htmlLang = await page.getAttribute('html', 'lang');
    const ids = await page.evaluate(() => [...document.querySelectorAll('[id]')].map((e) => e.id));
    const dupIds = ids.filter((id, i) => ids.indexOf(id) !== i);
    const width = await page.evaluate(() => document.documentElement.clientWidth);
    const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
    const ctl = await controls(page);
    const overflow = ctl.filter((c) => !c.box || c.box.x < 0 || c.box.x + c.box.width > width)
      .map((c) => ({ id: c.id, name: c.name, box: c.box }));
    const unlabelled = ctl.filter((c) => c.tag !== 'button' && c.labels.join('') === '')
      .map((c) => c.id || c.name);
    const notInLang = lang !== 'ja' ? [] : ctl.filter((c) =>
      !JAPANESE.test(c.tag === 'button' ? c.text : c.labels.join(' '))).map((c) => c.id || c.name);
    const file = join(cfg.shots, `account-${lang}-390.png`);
    await page.screenshot({ path: file, fullPage: true });
    out[lang] = { file, html_lang: htmlLang, ids: ids.length, duplicate_ids: dupIds, width,
      scroll_width: scrollWidth, controls: ctl.length, overflow, unlabelled,
      not_in_language: notInLang };
    await page.close();
    check(htmlLang === lang, `account page html lang ${htmlLang} for ${lang}`);
    check(dupIds.length === 0, `unique ids on the account page (${lang}): ${dupIds}`);
    check(overflow.length === 0 && scrollWidth <= width,
      `controls inside ${width} px (${lang}): ${JSON.stringify(overflow)}, scroll width ${scrollWidth}`);
    check(unlabelled.length === 0, `every field labelled (${lang}): ${unlabelled}`);
    check(notInLang.length === 0, `labels in Japanese: ${notInLang}`);
  }
  note('account 390px', out);
}

async function logout(page) {
  await page.goto(cfg.base + '/_pbxgate/account');
  const [r] = await Promise.all([
    page.waitForNavigation({ timeout: 20000 }),
    page.locator('form[action="/_pbxgate/logout"] button[type="submit"]').click(),
  ]);
  const after = await page.goto(cfg.base + '/webclient/');
  check(page.url().startsWith(cfg.base + '/_pbxgate/login'), 'logged out: back to login, at ' + page.url());
  note('logout', { status: r.status(), after: after.status(), url: page.url() });
}

async function screenshots(context) {
  const out = {};
  for (const lang of ['en', 'ja']) {
    const page = await context.newPage();
    await page.setExtraHTTPHeaders({ 'Accept-Language': lang });
    const r = await page.goto(cfg.base + '/_pbxgate/login');
    check(r.status() === 200, 'login page ' + lang);
    const htmlLang = await page.getAttribute('html', 'lang');
    check(htmlLang === lang, `html lang ${htmlLang} for Accept-Language ${lang}`);
    const file = join(cfg.shots, `login-${lang}.png`);
    await page.screenshot({ path: file, fullPage: true });
    out[lang] = { file, title: await page.title(), label: await page.locator('label[for="username"]').innerText() };
    await page.close();
  }
  note('screenshots', out);
}

async function main() {
  const profile = mkdtempSync(join(tmpdir(), 'pbxgate-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      ignoreHTTPSErrors: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 30000,
    });
    context.setDefaultTimeout(20000);
    const page = context.pages()[0] || await context.newPage();
    const { secret, step, codes } = await enrol(page);
    await signIn(page, secret, Math.max(step + 1, await safeStep()));
    await webSocket(page);
    await lockdown(page, codes[0]);
    await accountOnPhone(context);
    await logout(page);
    await screenshots(context);
    return { ok: true, steps };
  } finally {
    if (context) await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

main().then((res) => {
  process.stdout.write(JSON.stringify(res) + '\n');
  process.exit(0);
}, (e) => {
  process.stdout.write(JSON.stringify({ ok: false, steps, error: String(e && e.stack || e) }) + '\n');
  process.exit(1);
});

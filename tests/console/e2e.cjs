// The operator console in headless Chromium, driven by playwright-core.
// Started by tests/console.rs, which runs the pipeline pieces around it
// (label stage, operational sink, console, carrier simulator) and passes
// what to look for in the environment. Exits non-zero on the first
// failed expectation, saying which.
'use strict';

const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');
const fs = require('fs');
const path = require('path');

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing ${k}`);
  return v;
};
const BASE = env('CONSOLE_URL');
const SHOTS = env('SCREENSHOTS');
const WAIT = 90000;

function expect(cond, what) {
  if (!cond) throw new Error(`expected: ${what}`);
  console.log(`ok - ${what}`);
}

async function login(browser, user, password) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${BASE}/login`);
  await page.fill('#user', user);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(`${BASE}/orders`), page.click('button[type=submit]')]);
  return { context, page };
}

async function searchTracking(page, tracking) {
  await page.selectOption('#by', 'tracking');
  await page.fill('#q', tracking);
  await Promise.all([page.waitForLoadState('load'), page.press('#q', 'Enter')]);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  try {
    // A wrong password is refused.
    {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${BASE}/orders`);
      expect(page.url().endsWith('/login'), 'pages need a login');
      await page.fill('#user', env('OPERATOR_USER'));
      await page.fill('#password', 'not-the-password');
      await page.click('button[type=submit]');
      expect((await page.textContent('.error')).includes('Wrong user or password'), 'a wrong password is refused');
      await context.close();
    }

    // The operator finds an order by tracking number.
    const op = await login(browser, env('OPERATOR_USER'), env('OPERATOR_PASS'));
    await searchTracking(op.page, env('TRACKING'));
    const body = await op.page.textContent('main');
    expect(body.includes(env('ORDER_NUMBER')), 'the tracking number leads to its order');
    expect(body.includes(env('TRACKING')), 'the order page shows the tracking number');
    expect((await op.page.textContent('#customer')).includes(env('ORDER_EMAIL')), 'an operator sees the customer email');
    expect((await op.page.textContent('#timeline')).includes('label'), 'the timeline shows the label stage');
    await op.page.screenshot({ path: path.join(SHOTS, 'console-order.png'), fullPage: true });

    // Its packing slip opens as a PDF.
    const slipHref = await op.page.getAttribute('a.doc-slip', 'href');
    expect(!!slipHref, 'the order page links the packing slip');
    const slip = await op.context.request.get(`${BASE}${slipHref}`);
    expect(slip.status() === 200, 'the packing slip answers 200');
    expect(slip.headers()['content-type'] === 'application/pdf', 'the packing slip is a PDF');
    expect((await slip.body()).subarray(0, 5).toString() === '%PDF-', 'the packing slip has PDF bytes');

    // The failed label is in the exceptions queue.
    await op.page.goto(`${BASE}/exceptions`);
    const failed = env('FAILED_ORDER');
    const row = op.page.locator('#open-exceptions tr', { hasText: failed });
    await row.waitFor({ timeout: WAIT });
    expect((await row.textContent()).includes('address_invalid'), 'the queue shows the carrier\'s code');
    await op.page.screenshot({ path: path.join(SHOTS, 'console-exceptions.png'), fullPage: true });

    // Fix the address and retry; the shipment gets its label.
    await Promise.all([op.page.waitForLoadState('load'), row.locator('a.open-exception').click()]);
    expect((await op.page.inputValue('#line1')) === '', 'the failed plan has no street');
    await op.page.fill('#line1', '500 Congress Ave');
    await op.page.fill('#why', 'street confirmed with the customer by phone');
    await Promise.all([op.page.waitForURL(/done=/), op.page.click('#retry')]);
    expect((await op.page.textContent('#done')).includes('ship-to edited (street)'), 'the retry re-published the edited plan');

    // The queue updates itself (no reload) as the retry goes through.
    await op.page.goto(`${BASE}/exceptions`);
    await op.page.waitForFunction(
      (id) => {
        const t = document.querySelector('#closed-exceptions');
        return !!t && [...t.querySelectorAll('tr')].some((r) => r.textContent.includes(id) && r.textContent.includes('LABELED'));
      },
      failed,
      { timeout: WAIT },
    );
    expect(true, 'the queue shows the retried exception labeled, live');
    await op.page.goto(`${BASE}/order?id=${encodeURIComponent(failed)}`);
    const shipments = await op.page.textContent('#shipments');
    expect(shipments.includes('LABELED'), 'the retried shipment moved to LABELED');
    await op.context.close();

    // A viewer sees no personal data and cannot act.
    const viewer = await login(browser, env('VIEWER_USER'), env('VIEWER_PASS'));
    expect(!(await viewer.page.locator('#by option[value=email]').count()), 'a viewer cannot search by email');
    await searchTracking(viewer.page, env('TRACKING'));
    const customer = await viewer.page.textContent('#customer');
    expect(!customer.includes(env('ORDER_EMAIL')) && customer.includes('hidden'), 'a viewer does not see the email');
    expect(!(await viewer.page.content()).includes(env('ORDER_EMAIL')), 'the email is nowhere in the viewer\'s page');
    expect((await viewer.page.locator('a.doc-slip').count()) === 0, 'a viewer gets no document links');
    const doc = await viewer.context.request.get(`${BASE}${slipHref}`);
    expect(doc.status() === 403, 'a viewer cannot open a document');
    await viewer.page.goto(`${BASE}/exception?id=${encodeURIComponent(env('EXCEPTION_ID'))}`);
    expect((await viewer.page.locator('#act').count()) === 0, 'a viewer gets no action form');
    expect(await viewer.page.locator('#read-only').isVisible(), 'a viewer is told they cannot act');
    // With the viewer's own valid CSRF token (the logout form carries it):
    // the role check, not the token, refuses it.
    const csrf = await viewer.page.getAttribute('input[name=csrf]', 'value');
    const forged = await viewer.context.request.post(`${BASE}/exception/action`, {
      form: { csrf, action_id: '0'.repeat(32), exception_id: env('EXCEPTION_ID'), kind: 'RESOLVE', reason: 'forged' },
    });
    expect(forged.status() === 403 && (await forged.text()).includes('viewers cannot act'), 'a viewer\'s action is refused by role');
    const byEmail = await viewer.context.request.get(`${BASE}/orders?by=email&q=${encodeURIComponent(env('ORDER_EMAIL'))}`);
    expect(byEmail.status() === 403, 'a viewer cannot search by email, even by URL');
    await viewer.page.goto(`${BASE}/audit`);
    expect((await viewer.page.textContent('main')).includes('for admins'), 'a viewer cannot read the audit log');
    await viewer.context.close();

    // The admin reads the retry in the audit log.
    const admin = await login(browser, env('ADMIN_USER'), env('ADMIN_PASS'));
    await admin.page.goto(`${BASE}/audit`);
    const audit = await admin.page.textContent('#audit');
    expect(audit.includes(env('OPERATOR_USER')) && audit.includes('street confirmed with the customer by phone'), 'the audit log has who and why');
    await admin.page.goto(`${BASE}/health`);
    expect((await admin.page.textContent('#stages')).includes('label'), 'the health page lists the label stage');
    await admin.context.close();
    console.log('all console checks passed');
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(`not ok - ${e.message}`);
  process.exit(1);
});

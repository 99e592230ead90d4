// The admin pages: small server-rendered shells; their data comes from the JSON APIs (api.ts)
// with the token the person pasted at sign-in (kept in sessionStorage, sent as a Bearer token).
// No inline script or style, so the Content-Security-Policy can forbid both.
import { readFileSync } from 'node:fs';
import { Hono } from 'hono';

const ASSETS: Record<string, string> = {
  'app.css': 'text/css; charset=utf-8',
  'common.js': 'text/javascript; charset=utf-8',
  'sign-in.js': 'text/javascript; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'settings.js': 'text/javascript; charset=utf-8',
};

const assetBodies = new Map(
  Object.keys(ASSETS).map((name) => [name, readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8')]),
);

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function layout(input: { title: string; page: string; script: string; body: string; nav?: boolean }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(input.title)} · Overdue job</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/admin/assets/app.css">
<script type="module" src="/admin/assets/${input.script}"></script>
</head>
<body data-page="${input.page}">
<header class="top">
  <a class="brand" href="/admin/jobs">Overdue job</a>
  ${input.nav === false ? '' : `<nav>
    <a href="/admin/jobs" data-nav="jobs">Jobs</a>
    <a href="/admin/agency" data-nav="agency">Agency settings</a>
    <span class="who" id="who"></span>
    <button type="button" class="link" id="sign-out">Sign out</button>
  </nav>`}
</header>
<main>
${input.body}
</main>
</body>
</html>`;
}

const signIn = layout({
  title: 'Sign in',
  page: 'sign-in',
  script: 'sign-in.js',
  nav: false,
  body: `<section class="card narrow">
  <h1>Sign in</h1>
  <p>Paste the access token (a JWT signed with the project's JWT secret). On Supabase, use a signed-in
  user's access token; self-hosted, mint one with <code>npx overdue token --platform-admin</code> or
  <code>npx overdue token --agency-admin AGENCY_ID</code>.</p>
  <form id="sign-in-form">
    <label for="token">Access token</label>
    <textarea id="token" name="token" rows="5" required autocomplete="off" spellcheck="false" placeholder="eyJhbGciOiJIUzI1NiIs…"></textarea>
    <button type="submit">Sign in</button>
  </form>
  <p class="message" id="message" role="alert"></p>
  <p class="fine">The token stays in this tab (sessionStorage) and is sent only to this server's page APIs.</p>
</section>`,
});

const dashboard = layout({
  title: 'Job dashboard',
  page: 'dashboard',
  script: 'dashboard.js',
  body: `<h1>Installment status job</h1>
<p class="message" id="message" role="alert"></p>
<div class="grid">
  <section class="card" id="health-card" aria-labelledby="health-title">
    <h2 id="health-title">Health</h2>
    <div id="health">Loading…</div>
    <div id="incidents"></div>
  </section>
  <section class="card" aria-labelledby="actions-title">
    <h2 id="actions-title">Actions</h2>
    <form id="preview-form" class="inline">
      <label for="preview-at">Preview at <span class="fine">(blank = now)</span></label>
      <input type="datetime-local" id="preview-at" name="at" step="60">
      <div class="buttons">
        <button type="submit" id="preview-button">Preview</button>
        <button type="button" id="run-button" class="danger">Run now</button>
      </div>
    </form>
    <div id="action-result" aria-live="polite"></div>
  </section>
</div>
<section class="card" aria-labelledby="chart-title">
  <h2 id="chart-title">Runs over time</h2>
  <div id="chart" class="chart"></div>
  <p class="legend"><span class="key bar"></span> records updated <span class="key line"></span> duration <span class="key fail"></span> failed run</p>
</section>
<section class="card" aria-labelledby="runs-title">
  <h2 id="runs-title">Recent runs</h2>
  <div class="table-wrap"><table id="runs" class="stack">
    <thead><tr><th>Started</th><th>Status</th><th>Trigger</th><th class="num">Duration</th><th class="num">Records</th><th>Error</th></tr></thead>
    <tbody></tbody>
  </table></div>
</section>
<section class="card" id="run-detail" hidden aria-labelledby="run-detail-title">
  <h2 id="run-detail-title">Run</h2>
  <div id="run-detail-body"></div>
</section>
<div class="grid">
  <section class="card" aria-labelledby="cutoffs-title">
    <h2 id="cutoffs-title">Next cutoffs</h2>
    <div class="table-wrap"><table id="cutoffs" class="stack">
      <thead><tr><th>Agency</th><th>Cutoff</th><th>Next (local)</th><th>Next (UTC)</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section class="card" aria-labelledby="deliveries-title">
    <h2 id="deliveries-title">Failed alert deliveries</h2>
    <div id="deliveries"></div>
  </section>
</div>`,
});

function settings(agencyId: string): string {
  return layout({
    title: 'Agency settings',
    page: 'settings',
    script: 'settings.js',
    body: `<section class="card narrow" data-agency-id="${escapeHtml(agencyId)}" id="settings">
  <h1 id="agency-name">Agency settings</h1>
  <p class="message" id="message" role="alert"></p>
  <form id="settings-form" hidden>
    <label for="timezone">Time zone</label>
    <input id="timezone" name="timezone" list="timezones" autocomplete="off" spellcheck="false" required placeholder="Start typing: Australia/…">
    <datalist id="timezones"></datalist>
    <p class="fine">Any IANA zone name, e.g. Australia/Brisbane, America/New_York, Europe/London.</p>
    <label for="cutoff">Overdue cutoff time (24-hour, local)</label>
    <input id="cutoff" name="cutoff" inputmode="numeric" autocomplete="off" required placeholder="17:00">
    <button type="submit" id="save">Save</button>
  </form>
  <p class="sentence" id="sentence"></p>
  <p class="fine" id="readonly-note" hidden>Only this agency's admins can change these settings.</p>
</section>`,
  });
}

export function createPages(): Hono {
  const pages = new Hono();
  const html = (body: string) => new Response(body, { headers: { 'content-type': 'text/html; charset=utf-8', ...SECURITY_HEADERS } });

  pages.get('/admin', (c) => c.redirect('/admin/sign-in'));
  pages.get('/admin/', (c) => c.redirect('/admin/sign-in'));
  pages.get('/admin/sign-in', () => html(signIn));
  pages.get('/admin/jobs', () => html(dashboard));
  // Resolved in the browser to the signed-in admin's own agency.
  pages.get('/admin/agency', () => html(settings('')));
  pages.get('/admin/agencies/:id', (c) => html(settings(c.req.param('id'))));
  pages.get('/admin/assets/:name', (c) => {
    const name = c.req.param('name');
    const body = assetBodies.get(name);
    if (body === undefined) return c.text(`no asset ${name}`, 404);
    return c.body(body, 200, { 'content-type': ASSETS[name]!, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
  });
  return pages;
}

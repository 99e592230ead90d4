import { api, el, fmtAge, fmtDuration, fmtTime, initHeader, showMessage } from './common.js';

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c);
  return node;
}

function statusBadge(status) {
  return el('span', { class: `badge ${status}` }, status);
}

/** Bars: records updated; line: duration; red marks: failed runs. Oldest on the left. */
function renderChart(runs) {
  const box = document.getElementById('chart');
  const data = runs.filter((r) => r.status !== 'running').slice().reverse();
  if (data.length === 0) {
    box.replaceChildren(el('p', { class: 'fine' }, 'No runs yet.'));
    return;
  }
  const W = 800, H = 220, L = 48, R = 56, T = 16, B = 28;
  const plotW = W - L - R, plotH = H - T - B;
  const maxRec = Math.max(1, ...data.map((r) => r.records_updated || 0));
  const maxDur = Math.max(1, ...data.map((r) => r.duration_ms || 0));
  const step = plotW / data.length;
  const barW = Math.max(2, Math.min(24, step * 0.7));
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `Chart of the last ${data.length} runs: records updated and duration; failures marked`, class: 'chart-svg' });
  chart.append(svg('title', {}, `Last ${data.length} runs`));
  // Grid and axes labels.
  for (const f of [0, 0.5, 1]) {
    const y = T + plotH * (1 - f);
    chart.append(svg('line', { x1: L, x2: W - R, y1: y, y2: y, class: 'grid' }));
    chart.append(svg('text', { x: L - 6, y: y + 4, 'text-anchor': 'end', class: 'axis rec' }, String(Math.round(maxRec * f))));
    chart.append(svg('text', { x: W - R + 6, y: y + 4, 'text-anchor': 'start', class: 'axis dur' }, fmtDuration(maxDur * f)));
  }
  const points = [];
  data.forEach((r, i) => {
    const cx = L + step * i + step / 2;
    const h = ((r.records_updated || 0) / maxRec) * plotH;
    const bar = svg('rect', { x: cx - barW / 2, y: T + plotH - h, width: barW, height: Math.max(h, 0.5), class: `bar ${r.status}`, 'data-run-id': r.id });
    bar.append(svg('title', {}, `${fmtTime(r.started_at)} · ${r.status} · ${r.records_updated ?? 0} records · ${fmtDuration(r.duration_ms)}`));
    bar.addEventListener('click', () => openRun(r.id));
    chart.append(bar);
    if (r.duration_ms !== null && r.duration_ms !== undefined) points.push(`${cx},${T + plotH - (r.duration_ms / maxDur) * plotH}`);
    if (r.status === 'failed') {
      const mark = svg('g', { class: 'fail-mark', 'data-run-id': r.id },
        svg('line', { x1: cx - 5, y1: T - 2, x2: cx + 5, y2: T + 8 }),
        svg('line', { x1: cx + 5, y1: T - 2, x2: cx - 5, y2: T + 8 }),
        svg('title', {}, `failed ${fmtTime(r.started_at)}: ${r.error_message || ''}`));
      mark.addEventListener('click', () => openRun(r.id));
      chart.append(mark);
    }
  });
  if (points.length > 1) chart.append(svg('polyline', { points: points.join(' '), class: 'duration' }));
  for (const p of points) {
    const [x, y] = p.split(',');
    chart.append(svg('circle', { cx: x, cy: y, r: 2.5, class: 'duration-dot' }));
  }
  chart.append(svg('text', { x: L, y: H - 8, class: 'axis' }, fmtTime(data[0].started_at)));
  chart.append(svg('text', { x: W - R, y: H - 8, 'text-anchor': 'end', class: 'axis' }, fmtTime(data[data.length - 1].started_at)));
  box.replaceChildren(chart);
}

function renderHealth(h, incidents) {
  const box = document.getElementById('health');
  box.replaceChildren(
    el('p', {}, el('span', { class: `verdict ${h.healthy ? 'ok' : 'bad'}`, id: 'verdict' }, h.healthy ? 'Healthy' : 'Unhealthy'), ' ', h.reason),
    el('dl', { class: 'facts' },
      el('dt', {}, 'Last success'), el('dd', {}, `${fmtTime(h.last_success_at)} (${fmtAge(h.age_seconds)} ago)`),
      el('dt', {}, 'Limit'), el('dd', {}, fmtAge(h.stale_after_seconds)),
      el('dt', {}, 'Last failure'), el('dd', {}, h.last_failure_at ? `${fmtTime(h.last_failure_at)}: ${h.last_failure_error}` : 'none'),
      ...(h.running_since ? [el('dt', {}, 'Running since'), el('dd', {}, fmtTime(h.running_since))] : [])),
  );
  document.getElementById('health-card').classList.toggle('unhealthy', !h.healthy);
  const inc = document.getElementById('incidents');
  inc.replaceChildren(...(incidents.length
    ? [el('h3', {}, 'Open incidents'), el('ul', {}, incidents.map((i) => el('li', {}, `${i.summary} — since ${fmtTime(i.opened_at)} (${i.occurrences}×)`)))]
    : []));
}

function renderRuns(runs) {
  const tbody = document.querySelector('#runs tbody');
  tbody.replaceChildren(...runs.map((r) => el('tr', { class: r.status, 'data-run-id': r.id },
    el('td', { 'data-label': 'Started' }, el('a', { href: `#run-${r.id}`, onclick: (e) => { e.preventDefault(); openRun(r.id); } }, fmtTime(r.started_at))),
    el('td', { 'data-label': 'Status' }, statusBadge(r.status)),
    el('td', { 'data-label': 'Trigger' }, r.trigger || '—'),
    el('td', { class: 'num', 'data-label': 'Duration' }, fmtDuration(r.duration_ms)),
    el('td', { class: 'num', 'data-label': 'Records' }, r.records_updated ?? 0),
    el('td', { class: 'error', 'data-label': 'Error' }, r.error_message || ''))));
  if (runs.length === 0) tbody.append(el('tr', {}, el('td', { colspan: 6, class: 'fine' }, 'No runs recorded in jobs_log yet.')));
}

function renderCutoffs(rows) {
  const tbody = document.querySelector('#cutoffs tbody');
  tbody.replaceChildren(...rows.map((c) => el('tr', {},
    el('td', { 'data-label': 'Agency' }, el('a', { href: `/admin/agencies/${c.id}` }, c.name), el('div', { class: 'fine' }, c.timezone)),
    el('td', { 'data-label': 'Cutoff' }, `${c.cutoff_time} (${c.cutoff_time_utc_today} UTC)`),
    el('td', { 'data-label': 'Next (local)' }, c.next_cutoff_local),
    el('td', { 'data-label': 'Next (UTC)' }, c.next_cutoff_utc))));
}

function renderDeliveries(rows) {
  const box = document.getElementById('deliveries');
  if (rows.length === 0) return box.replaceChildren(el('p', { class: 'fine' }, 'None — every alert was delivered.'));
  box.replaceChildren(el('div', { class: 'table-wrap' }, el('table', { id: 'failed-deliveries', class: 'stack' },
    el('thead', {}, el('tr', {}, el('th', {}, 'When'), el('th', {}, 'Channel'), el('th', {}, 'Message'), el('th', {}, 'Error'))),
    el('tbody', {}, rows.map((d) => el('tr', {},
      el('td', { 'data-label': 'When' }, fmtTime(d.created_at)), el('td', { 'data-label': 'Channel' }, d.channel),
      el('td', { 'data-label': 'Message' }, `${d.kind}: ${d.subject}`),
      el('td', { class: 'error', 'data-label': 'Error' }, `${d.error} (${d.attempts} attempts)`)))))));
}

async function openRun(id) {
  const section = document.getElementById('run-detail');
  const body = document.getElementById('run-detail-body');
  section.hidden = false;
  body.replaceChildren(el('p', {}, 'Loading…'));
  try {
    const { run, agencies } = await api(`/runs/${id}`);
    const meta = run.metadata || {};
    document.getElementById('run-detail-title').textContent = `Run ${run.id}`;
    body.replaceChildren(
      el('dl', { class: 'facts' },
        el('dt', {}, 'Status'), el('dd', {}, statusBadge(run.status)),
        el('dt', {}, 'Trigger'), el('dd', {}, run.trigger || '—'),
        el('dt', {}, 'Started'), el('dd', {}, fmtTime(run.started_at)),
        el('dt', {}, 'Duration'), el('dd', {}, fmtDuration(run.duration_ms)),
        el('dt', {}, 'As of'), el('dd', {}, meta.asOf ? fmtTime(meta.asOf) : '—'),
        el('dt', {}, 'Attempts'), el('dd', {}, Array.isArray(meta.attempts) ? meta.attempts.length : meta.attempts ?? '—'),
        el('dt', {}, 'Records updated'), el('dd', {}, run.records_updated ?? 0),
        ...(run.error_message ? [el('dt', {}, 'Error'), el('dd', { class: 'error' }, run.error_message)] : [])),
      el('h3', {}, 'Per agency'),
      agencies.length === 0
        ? el('p', { class: 'fine' }, 'No agency changed in this run.')
        : el('div', { class: 'table-wrap' }, el('table', { id: 'run-agencies', class: 'stack' },
            el('thead', {}, el('tr', {}, el('th', {}, 'Agency'), el('th', {}, 'Time zone'), el('th', { class: 'num' }, 'Updated'), el('th', {}, 'Transitions'))),
            el('tbody', {}, agencies.map((a) => el('tr', {},
              el('td', { 'data-label': 'Agency' }, a.agency_name || a.agency_id), el('td', { 'data-label': 'Time zone' }, a.timezone || '—'),
              el('td', { class: 'num', 'data-label': 'Updated' }, a.updated_count),
              el('td', { 'data-label': 'Transitions' }, Object.entries(a.transitions || {}).map(([k, v]) => `${k.replace(/_/g, ' ')}: ${v}`).join(', '))))))),
    );
    section.scrollIntoView({ behavior: 'smooth', block: 'start' });
  } catch (error) {
    body.replaceChildren(el('p', { class: 'message error' }, error.message));
  }
}

async function load() {
  const data = await api('/dashboard');
  renderHealth(data.health, data.openIncidents);
  renderChart(data.runs);
  renderRuns(data.runs);
  renderCutoffs(data.cutoffs);
  renderDeliveries(data.failedDeliveries);
}

function showResult(...nodes) {
  document.getElementById('action-result').replaceChildren(...nodes);
}

async function main() {
  try {
    const me = await initHeader();
    if (!me.platformAdmin) {
      showMessage('The job dashboard is for platform administrators. Your token is not one.');
      return;
    }
    await load();
  } catch (error) {
    if (error.status !== 401) showMessage(error.message);
    return;
  }

  document.getElementById('preview-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const at = document.getElementById('preview-at').value;
    showResult(el('p', {}, 'Previewing…'));
    try {
      const p = await api('/preview', { method: 'POST', body: at ? { asOf: new Date(at).toISOString() } : {} });
      showResult(
        el('p', { id: 'preview-summary' }, `At ${fmtTime(p.asOf)}: ${p.recordsWouldUpdate} installment(s) would become overdue. Nothing was changed.`),
        p.agencies.length ? el('ul', { id: 'preview-agencies' }, p.agencies.map((a) => el('li', {}, `${a.agency_name}: ${a.updated_count}`))) : '',
      );
    } catch (error) {
      showResult(el('p', { class: 'message error' }, error.message));
    }
  });

  document.getElementById('run-button').addEventListener('click', async () => {
    if (!confirm('Run the job now? Installments past their cutoff will be marked overdue.')) return;
    showResult(el('p', {}, 'Running…'));
    try {
      const r = await api('/run', { method: 'POST' });
      showResult(el('p', { id: 'run-summary' }, `Run ${r.jobId} succeeded: ${r.recordsUpdated} installment(s) marked overdue in ${fmtDuration(r.durationMs)}.`));
    } catch (error) {
      showResult(el('p', { class: 'message error', id: 'run-summary' }, `Run failed: ${error.message}`));
    }
    await load().catch((e) => showMessage(e.message));
  });
}

main();

// Shared by the admin pages: the token, API calls, small DOM helpers. No framework.
const TOKEN_KEY = 'overdue.token';

export const getToken = () => sessionStorage.getItem(TOKEN_KEY);
export const setToken = (t) => sessionStorage.setItem(TOKEN_KEY, t);
export const clearToken = () => sessionStorage.removeItem(TOKEN_KEY);

export function goToSignIn(reason) {
  const params = new URLSearchParams({ next: location.pathname });
  if (reason) params.set('reason', reason);
  location.assign(`/admin/sign-in?${params}`);
}

/** Calls a page API with the Bearer token; throws an Error carrying .status and the server's message. */
export async function api(path, { method = 'GET', body } = {}) {
  const token = getToken();
  if (!token) {
    goToSignIn('Please sign in.');
    throw new Error('not signed in');
  }
  const res = await fetch(`/admin/api${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = { error: `${res.status} ${res.statusText}` };
  }
  if (res.status === 401) {
    clearToken();
    goToSignIn(data.error);
    throw Object.assign(new Error(data.error), { status: 401 });
  }
  if (!res.ok) throw Object.assign(new Error(data.error || `${res.status} ${res.statusText}`), { status: res.status, data });
  return data;
}

/** el('td', {class: 'num'}, 'text', childNode…) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

export function showMessage(text, kind = 'error') {
  const m = document.getElementById('message');
  if (!m) return;
  m.textContent = text || '';
  m.className = `message ${text ? kind : ''}`;
}

export const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '—');
export const fmtDuration = (ms) => (ms === null || ms === undefined ? '—' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);
export const fmtAge = (s) => {
  if (s === null || s === undefined) return '—';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
};

/** Header: who is signed in, sign-out, and the "Agency settings" link to their own agency. */
export async function initHeader() {
  document.getElementById('sign-out')?.addEventListener('click', () => {
    clearToken();
    location.assign('/admin/sign-in');
  });
  const me = await api('/me');
  const who = document.getElementById('who');
  if (who) who.textContent = me.platformAdmin ? 'platform admin' : me.agency ? `${me.agency.role.replace('_', ' ')} · ${me.agency.name}` : 'signed in';
  const agencyLink = document.querySelector('[data-nav="agency"]');
  if (agencyLink) {
    if (me.agency) agencyLink.setAttribute('href', `/admin/agencies/${me.agency.id}`);
    else agencyLink.remove();
  }
  const jobsLink = document.querySelector('[data-nav="jobs"]');
  if (jobsLink && !me.platformAdmin) jobsLink.remove();
  return me;
}

import { api, setToken, clearToken, showMessage } from './common.js';

const params = new URLSearchParams(location.search);
if (params.get('reason')) showMessage(params.get('reason'));

document.getElementById('sign-in-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const token = document.getElementById('token').value.trim();
  if (!token) return showMessage('Paste a token first.');
  setToken(token);
  try {
    const me = await api('/me');
    const next = params.get('next');
    if (next && next.startsWith('/admin/') && next !== '/admin/sign-in') location.assign(next);
    else if (me.platformAdmin) location.assign('/admin/jobs');
    else if (me.agency) location.assign(`/admin/agencies/${me.agency.id}`);
    else {
      clearToken();
      showMessage('This token is valid but belongs to no agency and is not a platform admin: nothing to show.');
    }
  } catch (error) {
    if (error.status !== 401) showMessage(error.message);
  }
});

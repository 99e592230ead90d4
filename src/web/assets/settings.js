import { api, el, initHeader, showMessage } from './common.js';

const section = document.getElementById('settings');
const form = document.getElementById('settings-form');
const tzInput = document.getElementById('timezone');
const cutoffInput = document.getElementById('cutoff');
const sentence = document.getElementById('sentence');

function render(data) {
  document.getElementById('agency-name').textContent = `${data.agency.name} — settings`;
  tzInput.value = data.agency.timezone;
  cutoffInput.value = data.agency.overdue_cutoff_time.replace(/:00$/, '');
  sentence.textContent = data.sentence || '';
  const editable = data.agency.can_edit === true;
  form.hidden = false;
  for (const input of form.querySelectorAll('input, button')) input.disabled = !editable;
  document.getElementById('readonly-note').hidden = editable;
}

async function main() {
  let me;
  try {
    me = await initHeader();
  } catch (error) {
    if (error.status !== 401) showMessage(error.message);
    return;
  }
  let id = section.dataset.agencyId;
  if (!id) {
    if (!me.agency) return showMessage('Your account belongs to no agency. Platform admins open an agency from the job dashboard.');
    history.replaceState(null, '', `/admin/agencies/${me.agency.id}`);
    id = me.agency.id;
  }
  let data;
  try {
    data = await api(`/agencies/${encodeURIComponent(id)}`);
  } catch (error) {
    section.classList.add('refused');
    return showMessage(`Refused: ${error.message}`);
  }
  render(data);

  api('/timezones').then((zones) => {
    const list = document.getElementById('timezones');
    list.replaceChildren(...zones.map((z) => el('option', { value: z.name }, `UTC${z.utc_offset}`)));
  }).catch(() => {});

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showMessage('');
    const save = document.getElementById('save');
    save.disabled = true;
    try {
      const updated = await api(`/agencies/${encodeURIComponent(id)}`, {
        method: 'PUT',
        body: { timezone: tzInput.value, cutoffTime: cutoffInput.value },
      });
      render(updated);
      showMessage('Saved.', 'ok');
    } catch (error) {
      showMessage(`Not saved: ${error.message}${error.data?.hint ? ` — ${error.data.hint}` : ''}`);
    } finally {
      save.disabled = false;
    }
  });
}

main();

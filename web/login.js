// Sign-in page: sign in, or choose the admin password on the first visit, then go back to
// where the visitor was headed (only ever a path on this gateway).

const $ = (selector) => document.querySelector(selector);

const HERE = 'http://camgate.invalid'; // a stand-in origin: only the path part is kept

export function safeNext(search, hash = '') {
  const next = new URLSearchParams(search).get('next') || '/';
  // A path on this origin only: never "//elsewhere", "https://elsewhere", nor what a URL
  // parser turns into one ("/\elsewhere"; tabs and newlines, which it drops: "/\t/elsewhere").
  let path = '/';
  if (next.startsWith('/') && !/[\u0000-\u001f\u007f\\]/.test(next)) {
    const url = new URL(next, HERE);
    if (url.origin === HERE) path = url.pathname + url.search + url.hash;
  }
  // The browser kept the fragment (#camera=...) through the server's redirect to here.
  return hash && !path.includes('#') ? path + hash : path;
}

function showError(message) {
  const box = $('#login-error');
  box.textContent = message;
  box.hidden = !message;
}

async function post(url, body) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.ok) return null;
  const answer = await response.json().catch(() => ({}));
  if (response.status === 429) {
    const seconds = response.headers.get('Retry-After');
    return `${answer.error || 'Too many attempts'}${seconds ? ` (wait ${seconds} s)` : ''}`;
  }
  return answer.error || `${response.status} ${response.statusText}`;
}

function wire(form, submit) {
  form.hidden = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button');
    button.disabled = true;
    showError('');
    try {
      const error = await submit(new FormData(form));
      if (error) showError(error);
      else location.assign(safeNext(location.search, location.hash));
    } catch (error) {
      showError(`Can't reach the gateway: ${error?.message || error}`);
    } finally {
      button.disabled = false;
    }
  });
  form.querySelector('input').focus();
}

async function start() {
  let state = {};
  try {
    state = await (await fetch('/api/auth', { cache: 'no-store' })).json();
  } catch {
    showError("Can't reach the gateway. Reload to try again.");
    return;
  }
  if (!state.enabled || state.user) {
    location.assign(safeNext(location.search, location.hash));
    return;
  }
  if (state.setup_needed) {
    wire($('#setup-form'), (data) => {
      if (data.get('password') !== data.get('repeat')) return 'The two passwords differ.';
      return post('/api/auth/setup', { code: data.get('code'), password: data.get('password') });
    });
  } else {
    wire($('#login-form'), (data) => post('/api/auth/login', {
      user: data.get('user'), password: data.get('password'),
    }));
  }
}

if (typeof document !== 'undefined' && document.querySelector('#login-error')) start();

// Bootstrap: poll /api/cameras, keep the grid in step, route #camera=<name> to the full
// view, and expose window.camgate for tests and debugging.

import { DiscoverPanel } from './discover.js';
import { isTyping } from './dom.js';
import { CameraGrid } from './grid.js';
import { Backoff } from './reconnect.js';

const API_URL = '/api/cameras';
const POLL_MS = 3000;
const API_TIMEOUT_MS = 5000;
const STATS_KEY = 'camgate.showStats';

const $ = (selector) => document.querySelector(selector);
const sessions = new Map(); // camera name -> current WhepSession
const apiBackoff = new Backoff({ minMs: 2000, maxMs: 15000 });

let cameras = null; // last camera list from the API; null until the first answer
let apiError = null; // message while the API is unreachable
let retryAt = 0;
let pollTimer = null;
let inFlight = null;
let resolveReady;
const ready = new Promise((resolve) => { resolveReady = resolve; });

const grid = new CameraGrid($('#grid'), $('#viewer'), {
  sessions,
  onOpenChange: writeHash,
  onTilesChange: renderCount,
  // Every session asks for push-to-talk; the gateway says on its "talk" channel whether
  // this account may talk to that camera (admins, cameras with a backchannel).
  playerOptions: { sessionOptions: { talk: true } },
});

// -- API polling ---------------------------------------------------------------------------

function refresh() {
  inFlight ??= poll().finally(() => { inFlight = null; });
  return inFlight;
}

async function poll() {
  clearTimeout(pollTimer);
  let delay = POLL_MS;
  try {
    const response = await fetch(API_URL, {
      cache: 'no-store',
      headers: { Accept: 'application/json' },
      signal: AbortSignal.timeout?.(API_TIMEOUT_MS),
    });
    if (response.status === 401) {
      signIn();
      return;
    }
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`.trim());
    const body = await response.json();
    const list = Array.isArray(body) ? body : body?.cameras;
    if (!Array.isArray(list)) throw new Error('unexpected answer from the camera API');
    cameras = list.filter((camera) => typeof camera?.name === 'string');
    apiError = null;
    apiBackoff.reset();
  } catch (error) {
    apiError = error?.name === 'TimeoutError' ? 'no answer from the gateway'
      : error?.message || String(error);
    delay = apiBackoff.next();
  }
  retryAt = Date.now() + delay;
  render();
  if (cameras) resolveReady(cameras);
  pollTimer = setTimeout(refresh, delay);
}

// -- account -----------------------------------------------------------------------------------

function signIn() {
  const here = location.pathname + location.search + location.hash;
  location.assign(`/login?next=${encodeURIComponent(here)}`);
}

async function showAccount() {
  let state;
  try {
    state = await (await fetch('/api/auth', { cache: 'no-store' })).json();
  } catch {
    return; // the camera poll reports an unreachable gateway
  }
  // A watch-only account can't search for cameras (or steer: the API sends it no PTZ).
  $('.add-camera').hidden = Boolean(state?.enabled && state.user && !state.can_steer);
  const button = $('.sign-out');
  if (!state?.enabled || !state.user) return;
  button.hidden = false;
  button.title = `Signed in as ${state.user}. Sign out`;
  button.addEventListener('click', async () => {
    await fetch('/api/auth/logout', { method: 'POST' }).catch(() => {});
    signIn();
  });
}

// -- rendering -------------------------------------------------------------------------------

function render() {
  if (cameras) grid.update(cameras);
  renderCount();
  renderNotice();
  renderBanner();
  openFromHash();
}

function renderCount() {
  const count = $('#camera-count');
  if (!cameras) {
    count.textContent = '';
    return;
  }
  const live = $('#grid').querySelectorAll('.tile[data-state="live"]').length;
  const text = `${cameras.length} camera${cameras.length === 1 ? '' : 's'}${cameras.length ? ` · ${live} live` : ''}`;
  if (count.textContent !== text) count.textContent = text;
}

function retryText() {
  const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
  return seconds ? `Retrying in ${seconds} s.` : 'Retrying…';
}

function renderNotice() {
  const notice = $('#notice');
  let kind = null;
  if (!cameras) kind = apiError ? 'error' : 'loading';
  else if (!cameras.length) kind = 'empty';
  notice.hidden = kind == null;
  if (!kind) return;
  notice.dataset.kind = kind;
  const [title, text] = {
    loading: ['Loading cameras…', ''],
    error: ["Can't reach the camgate gateway", `${apiError}. ${retryText()}`],
    empty: ['No cameras configured',
      'Add a camera to the gateway configuration and restart camgate. It shows up here on its own.'],
  }[kind];
  notice.querySelector('.notice-title').textContent = title;
  notice.querySelector('.notice-text').textContent = text;
  notice.querySelector('.retry').hidden = kind !== 'error';
}

function renderBanner() {
  const banner = $('#banner');
  banner.hidden = !(cameras && apiError);
  if (banner.hidden) return;
  banner.querySelector('.banner-text').textContent =
    `Lost contact with the gateway (${apiError}). Showing the last known state. ${retryText()}`;
}

setInterval(() => { // keep the "Retrying in N s" countdown honest
  if (apiError) {
    renderNotice();
    renderBanner();
  }
}, 1000);

// -- #camera=<name> routing ------------------------------------------------------------------

function hashCamera() {
  const match = /^#camera=(.+)$/.exec(location.hash);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return null;
  }
}

let awaitingBack = false; // history.back() issued, its popstate not yet seen

function openFromHash(event) {
  if (event?.type === 'popstate') awaitingBack = false;
  if (awaitingBack) return; // the URL still names the camera we just closed
  const name = hashCamera();
  if (name == null) grid.close();
  else grid.open(name); // unknown yet: opens on a later poll if it appears
}

/** Mirror the full view into the URL; Back closes it when we pushed the entry. */
function writeHash(name) {
  if (hashCamera() === name) return;
  if (name != null) {
    history.pushState({ camgateViewer: true }, '', `#camera=${encodeURIComponent(name)}`);
  } else if (history.state?.camgateViewer) {
    awaitingBack = true;
    history.back();
  } else {
    history.replaceState(null, '', location.pathname + location.search);
  }
}

addEventListener('popstate', openFromHash);
addEventListener('hashchange', openFromHash);

// -- controls --------------------------------------------------------------------------------

function setShowStats(show) {
  grid.setShowStats(show);
  document.body.classList.toggle('show-stats', show);
  for (const button of document.querySelectorAll('.stats-toggle')) button.setAttribute('aria-pressed', String(show));
  try {
    localStorage.setItem(STATS_KEY, show ? '1' : '0');
  } catch {
    // storage disabled: the toggle just is not remembered
  }
}

for (const button of document.querySelectorAll('.stats-toggle')) {
  button.addEventListener('click', () => setShowStats(!grid.showStats));
}
for (const button of document.querySelectorAll('.retry')) button.addEventListener('click', () => refresh());
$('.viewer-close').addEventListener('click', () => grid.close());

const discover = new DiscoverPanel($('#discover'));
$('.add-camera').addEventListener('click', () => discover.open());

addEventListener('keydown', (event) => {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  if (document.querySelector('dialog[open]')) return; // the dialog owns the keys
  if (grid.openName && !isTyping(event.target) && grid.handlePtzKey(event)) return;
  if (event.key === 'Escape' && grid.openName) {
    event.preventDefault();
    grid.close();
  } else if ((event.key === 's' || event.key === 'S') && !isTyping(event.target)) {
    setShowStats(!grid.showStats);
  }
});
// Key releases always reach the pad, whatever modifiers or focus changed meanwhile.
addEventListener('keyup', (event) => grid.handlePtzKey(event));

// Leaving the page: delete the WHEP sessions (keepalive DELETEs). Coming back from the
// back/forward cache: start over. Merely hidden pages keep playing.
addEventListener('pagehide', () => grid.destroyAll());
addEventListener('pageshow', (event) => {
  if (event.persisted) refresh();
});

// -- start -----------------------------------------------------------------------------------

let storedStats = false;
try {
  storedStats = localStorage.getItem(STATS_KEY) === '1';
} catch {
  // no storage
}
setShowStats(storedStats);

window.camgate = {
  sessions,
  /** Fresh stats summary of one camera's stream; null for an unknown camera. */
  stats: async (name) => grid.players.get(name)?.collectStats() ?? null,
  cameras: () => cameras,
  refresh,
  ready,
  grid,
  discover,
  /** A PTZ command (docs/ptz.md) to one camera over its data channel; resolves with the reply. */
  ptz: (name, command) => grid.tiles.get(name)?.player.ptz.send(command)
    ?? Promise.resolve({ v: 1, ok: false, error: 'unknown camera' }),
};

render();
refresh();
showAccount();

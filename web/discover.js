// "Add camera": the ONVIF cameras the gateway finds on its network (GET /api/discover),
// each with a config snippet to copy. Adding is copy-paste into camgate's config file.
//
// DOM contract: dialog#discover, .discover-search, .discover-status, li.discover-device
// [data-address] with .discover-snippet and button.discover-copy.

import { el, icon, setText } from './dom.js';

const DISCOVER_URL = '/api/discover?timeout=3';
const STALE_MS = 30_000; // reopening later searches again

export class DiscoverPanel {
  /** @param {HTMLDialogElement} dialog the #discover dialog of index.html */
  constructor(dialog, { fetch: fetchFn = (...args) => globalThis.fetch(...args) } = {}) {
    this.dialog = dialog;
    this.fetch = fetchFn;
    this.list = dialog.querySelector('.discover-list');
    this.status = dialog.querySelector('.discover-status');
    this.searchButton = dialog.querySelector('.discover-search');
    this.searchedAt = -Infinity;
    this.running = null;
    this.searchButton.addEventListener('click', () => this.search());
    dialog.querySelector('.sheet-close').addEventListener('click', () => dialog.close());
    // A click on the backdrop (the dialog element itself, outside its box) closes it.
    dialog.addEventListener('click', (event) => {
      if (event.target === dialog) dialog.close();
    });
  }

  open() {
    if (!this.dialog.open) this.dialog.showModal();
    if (!this.running && performance.now() - this.searchedAt > STALE_MS) this.search();
  }

  /** One search at a time; resolves with the device records (also rendered). */
  search() {
    this.running ??= this._search().finally(() => { this.running = null; });
    return this.running;
  }

  async _search() {
    this.dialog.dataset.state = 'searching';
    this.searchButton.disabled = true;
    setText(this.status, 'Searching the network for ONVIF cameras…');
    let devices = [];
    try {
      const response = await this.fetch(DISCOVER_URL, { cache: 'no-store', headers: { Accept: 'application/json' } });
      const body = await response.json().catch(() => null);
      if (!response.ok) throw new Error(body?.error || `${response.status} ${response.statusText}`.trim());
      if (!Array.isArray(body)) throw new Error('unexpected answer from the gateway');
      devices = body.filter((d) => d && typeof d.address === 'string' && typeof d.snippet === 'string');
      this.dialog.dataset.state = devices.length ? 'found' : 'none';
      setText(this.status, devices.length
        ? `Found ${devices.length} ONVIF camera${devices.length === 1 ? '' : 's'}.`
        : 'No ONVIF cameras answered. Check that ONVIF (and discovery) is enabled on the camera and that it is on the same network as camgate.');
      this.searchedAt = performance.now();
    } catch (error) {
      this.dialog.dataset.state = 'error';
      setText(this.status, `Search failed: ${error?.message || error}`);
    } finally {
      this.searchButton.disabled = false;
    }
    this.list.replaceChildren(...devices.map((device) => this._card(device)));
    return devices;
  }

  _card(device) {
    const item = el('li', 'discover-device', { 'data-address': device.address });
    const head = el('div', 'discover-head');
    const title = el('span', 'discover-name');
    title.textContent = device.name || device.hardware || device.address;
    head.append(icon('camera'), title);
    if (device.ptz) head.append(Object.assign(el('span', 'chip'), { textContent: 'PTZ' }));
    const meta = el('p', 'discover-meta');
    meta.textContent = [device.hardware, device.manufacturer, device.address].filter(Boolean).join(' · ');

    const code = el('code');
    code.textContent = device.snippet.trimEnd();
    const pre = el('pre', 'discover-snippet', { tabindex: '0', 'aria-label': `Config snippet for ${title.textContent}` });
    pre.append(code);
    const copy = el('button', 'button button-small discover-copy', { type: 'button' });
    const copyLabel = el('span');
    copyLabel.textContent = 'Copy';
    copy.append(icon('copy'), copyLabel);
    copy.setAttribute('aria-label', `Copy the config snippet for ${title.textContent}`);
    copy.addEventListener('click', async () => {
      const ok = await copyText(device.snippet);
      if (!ok) selectText(code);
      copy.dataset.copied = ok ? 'yes' : 'no';
      setText(copyLabel, ok ? 'Copied' : 'Press Ctrl+C');
      setTimeout(() => {
        delete copy.dataset.copied;
        setText(copyLabel, 'Copy');
      }, 2500);
    });
    head.append(copy);
    item.append(head, meta, pre);
    return item;
  }
}

/** Clipboard API where allowed (https, localhost); a plain http LAN page needs the old way. */
async function copyText(text) {
  try {
    if (navigator.clipboard && globalThis.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // permission refused: try the fallback
  }
  const area = el('textarea', 'visually-hidden', { readonly: '', 'aria-hidden': 'true' });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

function selectText(node) {
  const range = document.createRange();
  range.selectNodeContents(node);
  const selection = getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

// Main and sub streams (docs/streams.md, "In the viewer"): which of a camera's streams a
// tile gets, and the person's pin, over the session's "stream" data channel.
//
// Browser -> gateway: {"type": "view", "view": "grid"|"full"} when the tile's <video> moves
// into the full view and back (same session), {"type": "pin", "pin": "auto"|"main"|"sub"}
// from the control. The WHEP POST carries both as ?view=&pin= so a tile starts on the
// right stream. Gateway -> browser: {"type": "stream", current, pin, view, streams, reason,
// estimate} on open, on every change and every 2 s. A gateway that never says anything
// (older ones ignore the channel) leaves the badge and the control hidden.

import { el, icon, setText } from './dom.js';

export const STREAMS = ['main', 'sub'];
export const PINS = ['auto', 'main', 'sub'];
export const VIEWS = ['grid', 'full'];
const PIN_KEY = 'camgate.streamPin.'; // + camera name; no entry = auto
const MAX_MESSAGE = 16384;
const MAX_REASON = 64;

/** The camera's WHEP URL with ?view=&pin= (any query it already has is kept). */
export function withStreamQuery(url, { view, pin }) {
  const [path, query = ''] = String(url).split('?');
  const params = new URLSearchParams(query);
  params.set('view', view);
  params.set('pin', pin);
  return `${path}?${params}`;
}

const finite = (value) => (typeof value === 'number' && Number.isFinite(value) ? value : null);

/**
 * A gateway status message, checked and normalised; null for anything else (not JSON, another
 * type, an unknown current stream). Unknown or malformed fields read as unknown (null).
 */
export function parseStatus(data) {
  if (typeof data !== 'string' || data.length > MAX_MESSAGE) return null;
  let message;
  try {
    message = JSON.parse(data);
  } catch {
    return null;
  }
  if (!message || typeof message !== 'object' || message.type !== 'stream') return null;
  if (!STREAMS.includes(message.current)) return null;
  const streams = Array.isArray(message.streams) ? STREAMS.filter((name) => message.streams.includes(name)) : [];
  if (!streams.includes(message.current)) streams.push(message.current);
  const reason = typeof message.reason === 'string' && message.reason.length <= MAX_REASON ? message.reason : null;
  const e = message.estimate && typeof message.estimate === 'object' ? message.estimate : null;
  return {
    current: message.current,
    pin: PINS.includes(message.pin) ? message.pin : null,
    view: VIEWS.includes(message.view) ? message.view : null,
    streams,
    reason,
    estimate: e && {
      bitrateKbps: finite(e.bitrate_kbps),
      loss: finite(e.loss) == null ? null : Math.min(1, Math.max(0, e.loss)),
      rttMs: finite(e.rtt_ms),
      jitterMs: finite(e.jitter_ms),
      mainKbps: finite(e.main_kbps),
      subKbps: finite(e.sub_kbps),
      mainAllowed: typeof e.main_allowed === 'boolean' ? e.main_allowed : null,
    },
  };
}

/** "slow link" for the reason of the last switch, as the status reports it. */
export function describeReason(status) {
  const reason = status?.reason;
  if (!reason) return null;
  const other = status.current === 'main' ? 'sub' : 'main';
  switch (reason) {
    case 'view': return status.current === 'main' ? 'full view' : 'grid view';
    case 'pin': return 'pinned';
    case 'congestion': return 'slow link';
    case 'recovered': return 'link recovered';
    case 'unavailable': return `${other} stream unavailable`;
    default: return reason;
  }
}

/**
 * What the badge and the pin control show, for the latest status and the person's pin:
 * hidden until the gateway reports a camera with two streams.
 */
export function streamBadgeModel(status, pin, name = '') {
  if (!status || status.streams.length < 2) return { shown: false };
  const { current } = status;
  const auto = pin === 'auto';
  // Pinned and honoured: a pin mark says it; otherwise the stream it gets is spelled out.
  const pinnedHere = !auto && pin === current;
  const how = auto ? 'camgate chooses' : pinnedHere ? 'pinned' : `pinned to ${pin}, not available`;
  const why = describeReason(status);
  const title = `${current === 'main' ? 'Main' : 'Sub'} stream, ${how}${why ? ` (${current}: ${why})` : ''}`;
  return {
    shown: true,
    current,
    pin,
    auto,
    pinned: pinnedHere,
    text: current,
    title,
    label: `Stream for ${name}`.trim() + `: ${current}, ${how}`,
  };
}

/** localStorage, or null where the browser refuses it (reading it may throw). */
function browserStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

function readPin(storage, name) {
  try {
    const pin = storage?.getItem(PIN_KEY + name);
    return PINS.includes(pin) ? pin : 'auto';
  } catch {
    return 'auto';
  }
}

/**
 * One camera's stream state in this browser: the view its <video> is in, the person's pin
 * (remembered per camera), and the gateway's latest status on the current session's
 * "stream" channel. attach()/detach() follow the player's sessions.
 */
export class StreamClient {
  constructor(name, { storage = browserStorage() } = {}) {
    this.name = name;
    this.storage = storage;
    this.view = 'grid';
    this.pin = readPin(storage, name);
    this.status = null; // parseStatus() of the last good message on this session
    this.channel = null;
    this._told = null; // {view, pin} the gateway has from this session (URL, then messages)
    this.onChange = () => {};
    this._handlers = {
      open: () => this._sync(),
      message: (event) => this._receive(event.data),
      close: () => this._forget(), // a status nobody refreshes any more is not shown
    };
  }

  /** ?view=&pin= for a new session: the gateway starts it on the right stream. */
  query() {
    return { view: this.view, pin: this.pin };
  }

  /** Follow a session's "stream" channel; told: what its WHEP POST said. */
  attach(channel, told = this.query()) {
    this.detach();
    this.channel = channel;
    this._told = { ...told };
    for (const [type, handler] of Object.entries(this._handlers)) channel.addEventListener(type, handler);
    this._sync();
  }

  detach() {
    const channel = this.channel;
    if (!channel) return;
    for (const [type, handler] of Object.entries(this._handlers)) channel.removeEventListener(type, handler);
    this.channel = null;
    this._told = null;
    this.status = null;
    this.onChange();
  }

  /** The tile's <video> moved into the full view ('full') or back ('grid'). */
  setView(view) {
    if (!VIEWS.includes(view) || view === this.view) return;
    this.view = view;
    this._sync();
  }

  /** The person's choice from the control; remembered for this camera. */
  setPin(pin) {
    if (!PINS.includes(pin)) return;
    try {
      if (pin === 'auto') this.storage?.removeItem(PIN_KEY + this.name);
      else this.storage?.setItem(PIN_KEY + this.name, pin);
    } catch {
      // storage disabled: the pin lasts until the page is left
    }
    if (pin === this.pin) return;
    this.pin = pin;
    this._sync();
    this.onChange();
  }

  // -- internals -------------------------------------------------------------------------

  /** Tell the gateway what changed since the POST or the last message (once the channel is open). */
  _sync() {
    if (this.channel?.readyState !== 'open' || !this._told) return;
    if (this._told.view !== this.view && this._send({ type: 'view', view: this.view })) this._told.view = this.view;
    if (this._told.pin !== this.pin && this._send({ type: 'pin', pin: this.pin })) this._told.pin = this.pin;
  }

  _send(message) {
    try {
      this.channel.send(JSON.stringify(message));
      return true;
    } catch {
      return false; // closing: the next session's URL carries it
    }
  }

  _forget() {
    if (!this.status) return;
    this.status = null;
    this.onChange();
  }

  _receive(data) {
    const status = parseStatus(data);
    if (!status) return;
    this.status = status;
    this.onChange();
  }
}

/** The badge (which stream, auto or pinned) and the pin control, on a tile or in the full view. */
export class StreamControl {
  constructor() {
    this.element = el('span', 'stream');
    this.element.hidden = true;
    this.badge = el('span', 'stream-badge', { 'aria-hidden': 'true' });
    this.badgeText = el('span', 'stream-name');
    this.badge.append(icon('pin', 'icon stream-pinned'), this.badgeText);
    this.select = el('select', 'stream-pin');
    for (const pin of PINS) {
      const option = el('option', '', { value: pin });
      option.textContent = pin;
      this.select.append(option);
    }
    this.element.append(this.badge, this.select);
    this.client = null;
    this.select.addEventListener('click', (event) => event.stopPropagation()); // the tile's click opens the full view
    this.select.addEventListener('change', () => this.client?.setPin(this.select.value));
  }

  bind(client) {
    this.client = client;
  }

  render(name) {
    const model = streamBadgeModel(this.client?.status, this.client?.pin, name);
    this.element.hidden = !model.shown;
    if (!model.shown) return;
    this.element.dataset.stream = model.current;
    this.element.dataset.pin = model.pin;
    this.badge.toggleAttribute('data-pinned', model.pinned);
    setText(this.badgeText, model.pinned ? '' : model.text);
    if (this.select.value !== model.pin) this.select.value = model.pin;
    if (this.element.title !== model.title) this.element.title = model.title;
    if (this.select.getAttribute('aria-label') !== model.label) this.select.setAttribute('aria-label', model.label);
  }
}

// PTZ commands over the "ptz" data channel of a camera's peer connection (docs/ptz.md).
//
//   const client = new PtzClient();
//   client.attach(channel);                          // per WHEP session; detach() on teardown
//   const reply = await client.send({ cmd: 'home' }); // {v: 1, id, ok, error?, presets?}
//
// send() never rejects: a reply with ok: false stands for every failure (channel not open,
// closed while waiting, no answer in time), so callers have one path for errors.

export const PROTOCOL_VERSION = 1;
export const MAX_PRESET_NAME = 64;
const MAX_PENDING = 256; // a wedged channel must not grow this without bound

export class PtzClient {
  constructor({ timeoutMs = 8000, timers = globalThis } = {}) {
    this.timeoutMs = timeoutMs;
    this.timers = timers;
    this.channel = null;
    this.lastId = 0;
    this._pending = new Map(); // id -> {resolve, timer}
    this._listeners = new Set();
    this._handlers = {
      open: () => this._changed(),
      close: () => this._closed('PTZ connection closed'),
      error: () => this._changed(),
      message: (event) => this._onMessage(event.data),
    };
  }

  get open() {
    return this.channel?.readyState === 'open';
  }

  /** fn() after every open/close; returns a function that unsubscribes. */
  subscribe(fn) {
    this._listeners.add(fn);
    return () => this._listeners.delete(fn);
  }

  attach(channel) {
    if (channel === this.channel) return;
    this.detach();
    this.channel = channel;
    for (const [type, handler] of Object.entries(this._handlers)) channel.addEventListener(type, handler);
    this._changed();
  }

  detach() {
    const channel = this.channel;
    if (!channel) return;
    for (const [type, handler] of Object.entries(this._handlers)) channel.removeEventListener(type, handler);
    this.channel = null;
    this._closed('PTZ connection closed');
  }

  /** Send {cmd, ...fields} with v and a fresh id; resolves with the gateway's reply. */
  send(command) {
    const id = ++this.lastId;
    if (!this.open) return Promise.resolve(failure(id, 'PTZ is not connected'));
    if (this._pending.size >= MAX_PENDING) return Promise.resolve(failure(id, 'too many PTZ commands waiting'));
    try {
      this.channel.send(JSON.stringify({ ...command, v: PROTOCOL_VERSION, id }));
    } catch (error) {
      return Promise.resolve(failure(id, `PTZ send failed: ${error?.message || error}`));
    }
    return new Promise((resolve) => {
      const timer = this.timers.setTimeout(() => this._settle(id, failure(id, 'the camera did not answer in time')), this.timeoutMs);
      this._pending.set(id, { resolve, timer });
    });
  }

  _onMessage(data) {
    if (typeof data !== 'string' || data.length > 1 << 20) return;
    let reply;
    try {
      reply = JSON.parse(data);
    } catch {
      return; // not ours to judge: the gateway only sends JSON
    }
    if (reply && typeof reply === 'object' && this._pending.has(reply.id)) {
      this._settle(reply.id, { ...reply, ok: reply.ok === true });
    }
  }

  _settle(id, reply) {
    const entry = this._pending.get(id);
    if (!entry) return;
    this._pending.delete(id);
    this.timers.clearTimeout(entry.timer);
    entry.resolve(reply);
  }

  _closed(reason) {
    for (const id of [...this._pending.keys()]) this._settle(id, failure(id, reason));
    this._changed();
  }

  _changed() {
    for (const fn of [...this._listeners]) {
      try {
        fn(this);
      } catch (error) {
        console.error('PTZ listener failed', error);
      }
    }
  }
}

function failure(id, error) {
  return { v: PROTOCOL_VERSION, id, ok: false, error };
}

/**
 * Why the gateway would refuse this preset name (null: it is fine). Mirrors docs/ptz.md:
 * 1-64 printable characters (Python's str.isprintable: no control, format or separator
 * characters but the plain space), not only spaces; counted in code points.
 */
export function presetNameError(name) {
  const length = [...name].length;
  if (length < 1 || length > MAX_PRESET_NAME) return `A preset name is 1 to ${MAX_PRESET_NAME} characters.`;
  if (!/^(?:[^\p{C}\p{Z}]| )+$/u.test(name)) return 'A preset name can only hold printable characters.';
  if (!name.trim()) return 'A preset name needs more than spaces.';
  return null;
}

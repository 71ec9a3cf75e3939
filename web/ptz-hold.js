// Press-and-hold PTZ: what is held (pointer on a pad button, arrow keys, zoom keys) becomes
// one continuous move; a refresh every refreshMs keeps the gateway's dead-man timer from
// stopping it; letting go of the last input sends stop. No DOM here (unit-tested in node).

export const REFRESH_MS = 300; // well inside the gateway's 1 s dead-man timeout
export const SPEED_MIN = 0.1;
export const SPEED_MAX = 1;
export const INTERRUPTED = 'The move was interrupted (another command took over). Press again.';

/** Key (KeyboardEvent.key) -> held direction, or the one-shot 'home'. */
const KEY_VECTORS = {
  ArrowLeft: { pan: -1 },
  ArrowRight: { pan: 1 },
  ArrowUp: { tilt: 1 },
  ArrowDown: { tilt: -1 },
  '+': { zoom: 1 },
  '=': { zoom: 1 }, // + without Shift on US layouts
  '-': { zoom: -1 },
  _: { zoom: -1 },
};

/**
 * What a key event means for PTZ. keydown: {kind: 'hold', source, vector} (held until the
 * keyup of the same physical key), {kind: 'home'}, {kind: 'repeat'} (auto-repeat: swallow
 * it) or null (not a PTZ key). keyup: {kind: 'release', source}. `source` names the
 * physical key (event.code).
 */
export function keyAction(event) {
  const source = `key:${event.code || event.key}`;
  // Any keyup releases its physical key: Shift or the layout may have changed event.key.
  if (event.type === 'keyup') return { kind: 'release', source };
  if (event.altKey || event.ctrlKey || event.metaKey) return null;
  if (event.key === 'Home') return event.repeat ? { kind: 'repeat' } : { kind: 'home' };
  const vector = KEY_VECTORS[event.key];
  if (!vector) return null;
  if (event.repeat) return { kind: 'repeat' };
  return { kind: 'hold', source, vector };
}

export function clampSpeed(value) {
  const number = Number(value);
  if (!Number.isFinite(number)) return 0.5;
  return Math.round(Math.min(SPEED_MAX, Math.max(SPEED_MIN, number)) * 100) / 100;
}

/** Sum of held vectors, each axis clamped to -1..1 and scaled by speed; 0 stays 0. */
export function combine(vectors, speed) {
  const out = { pan: 0, tilt: 0, zoom: 0 };
  for (const vector of vectors) {
    for (const axis of Object.keys(out)) out[axis] += vector[axis] || 0;
  }
  for (const axis of Object.keys(out)) {
    const value = Math.max(-1, Math.min(1, out[axis])) * speed;
    out[axis] = Math.round(value * 1000) / 1000 || 0; // no -0 on the wire
  }
  return out;
}

const isZero = (v) => !v.pan && !v.tilt && !v.zoom;
const same = (a, b) => a && b && a.pan === b.pan && a.tilt === b.tilt && a.zoom === b.zoom;

export class MoveHold {
  /**
   * @param {(command: object) => Promise<object>} send PtzClient.send or alike
   * @param {{refreshMs?: number, speed?: number, timers?: object, onError?: Function, onChange?: Function}} options
   *   onError(message) when the camera refuses the move; onChange(active) when moving starts/ends
   */
  constructor(send, { refreshMs = REFRESH_MS, speed = 0.5, timers = globalThis, onError = () => {}, onChange = () => {} } = {}) {
    Object.assign(this, { send, refreshMs, timers, onError, onChange });
    this.speed = clampSpeed(speed);
    this.held = new Map(); // source -> vector
    this.current = null; // the move the gateway is executing, null when stopped
    this._timer = null;
    this._generation = 0; // bumps on every move/stop: late replies of old moves are ignored
  }

  get active() {
    return this.current != null;
  }

  press(source, vector) {
    this.held.set(source, vector);
    this._update();
  }

  release(source) {
    if (this.held.delete(source)) this._update();
  }

  /** Let go of everything (blur, hidden page, pad closed) and stop if moving. */
  releaseAll() {
    this.held.clear();
    this._update();
  }

  /** Forget every input without sending anything (the channel is gone: nothing to stop). */
  reset() {
    const was = this.active;
    this.held.clear();
    this.current = null;
    this._generation++;
    this.timers.clearInterval(this._timer);
    this._timer = null;
    if (was) this.onChange(false);
  }

  setSpeed(speed) {
    this.speed = clampSpeed(speed);
    if (this.held.size) this._update();
  }

  _update() {
    const vector = combine(this.held.values(), this.speed);
    if (isZero(vector)) {
      if (this.current) this._stop();
      return;
    }
    if (same(vector, this.current)) return;
    this._move(vector);
  }

  _move(vector) {
    const wasActive = this.active;
    this.current = vector;
    const generation = ++this._generation;
    this._watch(this.send({ cmd: 'move', ...vector }), generation, true);
    this.timers.clearInterval(this._timer);
    this._timer = this.timers.setInterval(() => this._refresh(generation), this.refreshMs);
    if (!wasActive) this.onChange(true);
  }

  _refresh(generation) {
    if (generation !== this._generation) return;
    this._watch(this.send({ cmd: 'refresh' }), generation, false);
  }

  _stop() {
    this.current = null;
    this._generation++;
    this.timers.clearInterval(this._timer);
    this._timer = null;
    this.send({ cmd: 'stop' }).then((reply) => {
      if (!reply.ok) this.onError(reply.error || 'stop failed');
    });
    this.onChange(false);
  }

  /**
   * Give up holding when the gateway refuses the move or a refresh, or when a refresh says
   * our move is no longer the camera's (its dead-man fired while this tab was throttled, or
   * another viewer or a preset took over). No stop then: the camera is not moving for us,
   * and a stop would cut off whoever moves it now. The user presses again.
   */
  _watch(promise, generation, isMove) {
    promise.then((reply) => {
      if (generation !== this._generation) return; // an older move: superseded already
      let message = null;
      if (!reply.ok) message = reply.error || (isMove ? 'move failed' : 'refresh failed');
      else if (!isMove && reply.moving === false) message = INTERRUPTED;
      if (message == null) return;
      this.reset();
      this.onError(message);
    });
  }
}

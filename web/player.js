// CameraPlayer: keeps one camera playing in one <video>. Owns the WHEP session, watches it
// (connection state and decoded frames, via getStats) and reconnects with backoff.

import { AudioPlayback } from './audio.js';
import { PtzClient } from './ptz-client.js';
import { Backoff } from './reconnect.js';
import { TalkClient } from './talk.js';
import { summarize } from './stats.js';
import { StreamClient, withStreamQuery } from './streams.js';
import { WhepSession } from './whep.js';

/** Server states meaning the gateway has no picture from the camera right now. */
export const AWAY_STATES = new Set(['reconnecting', 'offline']);

export const DEFAULT_TIMING = {
  tickMs: 1000, // getStats() poll
  disconnectedMs: 3000, // pc "disconnected" this long -> reconnect
  stallMs: 5000, // no new decoded frame this long -> reconnect
  firstFrameMs: 12000, // no first frame this long after starting -> reconnect
};

/**
 * What a tile shows, from the camera object (server) and the player (this browser):
 * {state: connecting|live|reconnecting|offline, text, detail}.
 */
export function combineState(camera, player) {
  const local = player?.state ?? 'idle';
  // A camera that is away says so (reconnecting / offline); the reason is the detail.
  if (AWAY_STATES.has(camera.state)) {
    const fallback = camera.state === 'offline' ? 'Camera offline' : 'Camera reconnecting';
    return { state: camera.state, text: camera.state, detail: camera.error || fallback };
  }
  // The gateway itself still waits for the camera's first picture: say so, not "reconnecting".
  const state = local === 'idle' || (camera.state === 'connecting' && local !== 'live') ? 'connecting' : local;
  return { state, text: state, detail: state === 'live' ? null : camera.error || player?.error || null };
}

export class CameraPlayer {
  /**
   * @param {string} name camera name
   * @param {HTMLVideoElement} video where the stream plays (may move around the DOM)
   * @param {{onChange?: Function, sessions?: Map, timing?: object, sessionOptions?: object, storage?: Storage}} options
   *   storage: where the stream pin is remembered (localStorage by default)
   */
  constructor(name, video, {
    onChange = () => {}, sessions = new Map(), timing = {}, sessionOptions = {}, storage,
  } = {}) {
    Object.assign(this, { name, video, onChange, sessions, sessionOptions });
    this.timing = { ...DEFAULT_TIMING, ...timing };
    this.backoff = new Backoff();
    this.camera = null;
    this.session = null;
    this.state = 'idle'; // idle | connecting | live | reconnecting
    this.error = null; // last local failure, shown while not live
    this.stats = null; // latest summarize() result
    this.ptz = new PtzClient(); // follows the current session's "ptz" data channel
    this.audio = new AudioPlayback(video); // muted until the user unmutes (audio.js)
    this.audio.onChange = () => this.onChange(this);
    this.talk = new TalkClient(); // and its "talk" channel (push-to-talk)
    this.streams = new StreamClient(name, { storage }); // main/sub: view, pin, the gateway's status
    this.streams.onChange = () => this.onChange(this);
    this._retryTimer = null;
    this._tickTimer = setInterval(() => this._tick(), this.timing.tickMs);
    this._onPlaying = () => this._tick();
    video.addEventListener('playing', this._onPlaying);
  }

  get away() {
    return !this.camera || AWAY_STATES.has(this.camera.state);
  }

  /** New camera object from the API: start, hold or resume. */
  update(camera) {
    const wasAway = this.away;
    this.camera = camera;
    if (this.away || this.session) return;
    if (wasAway) this.backoff.reset(); // camera came back: try at once
    if (wasAway || !this._retryTimer) {
      clearTimeout(this._retryTimer);
      this._connect();
    }
  }

  /** Fresh stats from the current session (also refreshes this.stats). */
  async collectStats() {
    await this._tick();
    return {
      name: this.name,
      state: this.state,
      connectionState: this.session?.pc?.connectionState ?? null,
      error: this.error,
      stream: this.streams.status, // main/sub and the path estimate, from the gateway (null: not told)
      ...(this.stats || {}),
    };
  }

  destroy() {
    clearInterval(this._tickTimer);
    clearTimeout(this._retryTimer);
    this.video.removeEventListener('playing', this._onPlaying);
    this._teardown();
    this.audio.destroy();
    this.video.srcObject = null;
    this.state = 'idle';
  }

  // -- internals -------------------------------------------------------------------------

  _setState(state, error = this.error) {
    if (state === this.state && error === this.error) return;
    this.state = state;
    this.error = error;
    this.onChange(this);
  }

  async _connect() {
    this._retryTimer = null;
    if (this.away || !this.camera?.whep_url) return;
    // A grid tile asks for the sub stream from the start, the full view for the main one.
    const told = this.streams.query();
    const session = new WhepSession(withStreamQuery(this.camera.whep_url, told), {
      ...this.sessionOptions,
      onState: (state) => this._onSessionState(session, state),
      onDataChannel: (channel) => {
        if (channel.label === 'ptz' && session === this.session) this.ptz.attach(channel);
        if (channel.label === 'talk' && session === this.session) this.talk.attach(channel, session);
        if (channel.label === 'stream' && session === this.session) this.streams.attach(channel, told);
      },
    });
    this.session = session;
    this.sessions.set(this.name, session);
    this.stats = null;
    this._frames = 0;
    this._lastFrameAt = null;
    this._startedAt = performance.now();
    this._disconnectedAt = null;
    this._setState(this.backoff.attempt === 0 && this.state !== 'live' ? 'connecting' : 'reconnecting');
    try {
      const stream = await session.start();
      if (session !== this.session) return;
      this.video.srcObject = stream;
      this.audio.setStream(stream);
      this.video.play?.()?.catch(() => {}); // autoplay+muted normally suffices
    } catch (error) {
      if (session === this.session) this._restart(error.message || String(error));
    }
  }

  _onSessionState(session, state) {
    if (session !== this.session) return;
    if (state === 'failed') this._restart('connection failed');
    else if (state === 'disconnected') {
      this._disconnectedAt ??= performance.now();
      this._setState('reconnecting', 'connection interrupted');
    } else if (state === 'connected') {
      this._disconnectedAt = null;
      this._tick();
    }
  }

  /** Drop the session; retry after a backoff delay unless the camera is away. */
  _restart(reason) {
    this._teardown();
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    if (this.away) {
      this._setState('idle', reason);
      return;
    }
    const delay = this.backoff.next();
    this._retryTimer = setTimeout(() => this._connect(), delay);
    this._setState('reconnecting', reason);
  }

  _teardown() {
    const session = this.session;
    if (!session) return;
    this.session = null;
    if (this.sessions.get(this.name) === session) this.sessions.delete(this.name);
    this.ptz.detach();
    this.talk.detach();
    this.streams.detach();
    session.close();
  }

  async _tick() {
    const session = this.session;
    if (!session?.pc) return;
    let report;
    try {
      report = await session.getStats();
    } catch {
      return;
    }
    if (session !== this.session) return;
    this.stats = summarize(report, this.stats);

    const now = performance.now();
    if (this.stats.framesDecoded > this._frames) {
      this._frames = this.stats.framesDecoded;
      this._lastFrameAt = now;
    }
    const pcState = session.pc.connectionState;
    const flowing = this._lastFrameAt != null && now - this._lastFrameAt < this.timing.stallMs;
    if (pcState === 'connected' && flowing) {
      if (this.state !== 'live') this.backoff.reset();
      this._setState('live', null);
    }
    this.onChange(this);

    if (pcState === 'failed') return this._restart('connection failed');
    if (pcState === 'disconnected' && this._disconnectedAt != null
        && now - this._disconnectedAt > this.timing.disconnectedMs) {
      return this._restart('connection lost');
    }
    // Pictures are only expected while the gateway has them (state "live"), and hidden
    // pages may stop decoding: otherwise restart the clocks instead of judging the stream.
    if (this.camera?.state !== 'live' || globalThis.document?.hidden) {
      if (this._lastFrameAt != null) this._lastFrameAt = now;
      this._startedAt = now;
      return;
    }
    if (this._lastFrameAt != null && now - this._lastFrameAt > this.timing.stallMs) {
      return this._restart(`no video for ${Math.round((now - this._lastFrameAt) / 1000)} s`);
    }
    if (this._lastFrameAt == null && now - this._startedAt > this.timing.firstFrameMs) {
      return this._restart('no video received');
    }
  }
}

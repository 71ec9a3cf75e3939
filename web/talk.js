// Push-to-talk (docs/audio.md, "Talk back"): hold the button in full view and the
// microphone goes to the camera's speaker over the same peer connection.
//
// The WHEP session (whep.js, option `talk`) offers a sendrecv audio m-line and opens a
// "talk" data channel. The gateway's first message on it says whether this account may
// talk to this camera ({"talk": "ready", "codec"}) or why not; the button shows only when
// ready. Press: getUserMedia once, sender.replaceTrack(mic), {"talk": "start"}; release:
// {"talk": "stop"}, replaceTrack(null). Released on pointer up/cancel, Space up, blur and
// when the page is hidden.

const STATES = {
  ready: 'Hold to talk',
  requesting: 'Connecting…',
  talking: 'Talking…',
  busy: 'Someone else is talking',
  error: 'Talk failed',
};

export class TalkClient {
  constructor({ getUserMedia = (constraints) => navigator.mediaDevices.getUserMedia(constraints) } = {}) {
    this.getUserMedia = getUserMedia;
    this.state = 'none'; // none | ready | requesting | talking | busy | error | unsupported | not allowed
    this.message = '';
    this.codec = null;
    this.channel = null;
    this.session = null;
    this.mic = null; // the MediaStreamTrack, asked for once
    this.held = false;
    this.listeners = new Set();
  }

  get available() {
    return !['none', 'unsupported', 'not allowed'].includes(this.state);
  }

  /** Follow a session's "talk" channel. */
  attach(channel, session) {
    this.detach();
    this.channel = channel;
    this.session = session;
    this._onMessage = (event) => this._receive(event.data);
    channel.addEventListener('message', this._onMessage);
  }

  detach() {
    if (this.channel) this.channel.removeEventListener('message', this._onMessage);
    this.channel = null;
    this.session = null;
    this.held = false;
    this._set('none', '');
  }

  /** The button went down. */
  async press() {
    if (!this.available || this.held) return;
    this.held = true;
    this._set('requesting', '');
    try {
      if (!this.mic || this.mic.readyState === 'ended') {
        const stream = await this.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
        this.mic = stream.getAudioTracks()[0];
      }
      if (!this.held) return; // let go while the browser asked for the microphone
      await this._sender()?.replaceTrack(this.mic);
      this._send('start');
    } catch (error) {
      this.held = false;
      this._set('error', error?.name === 'NotAllowedError' ? 'microphone not allowed' : error?.message || String(error));
    }
  }

  /** The button came up (or the page lost focus): stop talking. */
  release() {
    if (!this.held) return;
    this.held = false;
    this._send('stop');
    this._sender()?.replaceTrack(null).catch(() => {});
    if (this.available) this._set('ready', '');
  }

  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // -- internals -------------------------------------------------------------------------

  _sender() {
    return this.session?.audioTransceiver?.sender ?? null;
  }

  _send(command) {
    if (this.channel?.readyState === 'open') this.channel.send(JSON.stringify({ talk: command }));
  }

  _receive(data) {
    let reply;
    try {
      reply = JSON.parse(data);
    } catch {
      return;
    }
    const state = reply?.talk;
    const message = reply?.message || '';
    if (state === 'ready') {
      this.codec = reply.codec ?? null;
      this._set(this.held ? this.state : 'ready', '');
    } else if (state === 'granted') {
      this._set(this.held ? 'talking' : 'ready', '');
    } else if (state === 'ended') {
      // our own stop, or the gateway ended the turn (max talk time, camera gone)
      if (this.held) {
        this.held = false;
        this._sender()?.replaceTrack(null).catch(() => {});
      }
      this._set('ready', message);
    } else if (state === 'busy' || state === 'error') {
      this.release();
      this._set(state, message);
    } else if (state === 'unsupported' || state === 'not allowed') {
      this.release();
      this._set(state, message);
    }
  }

  _set(state, message) {
    this.state = state;
    this.message = message;
    for (const listener of this.listeners) listener(this);
  }
}

/** The hold-to-talk button of the full view; bind(client) follows one camera's client. */
export class TalkButton {
  constructor() {
    const button = (this.element = document.createElement('button'));
    button.type = 'button';
    button.className = 'button talk-button';
    button.hidden = true;
    button.setAttribute('aria-pressed', 'false');
    this.label = document.createElement('span');
    this.label.className = 'label';
    button.append(this.label);
    this.client = null;
    this._unlisten = () => {};
    const down = (event) => {
      event.preventDefault();
      if (event.pointerId !== undefined) button.setPointerCapture?.(event.pointerId);
      this.client?.press();
    };
    const up = () => this.client?.release();
    button.addEventListener('pointerdown', down);
    for (const type of ['pointerup', 'pointercancel', 'lostpointercapture', 'blur']) button.addEventListener(type, up);
    button.addEventListener('keydown', (event) => {
      if (event.code !== 'Space' && event.key !== ' ') return;
      event.preventDefault();
      if (!event.repeat) this.client?.press();
    });
    button.addEventListener('keyup', (event) => {
      if (event.code === 'Space' || event.key === ' ') up();
    });
    button.addEventListener('click', (event) => event.preventDefault()); // Space/Enter: no click action
    addEventListener('blur', up);
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) up();
    });
  }

  bind(client) {
    if (client === this.client) return;
    this.client?.release();
    this._unlisten();
    this.client = client;
    this._unlisten = client ? client.onChange(() => this.render()) : () => {};
    this.render();
  }

  render() {
    const client = this.client;
    const button = this.element;
    button.hidden = !client?.available;
    if (!client) return;
    const text = STATES[client.state] ?? '';
    if (this.label.textContent !== text) this.label.textContent = text;
    button.dataset.talk = client.state;
    button.setAttribute('aria-pressed', String(client.state === 'talking'));
    const title = client.message ? `${text}: ${client.message}` : 'Hold to talk through the camera (Space)';
    if (button.title !== title) button.title = title;
  }
}

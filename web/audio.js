// A camera's sound in the viewer: muted at first (browsers' autoplay rules), an unmute
// control on the tile and in the full view, and a level meter that moves with the sound.
// The audio track arrives in the same MediaStream as the video and plays through the
// camera's <video>; unmuting is that element's `muted`. The meter reads an AnalyserNode
// on the received track (its AudioContext is made or resumed on the unmute click).

import { el, icon, setText } from './dom.js';

const CODEC_NAMES = { OPUS: 'Opus', PCMU: 'G.711 µ-law', PCMA: 'G.711 A-law', AAC: 'AAC' };

/** "Opus" / "G.711 µ-law" for a camera object's audio codec field. */
export function describeAudioCodec(codec) {
  return CODEC_NAMES[codec] ?? codec ?? '';
}

/** What a tile's audio control shows for a camera object and the element's muted state. */
export function audioControlModel(camera, muted) {
  const shown = Boolean(camera?.audio_output);
  const name = camera?.name ?? '';
  const label = `${muted ? 'Unmute' : 'Mute'} ${name}`.trim();
  const refused = camera?.audio_refused ? `No sound: ${camera.audio_refused}` : null;
  return { shown, muted, label, pressed: shown && !muted, refused };
}

/** 0..1 loudness of an AnalyserNode's time-domain bytes (128 = silence), RMS, scaled so
 *  that ordinary speech fills most of the meter. */
export function levelOf(bytes) {
  if (!bytes?.length) return 0;
  let sum = 0;
  for (const b of bytes) sum += (b - 128) * (b - 128);
  const rms = Math.sqrt(sum / bytes.length) / 128;
  return Math.min(1, rms * 4);
}

/** One camera's playback: mute state of its <video>, and the level meters that follow it. */
export class AudioPlayback {
  constructor(video, { AudioContextClass = globalThis.AudioContext } = {}) {
    Object.assign(this, { video, AudioContextClass });
    this.stream = null;
    this.context = null;
    this.analyser = null;
    this.source = null;
    this.meters = new Set();
    this.level = 0;
    this._frame = null;
    this.onChange = () => {};
  }

  get muted() {
    return this.video.muted;
  }

  /** The session's stream (its audio track, if any, arrives with the answer). */
  setStream(stream) {
    this.stream = stream;
    this.source?.disconnect();
    this.source = null;
    stream?.addEventListener?.('addtrack', () => this._connect());
    this._connect();
  }

  /** Unmute/mute; called from a click, so an AudioContext may start here. */
  toggle() {
    this.setMuted(!this.video.muted);
  }

  setMuted(muted) {
    this.video.muted = muted;
    if (!muted) {
      if (!this.context && this.AudioContextClass) this.context = new this.AudioContextClass();
      this.context?.resume?.().catch?.(() => {});
      this._connect();
      this._run();
    }
    this.onChange();
  }

  addMeter(meter) {
    this.meters.add(meter);
    meter.style.setProperty('--level', String(this.level));
  }

  removeMeter(meter) {
    this.meters.delete(meter);
  }

  destroy() {
    globalThis.cancelAnimationFrame?.(this._frame);
    this.source?.disconnect();
    this.context?.close?.().catch?.(() => {});
    this.context = null;
  }

  _connect() {
    const track = this.stream?.getAudioTracks?.()[0];
    if (!track || !this.context || this.source) return;
    this.analyser ??= Object.assign(this.context.createAnalyser(), { fftSize: 512 });
    this.source = this.context.createMediaStreamSource(new MediaStream([track]));
    this.source.connect(this.analyser);
  }

  _run() {
    if (this._frame != null) return;
    const bytes = new Uint8Array(512);
    const step = () => {
      this._frame = null;
      const level = this.analyser && !this.video.muted ? (this.analyser.getByteTimeDomainData(bytes), levelOf(bytes)) : 0;
      this._show(level);
      if (!this.video.muted) this._frame = requestAnimationFrame(step);
    };
    this._frame = requestAnimationFrame(step);
  }

  _show(level) {
    this.level = level;
    for (const meter of this.meters) meter.style.setProperty('--level', level.toFixed(3));
  }
}

/** The mute button with its meter, and the "no sound" note, as a tile or the full view
 *  shows them. bind() points them at a camera's playback; render() follows its state. */
export class AudioControl {
  constructor() {
    this.button = el('button', 'audio-toggle', { type: 'button', 'aria-pressed': 'false' });
    this.meter = el('span', 'audio-meter', { 'aria-hidden': 'true' });
    this.button.append(icon('speaker'), this.meter);
    this.refused = el('span', 'audio-refused', { role: 'note' });
    this.refusedText = el('span');
    this.refused.append(icon('speaker-off'), this.refusedText);
    this.playback = null;
    this.button.hidden = true;
    this.refused.hidden = true;
    this.button.addEventListener('click', (event) => {
      event.stopPropagation(); // the tile's own click opens the full view
      this.playback?.toggle();
    });
  }

  bind(playback) {
    if (this.playback === playback) return;
    this.playback?.removeMeter(this.meter);
    this.playback = playback;
    playback?.addMeter(this.meter);
  }

  render(camera) {
    const model = audioControlModel(camera, this.playback?.muted ?? true);
    this.button.hidden = !model.shown;
    this.button.setAttribute('aria-pressed', String(model.pressed));
    this.button.dataset.muted = String(model.muted);
    if (this.button.title !== model.label) {
      this.button.title = model.label;
      this.button.setAttribute('aria-label', model.label);
    }
    this.refused.hidden = !model.refused;
    this.refused.title = model.refused ?? '';
    setText(this.refusedText, model.refused ? 'No sound' : '');
    this.refused.setAttribute('aria-label', model.refused ?? '');
  }
}

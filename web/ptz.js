// The PTZ control pad: arrows (press and hold), zoom, home, speed and presets for a camera
// whose API object has `ptz`. The full view shows the whole pad; a tile shows a compact one
// (arrows, home, zoom) behind a toggle. Commands go through the camera player's PtzClient.
//
// DOM contract (tests rely on it): .ptz-pad[data-camera][data-ready][data-moving], buttons
// [data-ptz="up|down|left|right|home|zoom-in|zoom-out|save-preset|goto-preset|remove-preset"],
// input[data-ptz="speed"], form.ptz-save with input[data-ptz="preset-name"], li.ptz-preset
// [data-token], .ptz-toast.

import { el, icon, setText } from './dom.js';
import { presetNameError } from './ptz-client.js';
import { MoveHold, clampSpeed, keyAction } from './ptz-hold.js';

const SPEED_KEY = 'camgate.ptzSpeed';
const TOAST_MS = 5000;
const NUDGE_MS = 350; // a click without a hold (assistive tech, keyboard) moves this long
const CONFIRM_MS = 3000;

const DIRECTIONS = [
  // [data-ptz, vector, label, icon rotation]
  ['up', { tilt: 1 }, 'Tilt up', 0],
  ['left', { pan: -1 }, 'Pan left', 270],
  ['right', { pan: 1 }, 'Pan right', 90],
  ['down', { tilt: -1 }, 'Tilt down', 180],
];
const ZOOMS = [
  ['zoom-in', { zoom: 1 }, 'Zoom in', 'zoom-in'],
  ['zoom-out', { zoom: -1 }, 'Zoom out', 'zoom-out'],
];

// -- speed: one value for every pad, remembered ----------------------------------------------

const speedListeners = new Set();
let speed = 0.5;
try {
  const stored = localStorage.getItem(SPEED_KEY);
  if (stored != null) speed = clampSpeed(stored);
} catch {
  // storage disabled: the default speed it is
}

function setSpeed(value) {
  speed = clampSpeed(value);
  try {
    localStorage.setItem(SPEED_KEY, String(speed));
  } catch {
    // not remembered, still applied
  }
  for (const fn of speedListeners) fn(speed);
}

// -- stop everything when the page loses focus ----------------------------------------------

const livePads = new Set();
function releaseAllPads() {
  for (const pad of livePads) pad.release();
}
addEventListener('blur', releaseAllPads);
addEventListener('pagehide', releaseAllPads); // before the players close their channels
document.addEventListener('visibilitychange', () => {
  if (document.hidden) releaseAllPads();
});

// -- the pad ---------------------------------------------------------------------------------

export class PtzPad {
  /** @param {{compact?: boolean}} options compact: arrows, home and zoom only (tiles) */
  constructor({ compact = false } = {}) {
    this.compact = compact;
    this.camera = null;
    this.client = null;
    this.presets = [];
    this._unsubscribe = null;
    this._toastTimer = null;
    this._nudgeTimer = null;
    this.hold = new MoveHold((command) => this.send(command), {
      speed,
      onError: (message) => this.toast(message),
      onChange: (moving) => { this.element.dataset.moving = String(moving); },
    });
    this._onSpeed = (value) => {
      this.hold.setSpeed(value);
      this._renderSpeed();
    };
    speedListeners.add(this._onSpeed);
    livePads.add(this);
    this._build();
  }

  /** Show this camera (its API object and its player's PtzClient); null hides the pad. */
  bind(camera, client) {
    const caps = camera?.ptz ?? null;
    if (!caps || !client) {
      this._unbind();
      this.element.hidden = true;
      return;
    }
    if (client !== this.client || camera.name !== this.camera?.name) {
      this._unbind();
      this.client = client;
      this._unsubscribe = client.subscribe(() => this._onConnection());
      this.element.dataset.camera = camera.name;
      this.element.setAttribute('aria-label', `Camera controls for ${camera.name}`);
      this.presets = [];
      this._renderPresets();
    }
    this.camera = camera;
    this.element.hidden = false;
    this._renderCaps(caps);
    this._onConnection();
  }

  /** Stop moving (pointer released elsewhere, page hidden, view closed). */
  release() {
    clearTimeout(this._nudgeTimer);
    this.hold.releaseAll();
  }

  destroy() {
    this._unbind();
    speedListeners.delete(this._onSpeed);
    livePads.delete(this);
    this.element.remove();
  }

  /** A command to this pad's camera; resolves with the reply (never rejects). */
  send(command) {
    if (!this.client) return Promise.resolve({ v: 1, ok: false, error: 'no PTZ camera' });
    return this.client.send(command);
  }

  /**
   * Full-view keyboard control; true when the key was PTZ's (the caller then stops there).
   * Arrows/+/- hold like the buttons, Home goes home; auto-repeat is swallowed.
   */
  handleKey(event) {
    const action = keyAction(event);
    if (action?.kind === 'release') {
      const held = this.hold.held.has(action.source);
      this.hold.release(action.source);
      return held;
    }
    if (!action || this.element.hidden || !this.client) return false;
    event.preventDefault();
    if (action.kind === 'hold' && this._allowed(action.vector)) this.hold.press(action.source, action.vector);
    else if (action.kind === 'home' && this.camera?.ptz?.home) this._command({ cmd: 'home' });
    return true;
  }

  toast(message) {
    clearTimeout(this._toastTimer);
    setText(this.toastText, message);
    this.toastEl.hidden = false;
    this._toastTimer = setTimeout(() => { this.toastEl.hidden = true; }, TOAST_MS);
  }

  // -- building --------------------------------------------------------------------------

  _build() {
    const root = (this.element = el('section', `ptz-pad${this.compact ? ' ptz-compact' : ''}`, {
      'data-ready': 'false',
      'data-moving': 'false',
    }));
    root.hidden = true;
    // Clicks and touches on the pad are not clicks on the tile or video below it.
    root.addEventListener('click', (event) => event.stopPropagation());
    root.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') event.stopPropagation();
    });
    root.addEventListener('contextmenu', (event) => event.preventDefault()); // long-press menus

    const head = el('div', 'ptz-head');
    this.statusEl = el('span', 'ptz-status', { role: 'status' });
    head.append(Object.assign(el('span', 'ptz-title'), { textContent: 'PTZ' }), this.statusEl);

    const dpad = el('div', 'ptz-dpad', { role: 'group', 'aria-label': 'Pan and tilt' });
    this.buttons = new Map();
    for (const [name, vector, label, rotation] of DIRECTIONS) {
      const button = this._holdButton(name, vector, label, icon('chevron'));
      button.style.setProperty('--rotate', `${rotation}deg`);
      dpad.append(button);
    }
    const home = this._button('home', 'Go to the home position', icon('home'), 'ptz-btn ptz-home');
    home.title = this.compact ? 'Home' : 'Home (Home key)';
    home.addEventListener('click', () => this._command({ cmd: 'home' }));
    dpad.append(home);

    const zoom = el('div', 'ptz-zoom', { role: 'group', 'aria-label': 'Zoom' });
    for (const [name, vector, label, iconName] of ZOOMS) zoom.append(this._holdButton(name, vector, label, icon(iconName)));

    const controls = el('div', 'ptz-controls');
    controls.append(dpad, zoom);
    this.toastText = el('span', 'ptz-toast-text');
    this.toastEl = el('div', 'ptz-toast', { role: 'alert' });
    this.toastEl.append(icon('alert'), this.toastText);
    this.toastEl.hidden = true;

    if (this.compact) {
      root.append(controls, this.toastEl);
      return;
    }
    root.append(head, controls, this._buildSpeed(), this._buildPresets(), this.toastEl);
  }

  _button(name, label, content, className = 'ptz-btn') {
    const button = el('button', className, { type: 'button', 'data-ptz': name, 'aria-label': label, title: label });
    button.append(content);
    this.buttons.set(name, button);
    return button;
  }

  /** Press-and-hold: pointer (mouse, touch, pen, with capture) or Space/Enter while focused. */
  _holdButton(name, vector, label, content) {
    const keys = { 'Tilt up': '↑', 'Tilt down': '↓', 'Pan left': '←', 'Pan right': '→', 'Zoom in': '+', 'Zoom out': '−' };
    const button = this._button(name, label, content, `ptz-btn ptz-hold ptz-${name}`);
    if (!this.compact) button.title = `${label} (hold, or ${keys[label]} key)`;
    const source = `button:${name}`;
    const end = () => {
      button.removeAttribute('data-active');
      this.hold.release(source);
    };
    button.addEventListener('pointerdown', (event) => {
      if (event.button !== 0 || button.disabled) return;
      event.preventDefault(); // no text selection, no emulated mouse events after touch
      button.setPointerCapture?.(event.pointerId);
      button.dataset.active = '';
      this.hold.press(source, vector);
    });
    for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) button.addEventListener(type, end);
    button.addEventListener('keydown', (event) => {
      if (event.key !== ' ' && event.key !== 'Enter') return;
      event.preventDefault(); // no click: the keyup ends the hold
      if (event.repeat) return;
      button.dataset.active = '';
      this.hold.press(source, vector);
    });
    button.addEventListener('keyup', (event) => {
      if (event.key === ' ' || event.key === 'Enter') end();
    });
    button.addEventListener('blur', end);
    button.addEventListener('click', (event) => {
      // detail 0: activated without a pointer or key hold (e.g. a screen reader): nudge
      if (event.detail !== 0 || this.hold.held.has(source)) return;
      this.hold.press(source, vector);
      clearTimeout(this._nudgeTimer);
      this._nudgeTimer = setTimeout(() => this.hold.release(source), NUDGE_MS);
    });
    return button;
  }

  _buildSpeed() {
    const wrap = el('div', 'ptz-speed');
    const id = `ptz-speed-${Math.random().toString(36).slice(2, 8)}`;
    const label = el('label', 'ptz-speed-label', { for: id });
    label.textContent = 'Speed';
    this.speedInput = el('input', 'ptz-speed-input', {
      id, type: 'range', min: '0.1', max: '1', step: '0.05', 'data-ptz': 'speed',
    });
    this.speedOutput = el('output', 'ptz-speed-value', { for: id });
    this.speedInput.addEventListener('input', () => setSpeed(this.speedInput.value));
    wrap.append(label, this.speedOutput, this.speedInput);
    this._renderSpeed();
    return wrap;
  }

  _buildPresets() {
    const section = (this.presetSection = el('div', 'ptz-presets'));
    const head = el('div', 'ptz-presets-head');
    const title = el('h3', 'ptz-presets-title', { id: `ptz-presets-${Math.random().toString(36).slice(2, 8)}` });
    title.textContent = 'Presets';
    const save = this._button('save-preset', 'Save the current position as a preset', icon('plus'), 'button button-small ptz-save-open');
    save.append(Object.assign(el('span'), { textContent: 'Save' }));
    save.addEventListener('click', () => this._openSaveForm());
    head.append(title, save);

    const form = (this.saveForm = el('form', 'ptz-save', { 'aria-label': 'Save preset' }));
    form.hidden = true;
    this.nameInput = el('input', 'ptz-name', {
      type: 'text', name: 'preset-name', 'data-ptz': 'preset-name', maxlength: '64',
      placeholder: 'Preset name', 'aria-label': 'Preset name', autocomplete: 'off', enterkeyhint: 'done',
    });
    const confirm = el('button', 'button button-small button-primary', { type: 'submit', 'data-ptz': 'save-confirm' });
    confirm.textContent = 'Save';
    const cancel = el('button', 'button button-small', { type: 'button', 'data-ptz': 'save-cancel' });
    cancel.textContent = 'Cancel';
    form.append(this.nameInput, confirm, cancel);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this._savePreset();
    });
    cancel.addEventListener('click', () => this._closeSaveForm());
    this.nameInput.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault(); // closes the form, not the full view
        this._closeSaveForm();
      }
      event.stopPropagation(); // typed letters are not shortcuts
    });

    this.presetList = el('ul', 'ptz-preset-list', { 'aria-labelledby': title.id });
    this.presetEmpty = el('p', 'ptz-empty');
    section.append(head, form, this.presetList, this.presetEmpty);
    return section;
  }

  // -- state -----------------------------------------------------------------------------

  _unbind() {
    this.release();
    this._unsubscribe?.();
    this._unsubscribe = null;
    this.client = null;
    this.camera = null;
    this._closeSaveForm();
  }

  _onConnection() {
    const ready = Boolean(this.client?.open);
    const was = this.element.dataset.ready === 'true';
    this.element.dataset.ready = String(ready);
    for (const button of this.element.querySelectorAll('button, input')) button.disabled = !ready;
    setText(this.statusEl, ready ? '' : 'Connecting…');
    if (!ready) this.hold.reset(); // the gateway stops a closed channel's move itself
    if (ready && !was && !this.compact && this.camera?.ptz?.presets) this._loadPresets();
  }

  _renderCaps(caps) {
    for (const [name] of DIRECTIONS) this.buttons.get(name).hidden = !caps.pan_tilt;
    for (const [name] of ZOOMS) this.buttons.get(name).hidden = !caps.zoom;
    this.buttons.get('home').hidden = !caps.home;
    this.element.querySelector('.ptz-zoom').hidden = !caps.zoom;
    this.element.querySelector('.ptz-dpad').hidden = !caps.pan_tilt && !caps.home;
    if (this.presetSection) this.presetSection.hidden = !caps.presets;
  }

  _allowed(vector) {
    const caps = this.camera?.ptz ?? {};
    return vector.zoom ? caps.zoom : caps.pan_tilt;
  }

  _renderSpeed() {
    if (!this.speedInput) return;
    if (Number(this.speedInput.value) !== speed) this.speedInput.value = String(speed);
    const text = `${Math.round(speed * 100)} %`;
    setText(this.speedOutput, text);
    this.speedInput.setAttribute('aria-valuetext', text);
  }

  async _command(command) {
    const reply = await this.send(command);
    if (!reply.ok) this.toast(reply.error || `${command.cmd} failed`);
    return reply;
  }

  // -- presets ---------------------------------------------------------------------------

  async _loadPresets() {
    const client = this.client;
    const reply = await this.send({ cmd: 'presets' });
    if (client !== this.client) return;
    if (!reply.ok) {
      this.toast(reply.error || 'could not read the presets');
      return;
    }
    this.presets = Array.isArray(reply.presets) ? reply.presets.filter((p) => typeof p?.token === 'string') : [];
    this._renderPresets();
  }

  _renderPresets() {
    if (!this.presetList) return;
    const rows = this.presets.map((preset) => {
      const name = String(preset.name || preset.token);
      const row = el('li', 'ptz-preset', { 'data-token': preset.token });
      const go = el('button', 'ptz-preset-go', { type: 'button', 'data-ptz': 'goto-preset', title: `Go to ${name}` });
      go.append(icon('pin'), Object.assign(el('span', 'ptz-preset-name'), { textContent: name }));
      go.addEventListener('click', () => this._command({ cmd: 'goto_preset', preset: preset.token }));
      const remove = el('button', 'ptz-preset-remove', {
        type: 'button', 'data-ptz': 'remove-preset', 'aria-label': `Remove preset ${name}`, title: 'Remove',
      });
      remove.append(icon('trash'), Object.assign(el('span', 'ptz-confirm-text'), { textContent: 'Remove?' }));
      remove.addEventListener('click', () => this._removePreset(preset, remove, name));
      row.append(go, remove);
      return row;
    });
    this.presetList.replaceChildren(...rows);
    this.presetEmpty.hidden = rows.length > 0;
    setText(this.presetEmpty, 'No presets yet. Move the camera, then Save.');
    const disabled = !this.client?.open;
    for (const button of this.presetList.querySelectorAll('button')) button.disabled = disabled;
  }

  /** Removing is two clicks: the first arms the button ("Remove?") for a few seconds. */
  async _removePreset(preset, button, name) {
    if (button.dataset.confirm == null) {
      button.dataset.confirm = '';
      button.setAttribute('aria-label', `Confirm: remove preset ${name}`);
      setTimeout(() => {
        delete button.dataset.confirm;
        button.setAttribute('aria-label', `Remove preset ${name}`);
      }, CONFIRM_MS);
      return;
    }
    const reply = await this._command({ cmd: 'remove_preset', preset: preset.token });
    if (reply.ok) {
      await this._loadPresets();
      this._focusSave();
    }
  }

  _focusSave() {
    this.buttons.get('save-preset')?.focus({ preventScroll: true });
  }

  _openSaveForm() {
    this.saveForm.hidden = false;
    this.buttons.get('save-preset').hidden = true;
    const taken = new Set(this.presets.map((p) => p.name));
    let n = this.presets.length + 1;
    while (taken.has(`Preset ${n}`)) n++;
    this.nameInput.value = `Preset ${n}`;
    this.nameInput.focus();
    this.nameInput.select();
  }

  _closeSaveForm() {
    if (!this.saveForm || this.saveForm.hidden) return;
    const hadFocus = this.saveForm.contains(document.activeElement);
    this.saveForm.hidden = true;
    this.buttons.get('save-preset').hidden = false;
    if (hadFocus) this._focusSave();
  }

  async _savePreset() {
    const name = this.nameInput.value.trim();
    const problem = presetNameError(name);
    if (problem) {
      this.toast(problem);
      this.nameInput.focus();
      return;
    }
    const reply = await this._command({ cmd: 'set_preset', name });
    if (!reply.ok) return;
    this._closeSaveForm();
    await this._loadPresets();
  }
}

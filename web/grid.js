// The camera wall: one tile per camera, plus the full-size viewer that borrows a tile's
// <video> element (moved, not re-created, so the stream keeps playing without a reconnect).

import { AudioControl } from './audio.js';
import { el, icon, setText } from './dom.js';
import { CameraPlayer, combineState } from './player.js';
import { PtzPad } from './ptz.js';
import { TalkButton } from './talk.js';
import { formatStats } from './stats.js';
import { StreamControl } from './streams.js';

const PAD_KEY = 'camgate.ptzPad';

function readPadShown() {
  try {
    return localStorage.getItem(PAD_KEY) !== '0';
  } catch {
    return true;
  }
}

/**
 * "1920×1080 · 30 fps · H.264 High" from the camera object (what the gateway receives); of
 * the stream this viewer gets ("main"/"sub") when the camera object lists its streams.
 */
export function describeCamera(camera, streamName = null) {
  const stream = Array.isArray(camera.streams) ? camera.streams.find((s) => s?.name === streamName) : null;
  const shown = stream?.width && stream?.height
    ? { codec: camera.codec, width: stream.width, height: stream.height, fps: stream.fps, profile: stream.profile }
    : camera;
  const parts = [];
  if (shown.width && shown.height) parts.push(`${shown.width}×${shown.height}`);
  if (shown.fps) parts.push(`${Math.round(shown.fps)} fps`);
  if (shown.codec) parts.push([shown.codec === 'H264' ? 'H.264' : shown.codec, shown.profile].filter(Boolean).join(' '));
  return parts.join(' · ');
}

/** Column cap by camera count (the viewport caps it further in CSS). */
export function maxColumns(count) {
  if (count <= 1) return 1;
  if (count <= 4) return 2;
  if (count <= 9) return 3;
  return 4;
}

/**
 * The parts a tile and the full view share: badge, name, meta, viewers, cover, stats.
 * Built by buildChrome(), placed by the caller, refreshed by renderChrome(). A tile's badge
 * is hidden from assistive tech because the tile's aria-label already carries the state.
 */
function buildChrome({ headingTag = 'span', badgeInLabel = true } = {}) {
  const parts = {
    cover: el('div', 'cover'),
    coverText: el('span', 'cover-text'),
    badge: el('span', 'badge', badgeInLabel ? { 'aria-hidden': 'true' } : {}),
    badgeText: el('span', 'badge-text'),
    viewers: el('span', 'viewers'),
    viewerCount: el('span'),
    warning: el('span', 'warning', { role: 'note' }),
    name: el(headingTag, 'cam-name'),
    meta: el('span', 'cam-meta'),
    stats: el('dl', 'stats', { 'aria-label': 'Stream statistics' }),
    audio: new AudioControl(), // unmute + level meter, or which codec has no sound
    stream: new StreamControl(), // main/sub badge and pin, once the gateway reports two streams
  };
  parts.cover.append(icon('camera'), parts.coverText);
  parts.badge.append(el('span', 'dot'), parts.badgeText);
  parts.viewers.append(icon('eye'), parts.viewerCount);
  parts.warningText = Object.assign(el('span'), { textContent: 'warning' });
  parts.warning.append(icon('alert'), parts.warningText);
  return parts;
}

function renderChrome(parts, model) {
  const { camera, status, player, inViewer } = model;
  parts.badge.dataset.state = status.state;
  setText(parts.badgeText, status.text);
  parts.badge.title = status.detail || status.text;
  setText(parts.name, camera.name);
  setText(parts.meta, describeCamera(camera, player.streams.status?.current));
  const viewers = camera.viewers ?? 0;
  setText(parts.viewerCount, String(viewers));
  parts.viewers.title = `${viewers} viewer${viewers === 1 ? '' : 's'} on the gateway`;
  parts.viewers.hidden = camera.viewers == null;
  parts.warning.hidden = !camera.warning; // e.g. the camera sends B-frames
  parts.warning.title = camera.warning || '';
  // Said plainly on the tile: B-frames make browsers show ~1 picture a second.
  setText(parts.warningText, /B-frames/.test(camera.warning || '') ? 'Switch off B-frames in the camera' : 'warning');
  parts.warning.setAttribute('aria-label', `Warning: ${camera.warning || ''}`);

  let cover = null;
  if (inViewer) cover = 'Showing in full view';
  else if (status.state !== 'live') cover = status.detail || (status.state === 'connecting' ? 'Connecting…' : status.text);
  parts.cover.hidden = cover == null;
  setText(parts.coverText, cover ?? '');

  parts.audio.bind(player.audio);
  parts.audio.render(camera);
  parts.stream.bind(player.streams);
  parts.stream.render(camera.name);

  if (model.showStats) renderStats(parts.stats, player.stats, player.streams.status);
}

function renderStats(dl, stats, streamStatus) {
  const rows = formatStats(stats, streamStatus);
  dl.toggleAttribute('data-empty', !stats);
  if (dl.children.length !== rows.length * 2) {
    dl.replaceChildren(...rows.flatMap(() => [el('dt'), el('dd')]));
  }
  rows.forEach(([label, value], i) => {
    setText(dl.children[i * 2], label);
    setText(dl.children[i * 2 + 1], value);
  });
}

class Tile {
  constructor(camera, grid) {
    this.grid = grid;
    this.name = camera.name;
    this.camera = camera;
    this.element = el('div', 'tile', { 'data-camera': camera.name });
    // The tile's own button (a sibling of the PTZ controls, never their parent): covers the
    // tile, carries its label and focus, opens the full view.
    this.openButton = el('button', 'tile-open', { type: 'button' });
    this.video = el('video', 'cam-video', { 'data-camera': camera.name, playsinline: '', 'aria-hidden': 'true' });
    Object.assign(this.video, { autoplay: true, muted: true, playsInline: true, disablePictureInPicture: true });
    this.media = el('div', 'media');
    // The camera's latest snapshot, shown at once while the video starts (the gateway keeps
    // the last keyframe of an idle camera); hidden once the video plays.
    this.poster = el('img', 'poster', { alt: '', 'aria-hidden': 'true', 'data-camera': camera.name });
    this.poster.hidden = true;
    this.poster.addEventListener('load', () => {
      this.poster.hidden = false;
      this.media.classList.add('has-poster');
    });
    this.video.addEventListener('playing', () => this.media.classList.add('playing'));
    this.poster.src = `/api/cameras/${encodeURIComponent(camera.name)}/snapshot.jpg?cached=1`;
    this.parts = buildChrome();
    const { cover, badge, viewers, warning, name, meta, stats, audio, stream } = this.parts;
    const top = el('div', 'tile-top');
    const topRight = el('div', 'tile-top-right');
    this.ptzToggle = el('button', 'tile-ptz-toggle', { type: 'button', 'aria-pressed': 'false' });
    this.ptzToggle.append(icon('ptz'));
    this.ptzToggle.hidden = true;
    this.ptzToggle.addEventListener('click', (event) => {
      event.stopPropagation();
      this.setPtzOpen(!this.ptzOpen);
    });
    topRight.append(stream.element, warning, audio.refused, audio.button, viewers, this.ptzToggle);
    top.append(badge, topRight);
    const bottom = el('div', 'tile-bottom');
    bottom.append(name, meta);
    this.media.append(this.video, this.poster, cover);
    this.ptzOpen = false;
    this.pad = null; // the compact PTZ pad, made on first use
    this.element.append(this.media, this.openButton, top, stats, bottom);

    this.element.addEventListener('click', () => grid.open(this.name));
    this.player = new CameraPlayer(camera.name, this.video, {
      sessions: grid.sessions,
      onChange: () => this.render(),
      ...grid.playerOptions,
    });
  }

  update(camera) {
    this.camera = camera;
    this.player.update(camera);
    this.render();
  }

  /** The compact pad on the tile, behind the tile's PTZ toggle. */
  setPtzOpen(open) {
    this.ptzOpen = open && Boolean(this.camera.ptz);
    if (this.ptzOpen && !this.pad) {
      this.pad = new PtzPad({ compact: true });
      this.pad.element.classList.add('tile-ptz');
      this.element.append(this.pad.element);
    }
    this.render();
  }

  render() {
    const status = combineState(this.camera, this.player);
    const inViewer = this.grid.openName === this.name;
    const model = { camera: this.camera, status, player: this.player, showStats: this.grid.showStats };
    this.element.dataset.serverState = this.camera.state ?? '';
    if (this.element.dataset.state !== status.state) {
      this.element.dataset.state = status.state;
      this.grid.onTilesChange();
    }
    const detail = status.detail ? ` (${status.detail})` : '';
    const warning = this.camera.warning ? `. Warning: ${this.camera.warning}` : '';
    const label = `${this.camera.name}, ${status.text}${detail}${warning}. Open full view`;
    if (this.openButton.getAttribute('aria-label') !== label) this.openButton.setAttribute('aria-label', label);
    renderChrome(this.parts, { ...model, inViewer });
    this.renderPtz(inViewer);
    if (inViewer) this.grid.renderViewer(model);
  }

  renderPtz(inViewer) {
    const hasPtz = Boolean(this.camera.ptz);
    if (!hasPtz) this.ptzOpen = false;
    this.ptzToggle.hidden = !hasPtz || inViewer;
    this.ptzToggle.setAttribute('aria-pressed', String(this.ptzOpen));
    const label = `${this.ptzOpen ? 'Hide' : 'Show'} camera controls for ${this.camera.name}`;
    if (this.ptzToggle.title !== label) {
      this.ptzToggle.title = label;
      this.ptzToggle.setAttribute('aria-label', label);
    }
    this.element.toggleAttribute('data-ptz-open', this.ptzOpen && !inViewer);
    // In the full view the viewer's pad drives the camera; this one lets go and hides.
    this.pad?.bind(this.ptzOpen && !inViewer ? this.camera : null, this.player.ptz);
  }

  destroy() {
    this.pad?.destroy();
    this.player.destroy();
    this.element.remove();
  }
}

export class CameraGrid {
  /**
   * @param {HTMLElement} root element that holds the tiles
   * @param {HTMLElement} viewer the full-view dialog (see index.html)
   * @param {{sessions: Map, onOpenChange?: Function, onTilesChange?: Function, playerOptions?: object}} options
   *   onOpenChange(name|null) after the full view opens/closes; onTilesChange() when a tile's state changes
   */
  constructor(root, viewer, { sessions, onOpenChange = () => {}, onTilesChange = () => {}, playerOptions = {} }) {
    Object.assign(this, { root, viewer, sessions, onOpenChange, onTilesChange, playerOptions });
    this.tiles = new Map();
    this.showStats = false;
    this.openName = null;
    this._returnFocus = null;
    this.stage = viewer.querySelector('.viewer-stage');
    this.viewerParts = buildChrome({ headingTag: 'h2', badgeInLabel: false });
    this._mountViewerChrome();
    this.pad = new PtzPad();
    this.padShown = readPadShown();
    this.padToggle = viewer.querySelector('.ptz-toggle');
    this.padToggle?.addEventListener('click', () => this.setPadShown(!this.padShown));
    viewer.querySelector('.viewer-ptz')?.append(this.pad.element);
    this.talkButton = new TalkButton(); // push-to-talk, full view only
    viewer.querySelector('.viewer-close')?.before(this.talkButton.element);
  }

  /** Show/hide the full view's PTZ pad (remembered). */
  setPadShown(shown) {
    this.padShown = shown;
    try {
      localStorage.setItem(PAD_KEY, shown ? '1' : '0');
    } catch {
      // not remembered
    }
    const tile = this.tiles.get(this.openName);
    if (tile) tile.render();
  }

  /** Full-view keyboard PTZ; true when the key was handled. */
  handlePtzKey(event) {
    return Boolean(this.openName && this.padShown && this.pad.handleKey(event));
  }

  get players() {
    return new Map([...this.tiles].map(([name, tile]) => [name, tile.player]));
  }

  /** Reconcile tiles with the camera list (API order), creating/removing as needed. */
  update(cameras) {
    const seen = new Set();
    cameras.forEach((camera, index) => {
      seen.add(camera.name);
      let tile = this.tiles.get(camera.name);
      if (!tile) {
        tile = new Tile(camera, this);
        this.tiles.set(camera.name, tile);
      }
      if (this.root.children[index] !== tile.element) this.root.insertBefore(tile.element, this.root.children[index] ?? null);
      tile.update(camera);
    });
    for (const [name, tile] of this.tiles) {
      if (seen.has(name)) continue;
      if (this.openName === name) this.close();
      tile.destroy();
      this.tiles.delete(name);
    }
    this.root.dataset.count = String(cameras.length);
    this.root.dataset.maxCols = String(maxColumns(cameras.length));
  }

  destroyAll() {
    if (this.openName) this.close();
    for (const tile of this.tiles.values()) tile.destroy();
    this.tiles.clear();
  }

  setShowStats(show) {
    this.showStats = show;
    for (const tile of this.tiles.values()) tile.render();
  }

  /** Full view of one camera; the tile's <video> moves into the viewer. False if unknown. */
  open(name) {
    const tile = this.tiles.get(name);
    if (!tile) return false;
    if (this.openName === name) return true;
    if (this.openName) this._restoreVideo();
    else this._returnFocus = document.activeElement;
    this.openName = name;
    this.stage.prepend(tile.video);
    tile.player.streams.setView('full'); // same session: the gateway moves it to the main stream
    tile.video.play?.()?.catch(() => {});
    this.viewer.hidden = false;
    this.viewer.dataset.camera = name;
    document.body.classList.add('viewer-open');
    for (const node of document.querySelectorAll('[data-inert-when-viewing]')) node.inert = true;
    tile.render();
    this.viewer.querySelector('.viewer-close').focus({ preventScroll: true });
    this.onOpenChange(name);
    return true;
  }

  close() {
    if (!this.openName) return;
    const tile = this.tiles.get(this.openName);
    this._restoreVideo();
    this.openName = null;
    this.viewer.hidden = true;
    delete this.viewer.dataset.camera;
    document.body.classList.remove('viewer-open');
    for (const node of document.querySelectorAll('[data-inert-when-viewing]')) node.inert = false;
    this.pad.bind(null);
    this.talkButton.bind(null);
    tile?.render();
    const focus = tile?.openButton ?? this._returnFocus;
    if (focus?.isConnected) focus.focus({ preventScroll: false });
    this._returnFocus = null;
    this.onOpenChange(null);
  }

  renderViewer(model) {
    this.viewer.dataset.state = model.status.state;
    renderChrome(this.viewerParts, { ...model, inViewer: false });
    const hasPtz = Boolean(model.camera.ptz);
    if (this.padToggle) {
      this.padToggle.hidden = !hasPtz;
      this.padToggle.setAttribute('aria-pressed', String(this.padShown));
    }
    this.viewer.toggleAttribute('data-ptz', hasPtz && this.padShown);
    this.pad.bind(hasPtz && this.padShown ? model.camera : null, model.player.ptz);
    this.talkButton.bind(model.player.talk);
  }

  _restoreVideo() {
    const tile = this.tiles.get(this.openName);
    if (!tile) return;
    tile.media.prepend(tile.video);
    tile.player.streams.setView('grid');
    tile.video.play?.()?.catch(() => {});
    tile.render();
  }

  _mountViewerChrome() {
    const { cover, badge, viewers, warning, name, meta, stats, audio, stream } = this.viewerParts;
    name.id = 'viewer-title';
    this.viewer.setAttribute('aria-labelledby', 'viewer-title');
    this.viewer.querySelector('.viewer-title').append(name, badge);
    this.viewer.querySelector('.viewer-info').append(meta, stream.element, viewers, warning, audio.refused, audio.button);
    this.stage.append(cover, stats);
  }
}

// The camera wall: one tile per camera, plus the full-size viewer that borrows a tile's
// <video> element (moved, not re-created, so the stream keeps playing without a reconnect).

import { CameraPlayer, combineState } from './player.js';
import { formatStats } from './stats.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

function el(tag, className, attrs = {}) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function icon(name) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS(SVG_NS, 'use');
  use.setAttribute('href', `#icon-${name}`);
  svg.append(use);
  return svg;
}

/** "1920×1080 · 30 fps · H.264 High" from the camera object (what the gateway receives). */
export function describeCamera(camera) {
  const parts = [];
  if (camera.width && camera.height) parts.push(`${camera.width}×${camera.height}`);
  if (camera.fps) parts.push(`${Math.round(camera.fps)} fps`);
  if (camera.codec) parts.push([camera.codec === 'H264' ? 'H.264' : camera.codec, camera.profile].filter(Boolean).join(' '));
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
  };
  parts.cover.append(icon('camera'), parts.coverText);
  parts.badge.append(el('span', 'dot'), parts.badgeText);
  parts.viewers.append(icon('eye'), parts.viewerCount);
  parts.warning.append(icon('alert'), Object.assign(el('span'), { textContent: 'warning' }));
  return parts;
}

/** Assign only on change: tiles re-render every second with the stats. */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function renderChrome(parts, model) {
  const { camera, status, player, inViewer } = model;
  parts.badge.dataset.state = status.state;
  setText(parts.badgeText, status.text);
  parts.badge.title = status.detail || status.text;
  setText(parts.name, camera.name);
  setText(parts.meta, describeCamera(camera));
  const viewers = camera.viewers ?? 0;
  setText(parts.viewerCount, String(viewers));
  parts.viewers.title = `${viewers} viewer${viewers === 1 ? '' : 's'} on the gateway`;
  parts.viewers.hidden = camera.viewers == null;
  parts.warning.hidden = !camera.warning; // e.g. the camera sends B-frames
  parts.warning.title = camera.warning || '';
  parts.warning.setAttribute('aria-label', `Warning: ${camera.warning || ''}`);

  let cover = null;
  if (inViewer) cover = 'Showing in full view';
  else if (status.state !== 'live') cover = status.detail || (status.state === 'connecting' ? 'Connecting…' : status.text);
  parts.cover.hidden = cover == null;
  setText(parts.coverText, cover ?? '');

  if (model.showStats) renderStats(parts.stats, player.stats);
}

function renderStats(dl, stats) {
  const rows = formatStats(stats);
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
    this.element = el('div', 'tile', { role: 'button', tabindex: '0', 'data-camera': camera.name });
    this.video = el('video', 'cam-video', { 'data-camera': camera.name, playsinline: '', 'aria-hidden': 'true' });
    Object.assign(this.video, { autoplay: true, muted: true, playsInline: true, disablePictureInPicture: true });
    this.media = el('div', 'media');
    this.parts = buildChrome();
    const { cover, badge, viewers, warning, name, meta, stats } = this.parts;
    const top = el('div', 'tile-top');
    const topRight = el('div', 'tile-top-right');
    topRight.append(warning, viewers);
    top.append(badge, topRight);
    const bottom = el('div', 'tile-bottom');
    bottom.append(name, meta);
    this.media.append(this.video, cover);
    this.element.append(this.media, top, stats, bottom);

    this.element.addEventListener('click', () => grid.open(this.name));
    this.element.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        grid.open(this.name);
      }
    });
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

  render() {
    const status = combineState(this.camera, this.player);
    const inViewer = this.grid.openName === this.name;
    const model = { camera: this.camera, status, player: this.player, showStats: this.grid.showStats };
    this.element.dataset.serverState = this.camera.state ?? '';
    if (this.element.dataset.state !== status.state) {
      this.element.dataset.state = status.state;
      this.grid.onTilesChange();
    }
    const detail = status.detail && status.state !== 'error' ? ` (${status.detail})` : '';
    const warning = this.camera.warning ? `. Warning: ${this.camera.warning}` : '';
    const label = `${this.camera.name}, ${status.text}${detail}${warning}. Open full view`;
    if (this.element.getAttribute('aria-label') !== label) this.element.setAttribute('aria-label', label);
    renderChrome(this.parts, { ...model, inViewer });
    if (inViewer) this.grid.renderViewer(model);
  }

  destroy() {
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
    tile?.render();
    const focus = tile?.element ?? this._returnFocus;
    if (focus?.isConnected) focus.focus({ preventScroll: false });
    this._returnFocus = null;
    this.onOpenChange(null);
  }

  renderViewer(model) {
    this.viewer.dataset.state = model.status.state;
    renderChrome(this.viewerParts, { ...model, inViewer: false });
  }

  _restoreVideo() {
    const tile = this.tiles.get(this.openName);
    if (!tile) return;
    tile.media.prepend(tile.video);
    tile.video.play?.()?.catch(() => {});
    tile.render();
  }

  _mountViewerChrome() {
    const { cover, badge, viewers, warning, name, meta, stats } = this.viewerParts;
    name.id = 'viewer-title';
    this.viewer.setAttribute('aria-labelledby', 'viewer-title');
    this.viewer.querySelector('.viewer-title').append(name, badge);
    this.viewer.querySelector('.viewer-info').append(meta, viewers, warning);
    this.stage.append(cover, stats);
  }
}

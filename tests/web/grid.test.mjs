// The camera wall (web/grid.js) on a stand-in DOM: the full view borrows a tile's <video>, so
// the same session says {"type": "view"} on its "stream" channel; the stream badge and pin.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FakeEvent, install } from './fake-dom.mjs';

const document = install();
const { CameraGrid, describeCamera } = await import('../../web/grid.js');

const STATUS = {
  type: 'stream', current: 'sub', pin: 'auto', view: 'grid', streams: ['main', 'sub'], reason: 'congestion',
  estimate: { bitrate_kbps: 850, loss: 0.12, rtt_ms: 35.2, jitter_ms: 4.1, main_kbps: 4000, sub_kbps: 500, main_allowed: false },
};

class FakeChannel extends EventTarget {
  constructor() { super(); this.label = 'stream'; this.readyState = 'open'; this.sent = []; }
  send(data) { this.sent.push(JSON.parse(data)); }
  receive(message) { this.dispatchEvent(Object.assign(new Event('message'), { data: JSON.stringify(message) })); }
}

/** index.html's full-view dialog, the parts grid.js looks up. */
function buildViewer() {
  const node = (tag, className, parent) => {
    const element = document.createElement(tag);
    element.className = className;
    parent.append(element);
    return element;
  };
  const viewer = node('div', 'viewer', document.body);
  viewer.hidden = true;
  const bar = node('div', 'viewer-bar', viewer);
  const heading = node('div', 'viewer-heading', bar);
  node('div', 'viewer-title', heading);
  node('div', 'viewer-info', heading);
  node('button', 'icon-button viewer-close', bar);
  node('div', 'viewer-stage', viewer);
  node('div', 'viewer-ptz', viewer);
  return viewer;
}

function setup() {
  document.body.replaceChildren();
  const root = document.createElement('section');
  document.body.append(root);
  const viewer = buildViewer();
  const opened = [];
  const grid = new CameraGrid(root, viewer, { sessions: new Map(), onOpenChange: (name) => opened.push(name) });
  // Offline cameras: no WHEP session is started; each player's stream client gets a channel here.
  grid.update([{ name: 'yard', state: 'offline' }, { name: 'door', state: 'offline' }]);
  const channels = {};
  for (const [name, tile] of grid.tiles) {
    channels[name] = new FakeChannel();
    tile.player.streams.attach(channels[name], { view: 'grid', pin: 'auto' });
  }
  return { grid, root, viewer, channels, opened };
}

test('full view open and close: the tile\'s session says view full, then grid', (t) => {
  const { grid, viewer, channels } = setup();
  t.after(() => grid.destroyAll());
  const yard = grid.tiles.get('yard');
  assert.ok(grid.open('yard'));
  assert.equal(yard.video.parentNode, viewer.querySelector('.viewer-stage'), 'the same <video> moved');
  assert.deepEqual(channels.yard.sent, [{ type: 'view', view: 'full' }]);
  assert.deepEqual(channels.door.sent, []);

  grid.open('door'); // another camera straight from the full view
  assert.deepEqual(channels.yard.sent, [{ type: 'view', view: 'full' }, { type: 'view', view: 'grid' }]);
  assert.deepEqual(channels.door.sent, [{ type: 'view', view: 'full' }]);

  grid.close();
  assert.deepEqual(channels.door.sent, [{ type: 'view', view: 'full' }, { type: 'view', view: 'grid' }]);
  assert.equal(grid.tiles.get('door').player.streams.view, 'grid');
  assert.equal(channels.yard.sent.length, 2);
});

test('a reconnect in full view asks for the full view in its WHEP URL', (t) => {
  const { grid } = setup();
  t.after(() => grid.destroyAll());
  grid.open('yard');
  assert.deepEqual(grid.tiles.get('yard').player.streams.query(), { view: 'full', pin: 'auto' });
  grid.close();
  assert.deepEqual(grid.tiles.get('yard').player.streams.query(), { view: 'grid', pin: 'auto' });
});

test('badge and pin on the tile and in the full view; the pin select does not open the full view', (t) => {
  const { grid, viewer, channels, opened } = setup();
  t.after(() => grid.destroyAll());
  const tile = grid.tiles.get('yard');
  const control = tile.element.querySelector('.stream');
  assert.ok(control, 'the tile has a stream control');
  assert.equal(control.hidden, true, 'hidden until the gateway reports its streams');

  channels.yard.receive(STATUS);
  assert.equal(control.hidden, false);
  assert.equal(control.dataset.stream, 'sub');
  assert.equal(control.querySelector('.stream-name').textContent, 'sub');
  assert.equal(control.title, 'Sub stream, camgate chooses (sub: slow link)');
  const select = control.querySelector('select');
  assert.equal(select.value, 'auto');
  assert.equal(select.getAttribute('aria-label'), 'Stream for yard: sub, camgate chooses');
  assert.deepEqual(select.children.map((o) => o.getAttribute('value')), ['auto', 'main', 'sub']);

  select.click();
  assert.deepEqual(opened, [], 'a click on the control stays on the tile');
  select.value = 'main';
  select.dispatchEvent(new FakeEvent('change', { bubbles: true }));
  assert.deepEqual(channels.yard.sent, [{ type: 'pin', pin: 'main' }]);
  assert.equal(tile.player.streams.pin, 'main');
  channels.yard.receive({ ...STATUS, current: 'main', pin: 'main', reason: 'pin' });
  assert.ok(control.querySelector('.stream-badge').hasAttribute('data-pinned'));
  assert.equal(control.querySelector('.stream-name').textContent, '');

  // The full view has its own control for the same camera's client.
  tile.element.click();
  assert.deepEqual(opened, ['yard']);
  const full = viewer.querySelector('.viewer-info').querySelector('.stream');
  assert.equal(full.hidden, false);
  assert.equal(full.querySelector('select').value, 'main');
  full.querySelector('select').value = 'auto';
  full.querySelector('select').dispatchEvent(new FakeEvent('change', { bubbles: true }));
  assert.deepEqual(channels.yard.sent.slice(1), [{ type: 'view', view: 'full' }, { type: 'pin', pin: 'auto' }]);
});

test('stats overlay rows follow the gateway\'s estimate', (t) => {
  const { grid, channels } = setup();
  t.after(() => grid.destroyAll());
  const tile = grid.tiles.get('yard');
  tile.player.stats = { width: 640, height: 360, fps: 15, packetsLost: 0 };
  grid.setShowStats(true);
  channels.yard.receive(STATUS);
  const dl = tile.element.querySelector('.stats');
  const rows = Object.fromEntries(dl.children.reduce((pairs, node, i, all) => (i % 2 ? pairs : [...pairs, [node.textContent, all[i + 1].textContent]]), []));
  assert.equal(rows.stream, 'sub (auto)');
  assert.equal(rows.path, '850 kb/s · 12 % lost · 35 ms');
  assert.equal(rows.main, 'not allowed (4.00 Mb/s)');
});

test('a gateway that never opens the channel: no control, nothing breaks', (t) => {
  const { grid } = setup();
  t.after(() => grid.destroyAll());
  const tile = grid.tiles.get('door');
  tile.player.streams.detach();
  grid.open('door');
  grid.close();
  assert.equal(tile.element.querySelector('.stream').hidden, true);
  assert.equal(tile.player.streams.view, 'grid');
});

test('the tile\'s details describe the stream it gets, when the camera object lists its streams', () => {
  const camera = {
    name: 'yard', codec: 'H264', width: 1920, height: 1080, fps: 25, profile: 'High',
    streams: [
      { name: 'main', width: 1920, height: 1080, fps: 25, bitrate_kbps: 4000, profile: 'High', state: 'live' },
      { name: 'sub', width: 640, height: 360, fps: 15, bitrate_kbps: 500, profile: 'Main', state: 'live' },
    ],
  };
  assert.equal(describeCamera(camera), '1920×1080 · 25 fps · H.264 High');
  assert.equal(describeCamera(camera, 'sub'), '640×360 · 15 fps · H.264 Main');
  assert.equal(describeCamera(camera, 'main'), '1920×1080 · 25 fps · H.264 High');
  const notYet = { ...camera, streams: [camera.streams[0], { name: 'sub', width: null, height: null, fps: 0, profile: null }] };
  assert.equal(describeCamera(notYet, 'sub'), '1920×1080 · 25 fps · H.264 High', 'unknown size: the camera\'s own');
  assert.equal(describeCamera({ ...camera, streams: 'odd' }, 'sub'), '1920×1080 · 25 fps · H.264 High');

  const { grid, channels } = setup();
  try {
    grid.update([{ ...camera, state: 'offline' }, { name: 'door', state: 'offline' }]);
    const meta = grid.tiles.get('yard').element.querySelector('.cam-meta');
    assert.equal(meta.textContent, '1920×1080 · 25 fps · H.264 High');
    channels.yard.receive(STATUS);
    assert.equal(meta.textContent, '640×360 · 15 fps · H.264 Main');
  } finally {
    grid.destroyAll();
  }
});

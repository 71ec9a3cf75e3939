// Main and sub streams in the viewer (web/streams.js): the gateway's status messages, the
// badge and pin, the view and pin messages on the "stream" channel, the WHEP query.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CameraPlayer } from '../../web/player.js';
import { formatStats, formatStreamRows } from '../../web/stats.js';
import { describeReason, parseStatus, StreamClient, streamBadgeModel, withStreamQuery } from '../../web/streams.js';

/** The gateway's status message as docs/streams.md shows it. */
const STATUS = {
  type: 'stream', current: 'sub', pin: 'auto', view: 'grid', streams: ['main', 'sub'], reason: 'congestion',
  estimate: { bitrate_kbps: 850, loss: 0.12, rtt_ms: 35.2, jitter_ms: 4.1, main_kbps: 4000, sub_kbps: 500, main_allowed: false },
};

class FakeChannel extends EventTarget {
  constructor(label = 'stream', readyState = 'open') { super(); Object.assign(this, { label, readyState }); this.sent = []; }
  send(data) { this.sent.push(JSON.parse(data)); }
  open() { this.readyState = 'open'; this.dispatchEvent(new Event('open')); }
  receive(data) {
    this.dispatchEvent(Object.assign(new Event('message'), { data: typeof data === 'string' ? data : JSON.stringify(data) }));
  }
}

/** localStorage's API over a Map. */
class MemoryStorage {
  constructor(entries = {}) { this.map = new Map(Object.entries(entries)); }
  getItem(key) { return this.map.get(key) ?? null; }
  setItem(key, value) { this.map.set(key, String(value)); }
  removeItem(key) { this.map.delete(key); }
}

test('the WHEP URL carries view and pin; a query it had is kept', () => {
  assert.equal(withStreamQuery('/api/cameras/yard/whep', { view: 'grid', pin: 'auto' }), '/api/cameras/yard/whep?view=grid&pin=auto');
  assert.equal(withStreamQuery('http://gw/api/cameras/a%20b/whep?x=1', { view: 'full', pin: 'sub' }),
    'http://gw/api/cameras/a%20b/whep?x=1&view=full&pin=sub');
  assert.equal(withStreamQuery('/w?view=full&pin=main', { view: 'grid', pin: 'auto' }), '/w?view=grid&pin=auto');
});

test('status: the documented message, normalised', () => {
  assert.deepEqual(parseStatus(JSON.stringify(STATUS)), {
    current: 'sub', pin: 'auto', view: 'grid', streams: ['main', 'sub'], reason: 'congestion',
    estimate: { bitrateKbps: 850, loss: 0.12, rttMs: 35.2, jitterMs: 4.1, mainKbps: 4000, subKbps: 500, mainAllowed: false },
  });
  const single = parseStatus(JSON.stringify({ type: 'stream', current: 'main', pin: 'auto', view: 'full', streams: ['main'], reason: null, estimate: null }));
  assert.deepEqual([single.streams, single.estimate, single.reason], [['main'], null, null]);
});

test('status: bad messages are ignored, odd fields read as unknown', () => {
  for (const bad of ['', 'not json', 'null', '[]', '42', '"stream"', JSON.stringify({ ...STATUS, type: 'view' }),
    JSON.stringify({ ...STATUS, current: 'third' }), JSON.stringify({ ...STATUS, current: undefined }),
    JSON.stringify({ ...STATUS, reason: 'x'.repeat(20000) })]) {
    assert.equal(parseStatus(bad), null, bad.slice(0, 40));
  }
  assert.equal(parseStatus(new ArrayBuffer(8)), null);
  assert.equal(parseStatus({ type: 'stream', current: 'sub' }), null, 'only text messages');
  const odd = parseStatus(JSON.stringify({
    type: 'stream', current: 'sub', pin: 'sometimes', view: 7, streams: 'main,sub', reason: 'r'.repeat(65),
    estimate: { bitrate_kbps: 'fast', loss: 3, rtt_ms: null, main_allowed: 'yes' },
  }));
  assert.deepEqual(odd, {
    current: 'sub', pin: null, view: null, streams: ['sub'], reason: null,
    estimate: { bitrateKbps: null, loss: 1, rttMs: null, jitterMs: null, mainKbps: null, subKbps: null, mainAllowed: null },
  });
  assert.deepEqual(parseStatus(JSON.stringify({ ...STATUS, streams: ['sub', 'main', 'sub', 9], estimate: [] })).streams, ['main', 'sub']);
});

test('reasons read as words, the stream they led to first', () => {
  const reason = (current, why) => describeReason({ current, reason: why });
  assert.equal(reason('sub', 'congestion'), 'slow link');
  assert.equal(reason('main', 'recovered'), 'link recovered');
  assert.equal(reason('main', 'view'), 'full view');
  assert.equal(reason('sub', 'view'), 'grid view');
  assert.equal(reason('sub', 'pin'), 'pinned');
  assert.equal(reason('main', 'unavailable'), 'sub stream unavailable');
  assert.equal(reason('sub', 'something new'), 'something new');
  assert.equal(reason('sub', null), null);
  assert.equal(streamBadgeModel(parseStatus(JSON.stringify(STATUS)), 'auto', 'yard').title,
    'Sub stream, camgate chooses (sub: slow link)');
});

test('badge: which stream, auto or pinned; hidden without two streams', () => {
  const status = (fields) => parseStatus(JSON.stringify({ ...STATUS, ...fields }));
  assert.deepEqual(streamBadgeModel(null, 'auto'), { shown: false });
  assert.deepEqual(streamBadgeModel(status({ current: 'main', streams: ['main'] }), 'sub'), { shown: false });

  const auto = streamBadgeModel(status({}), 'auto', 'yard');
  assert.deepEqual([auto.shown, auto.text, auto.auto, auto.pinned], [true, 'sub', true, false]);
  assert.equal(auto.label, 'Stream for yard: sub, camgate chooses');

  const pinned = streamBadgeModel(status({ current: 'main', pin: 'main', reason: 'pin' }), 'main', 'yard');
  assert.deepEqual([pinned.text, pinned.auto, pinned.pinned], ['main', false, true]);
  assert.equal(pinned.title, 'Main stream, pinned (main: pinned)');

  // Pinned to sub, but the sub stream is down: the badge says what the tile really gets.
  const fallback = streamBadgeModel(status({ current: 'main', pin: 'sub', reason: 'unavailable' }), 'sub', 'yard');
  assert.deepEqual([fallback.text, fallback.pinned], ['main', false]);
  assert.equal(fallback.title, 'Main stream, pinned to sub, not available (main: sub stream unavailable)');
});

test('stats overlay: the stream in use, the path estimate, main allowed or not', () => {
  const status = parseStatus(JSON.stringify(STATUS));
  assert.deepEqual(formatStreamRows(status), [
    ['stream', 'sub (auto)'], ['path', '850 kb/s · 12 % lost · 35 ms'], ['main', 'not allowed (4.00 Mb/s)'],
  ]);
  const better = parseStatus(JSON.stringify({ ...STATUS, current: 'main', pin: 'main',
    estimate: { bitrate_kbps: 9500, loss: 0.004, rtt_ms: 2.25, main_kbps: 4000, main_allowed: true } }));
  assert.deepEqual(formatStreamRows(better), [
    ['stream', 'main (pinned)'], ['path', '9.50 Mb/s · 0.4 % lost · 2.3 ms'], ['main', 'allowed (4.00 Mb/s)'],
  ]);
  const early = parseStatus(JSON.stringify({ ...STATUS, estimate: null }));
  assert.deepEqual(formatStreamRows(early), [['stream', 'sub (auto)'], ['path', 'measuring…']]);
  const unknown = parseStatus(JSON.stringify({ ...STATUS, estimate: {} }));
  assert.deepEqual(formatStreamRows(unknown).slice(1), [['path', '– · – lost · –'], ['main', '–']]);
  const onlyMain = parseStatus(JSON.stringify({ ...STATUS, current: 'main', streams: ['main'] }));
  assert.deepEqual(formatStreamRows(onlyMain).map(([label]) => label), ['stream', 'path']);

  const video = { width: 640, height: 360, fps: 15, packetsLost: 0 };
  assert.deepEqual(formatStats(video, status).map(([label]) => label),
    ['res', 'fps', 'rate', 'rtt', 'lost', 'freeze', 'codec', 'decoder', 'stream', 'path', 'main']);
  assert.equal(formatStats(video).length, 8, 'an older gateway: the video rows only');
  assert.deepEqual(formatStats(null, status), [['video', 'not streaming']]);
});

test('pin: remembered per camera, auto by default, bad stored values ignored', () => {
  const storage = new MemoryStorage({ 'camgate.streamPin.door': 'main', 'camgate.streamPin.bad': 'everything' });
  assert.equal(new StreamClient('door', { storage }).pin, 'main');
  assert.equal(new StreamClient('bad', { storage }).pin, 'auto');
  const yard = new StreamClient('yard', { storage });
  assert.equal(yard.pin, 'auto');
  yard.setPin('sub');
  assert.equal(storage.getItem('camgate.streamPin.yard'), 'sub');
  assert.equal(new StreamClient('yard', { storage }).pin, 'sub');
  yard.setPin('bogus');
  assert.equal(yard.pin, 'sub');
  yard.setPin('auto');
  assert.equal(storage.getItem('camgate.streamPin.yard'), null);
  const refusing = { getItem() { throw new Error('SecurityError'); }, setItem() { throw new Error('QuotaExceeded'); } };
  const client = new StreamClient('x', { storage: refusing });
  client.setPin('main');
  assert.equal(client.pin, 'main', 'kept for the page without storage');
  assert.equal(new StreamClient('x', { storage: null }).pin, 'auto');
});

test('view and pin messages: only changes the gateway does not know yet, once the channel is open', () => {
  const client = new StreamClient('yard', { storage: new MemoryStorage() });
  const channel = new FakeChannel('stream', 'connecting');
  client.attach(channel, { view: 'grid', pin: 'auto' }); // what the WHEP POST said
  channel.open();
  assert.deepEqual(channel.sent, [], 'the URL told it already');
  client.setView('full');
  client.setView('full');
  assert.deepEqual(channel.sent, [{ type: 'view', view: 'full' }]);
  client.setPin('main');
  client.setPin('main');
  client.setView('grid');
  client.setPin('auto');
  assert.deepEqual(channel.sent.slice(1), [{ type: 'pin', pin: 'main' }, { type: 'view', view: 'grid' }, { type: 'pin', pin: 'auto' }]);
  client.setView('sideways');
  assert.equal(channel.sent.length, 4);

  // Changed while the channel was still opening: said once it opens.
  const late = new FakeChannel('stream', 'connecting');
  client.attach(late, { view: 'grid', pin: 'auto' });
  client.setView('full');
  client.setPin('sub');
  assert.deepEqual(late.sent, []);
  late.open();
  assert.deepEqual(late.sent, [{ type: 'view', view: 'full' }, { type: 'pin', pin: 'sub' }]);
  assert.equal(channel.sent.length, 4, 'the old session\'s channel hears nothing more');
});

test('status messages drive the badge; bad ones change nothing; a silent gateway shows none', () => {
  const client = new StreamClient('yard', { storage: new MemoryStorage() });
  let changes = 0;
  client.onChange = () => { changes += 1; };
  const channel = new FakeChannel();
  client.attach(channel);
  assert.equal(streamBadgeModel(client.status, client.pin).shown, false, 'nothing from the gateway yet');
  channel.receive(STATUS);
  assert.equal(client.status.current, 'sub');
  assert.equal(changes, 1);
  for (const bad of ['{', '{"type":"ptz","ok":true}', { type: 'stream', current: 'hd' }]) channel.receive(bad);
  assert.equal(client.status.current, 'sub');
  assert.equal(changes, 1);
  channel.receive({ ...STATUS, current: 'main', reason: 'recovered' });
  assert.equal(describeReason(client.status), 'link recovered');
  channel.readyState = 'closed';
  channel.dispatchEvent(new Event('close'));
  assert.equal(client.status, null, 'a closed channel\'s last status is not shown');
  channel.readyState = 'open';
  channel.receive(STATUS);
  client.detach();
  assert.equal(client.status, null, 'a new session starts without a status');
  channel.receive(STATUS);
  assert.equal(client.status, null);
});

// -- the player: the session's URL and its "stream" channel ------------------------------------

class FakePC extends EventTarget {
  constructor() { super(); FakePC.last = this; this.iceGatheringState = 'complete'; this.connectionState = 'new'; }
  addTransceiver() {}
  createDataChannel(label) { return new FakeChannel(label, 'connecting'); }
  async createOffer() { return { type: 'offer', sdp: 'v=0\r\n' }; }
  async setLocalDescription(d) { this.localDescription = d; }
  async setRemoteDescription() {}
  getReceivers() { return []; }
  getStats() { return Promise.resolve(new Map()); }
  close() {}
}

test('player: a tile POSTs ?view=grid with the stored pin, and follows the session\'s "stream" channel', async () => {
  globalThis.MediaStream ??= class { addTrack() {} };
  const posts = [];
  const fetch = async (url, init) => {
    if (init.method === 'POST') posts.push(String(url));
    return new Response('v=0\r\n', { status: init.method === 'POST' ? 201 : 204, headers: { Location: 'session/1' } });
  };
  const video = { addEventListener() {}, removeEventListener() {}, play: () => Promise.resolve(), muted: true };
  let changes = 0;
  const player = new CameraPlayer('yard', video, {
    sessionOptions: { fetch, RTCPeerConnection: FakePC, audio: false },
    storage: new MemoryStorage({ 'camgate.streamPin.yard': 'sub' }),
    onChange: () => { changes += 1; },
  });
  try {
    player.update({ name: 'yard', state: 'live', whep_url: 'http://gw/api/cameras/yard/whep' });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(posts, ['http://gw/api/cameras/yard/whep?view=grid&pin=sub']);
    const channel = player.session.channels.stream;
    assert.equal(player.streams.channel, channel);
    channel.open();
    assert.deepEqual(channel.sent, []);
    player.streams.setView('full');
    assert.deepEqual(channel.sent, [{ type: 'view', view: 'full' }]);
    const before = changes;
    channel.receive(STATUS);
    assert.ok(changes > before, 'a status re-renders the tile');
    assert.equal(player.streams.status.reason, 'congestion');
    assert.equal((await player.collectStats()).stream.current, 'sub', 'window.camgate.stats() tells tests the stream');
  } finally {
    player.destroy();
  }
  assert.equal(player.streams.channel, null);
  assert.equal(player.streams.status, null);
});

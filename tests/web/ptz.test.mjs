// PTZ pad logic without a browser: keyboard mapping, hold/refresh/stop, reply correlation.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { PtzClient, presetNameError } from '../../web/ptz-client.js';
import { INTERRUPTED, MoveHold, clampSpeed, combine, keyAction } from '../../web/ptz-hold.js';

/** Manual clock for setTimeout/setInterval: advance(ms) runs what is due, in order. */
class FakeTimers {
  constructor() { this.now = 0; this.nextId = 1; this.timers = new Map(); }
  setTimeout(fn, ms) { const id = this.nextId++; this.timers.set(id, { fn, at: this.now + ms }); return id; }
  setInterval(fn, ms) { const id = this.nextId++; this.timers.set(id, { fn, at: this.now + ms, every: ms }); return id; }
  clearTimeout(id) { this.timers.delete(id); }
  clearInterval(id) { this.timers.delete(id); }
  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      const due = [...this.timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      const [id, timer] = due;
      this.now = timer.at;
      if (timer.every) timer.at += timer.every;
      else this.timers.delete(id);
      timer.fn();
    }
    this.now = end;
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** A send() that records commands and answers ok unless told otherwise. */
function recorder(answer = () => ({ ok: true })) {
  const sent = [];
  const send = (command) => {
    sent.push(command);
    return Promise.resolve({ v: 1, ...answer(command) });
  };
  return { sent, send, cmds: () => sent.map((c) => c.cmd) };
}

// -- keyboard ---------------------------------------------------------------------------------

const key = (key, extra = {}) => ({ type: 'keydown', key, code: extra.code ?? key, repeat: false, ...extra });

test('keys: arrows and +/- hold, Home is one-shot, repeats are swallowed, modifiers are not ours', () => {
  assert.deepEqual(keyAction(key('ArrowLeft')), { kind: 'hold', source: 'key:ArrowLeft', vector: { pan: -1 } });
  assert.deepEqual(keyAction(key('ArrowUp')).vector, { tilt: 1 });
  assert.deepEqual(keyAction(key('ArrowDown')).vector, { tilt: -1 });
  assert.deepEqual(keyAction(key('ArrowRight')).vector, { pan: 1 });
  assert.deepEqual(keyAction(key('+', { code: 'NumpadAdd' })).vector, { zoom: 1 });
  assert.deepEqual(keyAction(key('=', { code: 'Equal' })).vector, { zoom: 1 });
  assert.deepEqual(keyAction(key('-', { code: 'Minus' })).vector, { zoom: -1 });
  assert.deepEqual(keyAction(key('Home')), { kind: 'home' });
  assert.deepEqual(keyAction(key('ArrowLeft', { repeat: true })), { kind: 'repeat' });
  assert.deepEqual(keyAction(key('Home', { repeat: true })), { kind: 'repeat' });
  assert.equal(keyAction(key('ArrowLeft', { ctrlKey: true })), null);
  assert.equal(keyAction(key('Escape')), null);
  assert.equal(keyAction(key('s')), null);
  // keyup releases by physical key, whatever Shift did to event.key meanwhile
  assert.deepEqual(keyAction({ type: 'keyup', key: '+', code: 'Equal', shiftKey: true }), { kind: 'release', source: 'key:Equal' });
});

test('speed is clamped to 0.1..1; combined vectors are clamped then scaled', () => {
  assert.equal(clampSpeed(0), 0.1);
  assert.equal(clampSpeed('0.75'), 0.75);
  assert.equal(clampSpeed(7), 1);
  assert.equal(clampSpeed('junk'), 0.5);
  assert.deepEqual(combine([{ pan: -1 }, { tilt: 1 }], 0.5), { pan: -0.5, tilt: 0.5, zoom: 0 });
  assert.deepEqual(combine([{ pan: 1 }, { pan: 1 }], 0.3), { pan: 0.3, tilt: 0, zoom: 0 });
  assert.deepEqual(combine([{ pan: 1 }, { pan: -1 }], 1), { pan: 0, tilt: 0, zoom: 0 });
  assert.ok(!Object.is(combine([{ pan: 1 }, { pan: -1 }], 1).pan, -0));
});

// -- hold ----------------------------------------------------------------------------------------

test('hold: move at once, refresh every 300 ms while held, stop on release', async () => {
  const timers = new FakeTimers();
  const r = recorder();
  const hold = new MoveHold(r.send, { timers, speed: 0.5 });
  hold.press('button:left', { pan: -1 });
  assert.deepEqual(r.sent, [{ cmd: 'move', pan: -0.5, tilt: 0, zoom: 0 }]); // synchronously
  assert.ok(hold.active);
  timers.advance(299);
  assert.equal(r.sent.length, 1);
  timers.advance(1);
  timers.advance(600);
  assert.deepEqual(r.cmds(), ['move', 'refresh', 'refresh', 'refresh']);
  hold.release('button:left');
  assert.deepEqual(r.cmds().at(-1), 'stop');
  assert.ok(!hold.active);
  timers.advance(3000);
  assert.equal(r.sent.length, 5, 'no refresh after the stop');
  await tick();
});

test('hold: a second input changes the move, the last release stops, speed changes resend', () => {
  const timers = new FakeTimers();
  const r = recorder();
  const changes = [];
  const hold = new MoveHold(r.send, { timers, speed: 1, onChange: (moving) => changes.push(moving) });
  hold.press('key:ArrowLeft', { pan: -1 });
  hold.press('key:ArrowUp', { tilt: 1 });
  hold.press('key:ArrowUp', { tilt: 1 }); // same state again: nothing new on the wire
  hold.setSpeed(0.2);
  hold.release('key:ArrowLeft');
  hold.release('key:Nothing');
  hold.releaseAll();
  hold.releaseAll(); // already stopped: no second stop
  assert.deepEqual(r.sent, [
    { cmd: 'move', pan: -1, tilt: 0, zoom: 0 },
    { cmd: 'move', pan: -1, tilt: 1, zoom: 0 },
    { cmd: 'move', pan: -0.2, tilt: 0.2, zoom: 0 },
    { cmd: 'move', pan: 0, tilt: 0.2, zoom: 0 },
    { cmd: 'stop' },
  ]);
  assert.deepEqual(changes, [true, false]);
});

test('hold: a refused move, a refused refresh or "moving: false" end the hold, without a stop', async () => {
  for (const [answer, expected] of [
    [(c) => (c.cmd === 'move' ? { ok: false, error: 'this camera cannot zoom' } : { ok: true }), 'this camera cannot zoom'],
    [(c) => (c.cmd === 'refresh' ? { ok: false, error: 'busy' } : { ok: true }), 'busy'],
    [(c) => (c.cmd === 'refresh' ? { ok: true, moving: false } : { ok: true }), INTERRUPTED],
  ]) {
    const timers = new FakeTimers();
    const r = recorder(answer);
    const errors = [];
    const changes = [];
    const hold = new MoveHold(r.send, { timers, onError: (m) => errors.push(m), onChange: (m) => changes.push(m) });
    hold.press('p', { zoom: 1 });
    timers.advance(300);
    await tick();
    assert.deepEqual(errors, [expected]);
    assert.deepEqual(changes, [true, false]);
    assert.ok(!hold.active && hold.held.size === 0);
    const sent = r.sent.length;
    timers.advance(1000);
    hold.release('p'); // the finger lifts later: nothing more to send
    assert.equal(r.sent.length, sent, 'no refresh and no stop after giving up');
  }
});

test('hold: "moving: true" refreshes keep going; reset() forgets without sending', async () => {
  const timers = new FakeTimers();
  const r = recorder((c) => (c.cmd === 'refresh' ? { ok: true, moving: true } : { ok: true }));
  const hold = new MoveHold(r.send, { timers });
  hold.press('p', { pan: 1 });
  timers.advance(900);
  await tick();
  assert.deepEqual(r.cmds(), ['move', 'refresh', 'refresh', 'refresh']);
  hold.reset();
  timers.advance(900);
  assert.equal(r.sent.length, 4);
  assert.ok(!hold.active);
});

test('hold: late replies of an old move do not cancel the newer one', async () => {
  const timers = new FakeTimers();
  const pending = [];
  const send = (command) => new Promise((resolve) => pending.push({ command, resolve }));
  const errors = [];
  const hold = new MoveHold(send, { timers, onError: (m) => errors.push(m) });
  hold.press('a', { pan: 1 });
  hold.press('b', { tilt: 1 });
  pending[0].resolve({ ok: false, error: 'old move failed' });
  await tick();
  assert.ok(hold.active);
  assert.deepEqual(errors, []);
});

// -- client -------------------------------------------------------------------------------------

class FakeChannel extends EventTarget {
  constructor() { super(); this.readyState = 'connecting'; this.label = 'ptz'; this.sent = []; }
  send(data) { this.sent.push(JSON.parse(data)); }
  open() { this.readyState = 'open'; this.dispatchEvent(new Event('open')); }
  close() { this.readyState = 'closed'; this.dispatchEvent(new Event('close')); }
  reply(body) { this.dispatchEvent(Object.assign(new Event('message'), { data: JSON.stringify(body) })); }
}

test('client: v and increasing ids; replies resolve their own promise, in any order', async () => {
  const channel = new FakeChannel();
  const client = new PtzClient();
  const states = [];
  client.subscribe((c) => states.push(c.open));
  client.attach(channel);
  assert.deepEqual(await client.send({ cmd: 'home' }), { v: 1, id: 1, ok: false, error: 'PTZ is not connected' });
  channel.open();
  const first = client.send({ cmd: 'presets' });
  const second = client.send({ cmd: 'goto_preset', preset: '2', id: 'spoofed', v: 9 });
  assert.deepEqual(channel.sent, [
    { cmd: 'presets', v: 1, id: 2 },
    { cmd: 'goto_preset', preset: '2', v: 1, id: 3 },
  ]);
  channel.reply({ v: 1, id: 3, ok: false, error: 'no such preset' });
  channel.reply({ v: 1, id: 99, ok: true }); // unknown id: ignored
  channel.dispatchEvent(Object.assign(new Event('message'), { data: 'not json' }));
  channel.reply({ v: 1, id: 2, ok: true, presets: [{ token: '1', name: 'Door' }] });
  assert.deepEqual(await second, { v: 1, id: 3, ok: false, error: 'no such preset' });
  assert.deepEqual((await first).presets, [{ token: '1', name: 'Door' }]);
  assert.deepEqual(states, [false, true]);
});

test('client: pending commands fail on close, on detach and after the timeout', async () => {
  const timers = new FakeTimers();
  const channel = new FakeChannel();
  const client = new PtzClient({ timeoutMs: 1000, timers });
  client.attach(channel);
  channel.open();
  const slow = client.send({ cmd: 'home' });
  timers.advance(1000);
  assert.deepEqual(await slow, { v: 1, id: 1, ok: false, error: 'the camera did not answer in time' });
  channel.reply({ v: 1, id: 1, ok: true }); // too late: nobody waits for it any more

  const cut = client.send({ cmd: 'home' });
  channel.close();
  assert.equal((await cut).error, 'PTZ connection closed');
  assert.ok(!client.open);

  const next = new FakeChannel();
  client.attach(next);
  next.open();
  const detached = client.send({ cmd: 'stop' });
  client.detach();
  assert.equal((await detached).error, 'PTZ connection closed');
  assert.equal(next.sent.length, 1);
  next.reply({ v: 1, id: 3, ok: true }); // listeners removed: no effect, no throw
  assert.equal(timers.timers.size, 0, 'no timer left behind');
});

// -- the WHEP session opens the channel ---------------------------------------------------------

test('WhepSession creates ordered, reliable "ptz" and "stream" channels before the offer', async () => {
  const { WhepSession } = await import('../../web/whep.js');
  globalThis.MediaStream ??= class { addTrack() {} };
  const calls = [];
  class PC extends EventTarget {
    constructor() { super(); this.iceGatheringState = 'complete'; }
    addTransceiver(kind) { calls.push(`transceiver:${kind}`); }
    createDataChannel(label, init) { calls.push(['channel', label, init]); return { label }; }
    async createOffer() { calls.push('offer'); return { type: 'offer', sdp: 'v=0\r\n' }; }
    async setLocalDescription(d) { this.localDescription = d; }
    async setRemoteDescription() {}
    getReceivers() { return []; }
    close() {}
  }
  const fetch = async () => new Response('v=0\r\n', { status: 201, headers: { Location: 's/1' } });
  const seen = [];
  const session = new WhepSession('http://gw/api/cameras/cam/whep', {
    fetch, RTCPeerConnection: PC, onDataChannel: (channel) => seen.push(channel.label),
  });
  await session.start();
  assert.deepEqual(calls, ['transceiver:video', 'transceiver:audio',
    ['channel', 'ptz', { ordered: true }], ['channel', 'stream', { ordered: true }], 'offer']);
  assert.deepEqual(seen, ['ptz', 'stream']);
  assert.equal(session.channels.ptz.label, 'ptz');
  assert.equal(session.channels.stream.label, 'stream');
});

test('preset names: what the gateway accepts (str.isprintable, 1-64 code points)', () => {
  for (const ok of ['Front gate', 'Café 2', 'x'.repeat(64), '🚪'.repeat(64), '门口']) assert.equal(presetNameError(ok), null, ok);
  for (const bad of ['', 'x'.repeat(65), '   ', 'tab\there', 'nb\u00a0sp', 'zw\u200bj', 'line\nbreak']) {
    assert.ok(presetNameError(bad), JSON.stringify(bad));
  }
});

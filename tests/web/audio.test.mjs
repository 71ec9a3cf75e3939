// Unit tests for the viewer's audio logic (web/audio.js): node --test tests/web/
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AudioPlayback, audioControlModel, describeAudioCodec, levelOf } from '../../web/audio.js';

test('the unmute control shows only for cameras with sound, and says what it does', () => {
  const camera = { name: 'door', audio_output: 'OPUS', audio_refused: null };
  assert.deepEqual(audioControlModel(camera, true), { shown: true, muted: true, label: 'Unmute door', pressed: false, refused: null });
  assert.equal(audioControlModel(camera, false).label, 'Mute door');
  assert.equal(audioControlModel(camera, false).pressed, true);
  assert.equal(audioControlModel({ name: 'yard', audio_output: null }, true).shown, false);
  assert.equal(audioControlModel({ name: 'yard', audio_output: null }, false).pressed, false);
});

test('a refused codec is said on the tile', () => {
  const model = audioControlModel({ name: 'old', audio_output: null, audio_refused: 'G726-32 8000 Hz: not supported' }, true);
  assert.equal(model.shown, false);
  assert.equal(model.refused, 'No sound: G726-32 8000 Hz: not supported');
});

test('level: silence is 0, a loud signal fills the meter, never above 1', () => {
  assert.equal(levelOf(new Uint8Array(64).fill(128)), 0);
  assert.equal(levelOf(new Uint8Array()), 0);
  const square = Uint8Array.from({ length: 64 }, (_, i) => (i % 2 ? 255 : 0));
  assert.equal(levelOf(square), 1);
  const soft = Uint8Array.from({ length: 64 }, (_, i) => (i % 2 ? 136 : 120));
  assert.ok(levelOf(soft) > 0 && levelOf(soft) < 0.5);
});

test('codec names', () => {
  assert.equal(describeAudioCodec('PCMU'), 'G.711 µ-law');
  assert.equal(describeAudioCodec('OPUS'), 'Opus');
  assert.equal(describeAudioCodec('G726'), 'G726');
});

test('playback starts muted; unmuting starts an AudioContext from the click', () => {
  const video = { muted: true };
  const made = [];
  class FakeContext {
    constructor() { made.push(this); this.resumed = 0; }
    resume() { this.resumed += 1; return Promise.resolve(); }
    createAnalyser() { return {}; }
    close() { return Promise.resolve(); }
  }
  globalThis.requestAnimationFrame ??= () => 1;
  globalThis.cancelAnimationFrame ??= () => {};
  const playback = new AudioPlayback(video, { AudioContextClass: FakeContext });
  let changes = 0;
  playback.onChange = () => { changes += 1; };
  assert.equal(playback.muted, true);
  assert.equal(made.length, 0); // nothing before the user asks
  playback.toggle();
  assert.equal(video.muted, false);
  assert.equal(made.length, 1);
  assert.equal(made[0].resumed, 1);
  playback.toggle();
  assert.equal(video.muted, true);
  assert.equal(changes, 2);
  playback.destroy();
});

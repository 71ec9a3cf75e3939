// Push-to-talk client logic without a browser: the gateway's hello shows the button, a press
// asks for the microphone once and the floor, a release stops, busy/ended/not allowed.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { TalkClient } from '../../web/talk.js';

class FakeChannel extends EventTarget {
  constructor() { super(); this.readyState = 'open'; this.sent = []; }
  send(data) { this.sent.push(JSON.parse(data)); }
  reply(message) { this.dispatchEvent(Object.assign(new Event('message'), { data: JSON.stringify(message) })); }
}

function setup() {
  const tracks = [];
  const mic = { kind: 'audio', readyState: 'live' };
  let asked = 0;
  const client = new TalkClient({
    getUserMedia: async () => {
      asked += 1;
      return { getAudioTracks: () => [mic] };
    },
  });
  const sender = { replaceTrack: async (track) => { tracks.push(track); } };
  const channel = new FakeChannel();
  client.attach(channel, { audioTransceiver: { sender } });
  return { client, channel, tracks, mic, asked: () => asked };
}

test('nothing to hold until the gateway says ready', async () => {
  const { client, channel } = setup();
  assert.equal(client.available, false);
  await client.press();
  assert.deepEqual(channel.sent, []);
  channel.reply({ talk: 'ready', codec: 'PCMU' });
  assert.equal(client.available, true);
  assert.equal(client.state, 'ready');
});

test('press: microphone once, track on the sender, start; release: stop and no track', async () => {
  const { client, channel, tracks, mic, asked } = setup();
  channel.reply({ talk: 'ready', codec: 'PCMU' });
  await client.press();
  assert.deepEqual(channel.sent, [{ talk: 'start' }]);
  assert.deepEqual(tracks, [mic]);
  channel.reply({ talk: 'granted', codec: 'PCMU' });
  assert.equal(client.state, 'talking');
  client.release();
  assert.deepEqual(channel.sent.at(-1), { talk: 'stop' });
  assert.equal(tracks.at(-1), null);
  await client.press();
  assert.equal(asked(), 1, 'the microphone is asked for once');
});

test('busy and an unasked end release the button', async () => {
  const { client, channel, tracks } = setup();
  channel.reply({ talk: 'ready', codec: 'PCMA' });
  await client.press();
  channel.reply({ talk: 'busy', message: 'someone else is talking to this camera' });
  assert.equal(client.state, 'busy');
  assert.equal(client.held, false);
  assert.equal(tracks.at(-1), null);
  await client.press();
  channel.reply({ talk: 'granted', codec: 'PCMA' });
  channel.reply({ talk: 'ended', message: 'talk time is limited to 60 s' });
  assert.equal(client.state, 'ready');
  assert.equal(client.message, 'talk time is limited to 60 s');
  assert.equal(tracks.at(-1), null);
});

test('not allowed or unsupported: no button', () => {
  for (const talk of ['not allowed', 'unsupported']) {
    const { client, channel } = setup();
    channel.reply({ talk, message: 'why' });
    assert.equal(client.available, false);
  }
});

test('a denied microphone is an error, and nothing is sent', async () => {
  const client = new TalkClient({
    getUserMedia: async () => { throw Object.assign(new Error('denied'), { name: 'NotAllowedError' }); },
  });
  const channel = new FakeChannel();
  client.attach(channel, { audioTransceiver: { sender: { replaceTrack: async () => {} } } });
  channel.reply({ talk: 'ready', codec: 'PCMU' });
  await client.press();
  assert.equal(client.state, 'error');
  assert.equal(client.message, 'microphone not allowed');
  assert.deepEqual(channel.sent, []);
});

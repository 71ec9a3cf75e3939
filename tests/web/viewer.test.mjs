// Unit tests for the viewer's plain ES modules (no browser): node --test tests/web/
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Backoff } from '../../web/reconnect.js';
import { combineState } from '../../web/player.js';
import { describeCodec, describeProfileLevelId, formatStats, summarize } from '../../web/stats.js';
import { buildSdpFrag, describeFailure, WhepSession } from '../../web/whep.js';

const OFFER = [
  'v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97', 'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:EsAw', 'a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1', 'a=mid:0', 'a=recvonly',
  'a=candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host', '',
].join('\r\n');

test('backoff grows 1 s .. 30 s, with jitter, and resets', () => {
  const b = new Backoff({ random: () => 0.5 }); // no jitter
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(() => b.next()), [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  b.reset();
  assert.equal(b.next(), 1000);
  const low = new Backoff({ random: () => 0 });
  low.next();
  assert.equal(low.next(), 1600); // 2000 - 20 %
  assert.equal(new Backoff({ random: () => 0 }).next(), 1000); // never below min
});

test('sdpfrag: ufrag/pwd, m-line, mid, candidates, end-of-candidates', () => {
  const frag = buildSdpFrag(OFFER, [
    { candidate: 'candidate:2 1 udp 2122194687 198.51.100.2 61765 typ host', sdpMid: '0', sdpMLineIndex: 0 },
  ], true);
  assert.equal(frag, [
    'a=ice-ufrag:EsAw', 'a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1', 'm=video 9 UDP/TLS/RTP/SAVPF 96 97', 'a=mid:0',
    'a=candidate:2 1 udp 2122194687 198.51.100.2 61765 typ host', 'a=end-of-candidates', '',
  ].join('\r\n'));
  assert.equal(buildSdpFrag(OFFER, [], true).split('\r\n').slice(2).join('|'),
    'm=video 9 UDP/TLS/RTP/SAVPF 96 97|a=mid:0|a=end-of-candidates|');
});

test('profile-level-id and codec names', () => {
  assert.equal(describeProfileLevelId('42e01f'), 'Constrained Baseline 3.1');
  assert.equal(describeProfileLevelId('640028'), 'High 4.0');
  assert.equal(describeProfileLevelId('4d0032'), 'Main 5.0');
  assert.equal(describeProfileLevelId('zz'), null);
  assert.equal(describeCodec({ mimeType: 'video/H264', sdpFmtpLine: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640028' }),
    'H264 High 4.0 (640028)');
  assert.equal(describeCodec({ mimeType: 'video/VP8' }), 'VP8');
});

test('summarize getStats(): resolution, rates, rtt, codec', () => {
  const report = (t, frames, bytes) => new Map([
    ['IT01V', { id: 'IT01V', type: 'inbound-rtp', kind: 'video', timestamp: t, frameWidth: 1920, frameHeight: 1080,
      framesDecoded: frames, bytesReceived: bytes, packetsLost: 3, freezeCount: 1, codecId: 'C1', transportId: 'T1',
      decoderImplementation: 'FFmpeg' }],
    ['C1', { id: 'C1', type: 'codec', mimeType: 'video/H264', sdpFmtpLine: 'profile-level-id=42e01f' }],
    ['T1', { id: 'T1', type: 'transport', selectedCandidatePairId: 'P1' }],
    ['P1', { id: 'P1', type: 'candidate-pair', currentRoundTripTime: 0.004 }],
  ]);
  const first = summarize(report(1000, 10, 0));
  assert.equal(first.bitrateKbps, null);
  const s = summarize(report(2000, 40, 500000), first);
  assert.equal(s.fps, 30);
  assert.equal(s.bitrateKbps, 4000);
  assert.equal(s.rttMs, 4);
  assert.equal(s.codec, 'H264 Constrained Baseline 3.1 (42e01f)');
  const rows = Object.fromEntries(formatStats(s));
  assert.equal(rows.res, '1920×1080');
  assert.equal(rows.rate, '4.00 Mb/s');
  assert.equal(rows.decoder, 'FFmpeg');
});

test('tile state combines server and peer connection', () => {
  const cam = (state, error = null) => ({ name: 'c', state, error });
  assert.equal(combineState(cam('live'), { state: 'live' }).state, 'live');
  assert.equal(combineState(cam('live'), { state: 'idle' }).state, 'connecting');
  assert.equal(combineState(cam('live'), { state: 'reconnecting' }).state, 'reconnecting');
  assert.equal(combineState(cam('connecting'), { state: 'reconnecting' }).state, 'connecting');
  assert.equal(combineState(cam('offline'), { state: 'live' }).state, 'offline');
  assert.equal(combineState(cam('reconnecting'), { state: 'live' }).state, 'reconnecting');
  const err = combineState(cam('reconnecting', 'connection refused'), { state: 'idle' });
  assert.deepEqual([err.state, err.text, err.detail], ['reconnecting', 'reconnecting', 'connection refused']);
  assert.equal(combineState(cam('offline', 'no H.264'), { state: 'live' }).detail, 'no H.264');
  assert.equal(combineState(cam('offline'), { state: 'live' }).detail, 'Camera offline');
});

// -- WhepSession against a fake RTCPeerConnection and fetch ---------------------------------

class FakePC extends EventTarget {
  constructor(config) {
    super();
    FakePC.last = this;
    this.config = config;
    this.iceGatheringState = 'new';
    this.connectionState = 'new';
    this.transceivers = [];
  }
  addTransceiver(kind, init) { this.transceivers.push({ kind, init }); }
  async createOffer() { return { type: 'offer', sdp: OFFER }; }
  async setLocalDescription(d) { this.localDescription = d; this.iceGatheringState = 'gathering'; }
  async setRemoteDescription(d) { this.remoteDescription = d; }
  getReceivers() { return []; }
  close() { this.closed = true; }
  candidate(candidate) {
    this.dispatchEvent(Object.assign(new Event('icecandidate'), { candidate }));
  }
}

function fakeFetch(responses) {
  const calls = [];
  const fn = async (url, init = {}) => {
    calls.push({ url: String(url), method: init.method, headers: init.headers || {}, body: init.body });
    const r = responses[init.method] ?? { status: 204 };
    return new Response(r.body ?? null, { status: r.status, headers: r.headers });
  };
  fn.calls = calls;
  return fn;
}

globalThis.MediaStream ??= class { addTrack() {} };

test('WhepSession: POST offer, Location resolved, trickle PATCH after POST, DELETE on close', async () => {
  const fetch = fakeFetch({
    POST: { status: 201, body: 'v=0\r\n', headers: { Location: 'whep/abc', ETag: '"e1"' } },
  });
  const states = [];
  const s = new WhepSession('http://gw.local/api/cameras/garage/whep', {
    fetch, RTCPeerConnection: FakePC, gatherTimeoutMs: 10, onState: (st) => states.push(st),
  });
  await s.start();
  const pc = FakePC.last;
  assert.deepEqual(pc.config, { iceServers: [] });
  assert.deepEqual(pc.transceivers, [
    { kind: 'video', init: { direction: 'recvonly' } },
    { kind: 'audio', init: { direction: 'recvonly' } }, // the camera's sound, if any
  ]);
  const post = fetch.calls[0];
  assert.equal(post.method, 'POST');
  assert.equal(post.headers['Content-Type'], 'application/sdp');
  assert.equal(s.location, 'http://gw.local/api/cameras/garage/whep/abc');
  assert.equal(pc.remoteDescription.type, 'answer');

  pc.candidate({ candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 61764 typ host', sdpMid: '0' }); // already sent
  pc.candidate({ candidate: 'candidate:9 1 udp 1 203.0.113.9 5000 typ srflx', sdpMid: '0', sdpMLineIndex: 0 });
  pc.candidate(null);
  await new Promise((r) => setTimeout(r, 60));
  const patches = fetch.calls.filter((c) => c.method === 'PATCH');
  assert.equal(patches.length, 1);
  assert.equal(patches[0].url, s.location);
  assert.equal(patches[0].headers['Content-Type'], 'application/trickle-ice-sdpfrag');
  assert.equal(patches[0].headers['If-Match'], '"e1"');
  assert.match(patches[0].body, /a=candidate:9 1 udp 1 203\.0\.113\.9 5000 typ srflx\r\na=end-of-candidates\r\n$/);
  assert.doesNotMatch(patches[0].body, /192\.0\.2\.1/);

  const location = s.location;
  await s.close();
  assert.deepEqual(fetch.calls.at(-1), { url: location, method: 'DELETE', headers: {}, body: undefined });
  assert.ok(pc.closed);
  assert.deepEqual(states, ['connecting', 'closed']);
});

test('WhepSession: non-201 answer becomes a readable error', async () => {
  const fetch = fakeFetch({ POST: { status: 503, body: 'camera garage is offline\n' } });
  const s = new WhepSession('http://gw.local/api/cameras/garage/whep', { fetch, RTCPeerConnection: FakePC, gatherTimeoutMs: 1 });
  await assert.rejects(s.start(), { name: 'WhepError', status: 503, message: '503: camera garage is offline' });
  assert.equal(await describeFailure(new Response('', { status: 404, statusText: 'Not Found' })), '404 Not Found');
  assert.equal(await describeFailure(new Response('{"error": "unknown camera"}', { status: 404, statusText: 'Not Found' })),
    '404 Not Found: unknown camera');
});

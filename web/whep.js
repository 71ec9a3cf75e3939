// WHEP (WebRTC-HTTP Egress Protocol) client: receive one video stream.
//
//   const session = new WhepSession('/api/cameras/garage/whep', { onState });
//   video.srcObject = await session.start();   // POST offer -> 201 + Location + answer
//   session.channels.ptz                       // the "ptz" data channel (ptz-client.js)
//   session.channels.stream                    // the "stream" data channel (streams.js)
//   ...
//   await session.close();                     // DELETE Location
//
// ICE: no STUN/TURN servers (the gateway is on the LAN). We wait up to gatherTimeoutMs for
// gathering to complete so the offer usually carries every candidate; whatever is gathered
// after the POST is trickled with PATCH application/trickle-ice-sdpfrag (RFC 8840 as updated
// by RFC 9725 section 4.3), ending with a=end-of-candidates.

export class WhepError extends Error {
  constructor(message, { status = 0 } = {}) {
    super(message);
    this.name = 'WhepError';
    this.status = status;
  }
}

/** Session states reported to onState: new, connecting, connected, disconnected, failed, closed. */
export class WhepSession {
  constructor(url, {
    onState = () => {},
    gatherTimeoutMs = 2000,
    requestTimeoutMs = 10000,
    fetch: fetchFn = (...args) => globalThis.fetch(...args),
    RTCPeerConnection: PeerConnection = globalThis.RTCPeerConnection,
    dataChannels = ['ptz', 'stream'],
    onDataChannel = () => {},
    audio = true, // offer to receive the camera's sound
    talk = false, // push-to-talk (talk.js): a sendrecv audio m-line and a "talk" channel
  } = {}) {
    this.url = new URL(url, globalThis.location?.href).href;
    this.onState = onState;
    this.gatherTimeoutMs = gatherTimeoutMs;
    this.requestTimeoutMs = requestTimeoutMs;
    this.fetch = fetchFn;
    this.PeerConnection = PeerConnection;
    this.dataChannelLabels = talk ? [...dataChannels, 'talk'] : dataChannels;
    this.talk = talk;
    this.audioTransceiver = null; // its sender carries the microphone while talking
    this.onDataChannel = onDataChannel;
    this.audio = audio;
    this.channels = {}; // label -> RTCDataChannel
    this.state = 'new';
    this.pc = null;
    this.stream = null;
    this.location = null; // absolute session URL from the 201 Location header
    this.etag = null;
    this.trickleSupported = true;
    this._offerSdp = null; // what we POSTed; candidates already in it are not trickled
    this._pending = []; // RTCIceCandidate (or null = end of candidates) not yet PATCHed
    this._patchChain = Promise.resolve();
    this._flushScheduled = false;
    this._abort = new AbortController();
  }

  get closed() {
    return this.state === 'closed';
  }

  /** Negotiate; resolves with the MediaStream that receives the camera's video. */
  async start() {
    if (this.pc) throw new WhepError('WhepSession.start() called twice');
    this._setState('connecting');
    const pc = (this.pc = new this.PeerConnection({ iceServers: [] }));
    this.stream = new MediaStream();
    pc.addTransceiver('video', { direction: 'recvonly' });
    // One audio m-line: the camera's sound, if it has any (the gateway answers it inactive
    // if not), and with push-to-talk the microphone the other way.
    if (this.talk) this.audioTransceiver = pc.addTransceiver('audio', { direction: 'sendrecv' });
    else if (this.audio !== false) pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addEventListener('track', (event) => this.stream.addTrack(event.track));
    pc.addEventListener('icecandidate', (event) => this._onCandidate(event.candidate));
    pc.addEventListener('connectionstatechange', () => this._onConnectionState());
    // Before the offer, so it carries the SCTP m-line and the channels open with the
    // session (the gateway answers them; a camera without PTZ just never uses "ptz", and
    // a gateway without main and sub streams never says anything on "stream").
    for (const label of this.dataChannelLabels) {
      const channel = pc.createDataChannel?.(label, { ordered: true });
      if (!channel) continue;
      this.channels[label] = channel;
      this.onDataChannel(channel, this);
    }

    await pc.setLocalDescription(await pc.createOffer());
    await this._waitForGathering();
    this._checkOpen();

    this._offerSdp = pc.localDescription.sdp;
    this._offerComplete = pc.iceGatheringState === 'complete'; // no end-of-candidates to trickle
    const response = await this._request('POST', this.url, {
      headers: { 'Content-Type': 'application/sdp', Accept: 'application/sdp' },
      body: this._offerSdp,
    });
    if (response.status !== 201) {
      throw new WhepError(await describeFailure(response), { status: response.status });
    }
    const location = response.headers.get('Location');
    if (!location) throw new WhepError('WHEP answer has no Location header', { status: 201 });
    this.location = new URL(location, this.url).href;
    this.etag = response.headers.get('ETag');
    if (this.closed) await this._deleteResource(); // closed while the POST was answered
    this._checkOpen();
    const answer = await response.text().catch((error) => {
      this._checkOpen();
      throw new WhepError(`reading the WHEP answer: ${error?.message || error}`);
    });
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    this._checkOpen();
    this._watchDtls();
    this._scheduleFlush();
    return this.stream;
  }

  /**
   * Delete the session on the server, then close the peer connection (DELETE first, so the
   * server is not left guessing from a DTLS close). Best effort; never throws.
   */
  async close() {
    if (this.closed) return;
    this._setState('closed');
    this._abort.abort();
    this._pending = [];
    const deleted = this._deleteResource();
    await Promise.race([deleted, new Promise((resolve) => setTimeout(resolve, 1000))]);
    this.pc?.close();
  }

  getStats() {
    return this.pc ? this.pc.getStats() : Promise.resolve(new Map());
  }

  // -- internals -------------------------------------------------------------------------

  _setState(state) {
    if (this.state === state || this.closed) return;
    this.state = state;
    try {
      this.onState(state, this);
    } catch (error) {
      console.error('WhepSession onState handler failed', error);
    }
  }

  _checkOpen() {
    if (this.closed) throw new WhepError('session closed', { status: 0 });
  }

  _onConnectionState() {
    const state = this.pc.connectionState;
    if (['connected', 'disconnected', 'failed'].includes(state)) this._setState(state);
  }

  /** The server closing DTLS ends the session at once; ICE would take ~5 s to notice. */
  _watchDtls() {
    const dtls = this.pc.getReceivers?.()[0]?.transport;
    dtls?.addEventListener?.('statechange', () => {
      if (this.closed || !['closed', 'failed'].includes(dtls.state)) return;
      if (dtls.state === 'closed') this._remoteClosed = true; // the server ended it: nothing to DELETE
      this._setState('failed');
    });
  }

  _waitForGathering() {
    const pc = this.pc;
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', onChange);
        this._abort.signal.removeEventListener('abort', done);
        resolve();
      };
      const onChange = () => pc.iceGatheringState === 'complete' && done();
      const timer = setTimeout(done, this.gatherTimeoutMs);
      pc.addEventListener('icegatheringstatechange', onChange);
      this._abort.signal.addEventListener('abort', done);
    });
  }

  _onCandidate(candidate) {
    if (this.closed || !this._offerSdp || !this.trickleSupported) return; // before the POST: in the offer
    const isEnd = !candidate || !candidate.candidate; // null, or '' from older Firefox
    if (isEnd) {
      if (this._offerComplete || /^a=end-of-candidates/m.test(this._offerSdp)) return;
      if (this._pending.includes(null)) return;
      this._pending.push(null);
    } else {
      if (this._offerSdp.includes(candidate.candidate)) return;
      this._pending.push(candidate);
    }
    this._scheduleFlush();
  }

  /** Coalesce candidates gathered in the same few ms into one PATCH; PATCHes go out in order. */
  _scheduleFlush() {
    if (this._flushScheduled || !this.location || !this._pending.length) return;
    this._flushScheduled = true;
    setTimeout(() => {
      this._flushScheduled = false;
      const batch = this._pending.splice(0);
      if (!batch.length || this.closed) return;
      this._patchChain = this._patchChain.then(() => this._patch(batch));
    }, 20);
  }

  async _patch(batch) {
    if (this.closed || !this.trickleSupported) return;
    const body = buildSdpFrag(this._offerSdp, batch.filter(Boolean), batch.includes(null));
    const headers = { 'Content-Type': 'application/trickle-ice-sdpfrag' };
    if (this.etag) headers['If-Match'] = this.etag;
    try {
      const response = await this._request('PATCH', this.location, { headers, body });
      if ([405, 501].includes(response.status)) {
        this.trickleSupported = false; // server takes full offers only; ICE may still succeed
      } else if (!response.ok) {
        console.warn(`WHEP trickle PATCH: ${await describeFailure(response)}`);
      }
    } catch (error) {
      if (!this.closed) console.warn('WHEP trickle PATCH failed', error);
    }
  }

  async _deleteResource() {
    const location = this.location;
    this.location = null;
    if (!location || this._remoteClosed) return;
    try {
      // Not tied to this._abort: it must go out even though the session is closing.
      await this.fetch(location, { method: 'DELETE', keepalive: true });
    } catch {
      // The server reaps sessions whose peer connection dies; nothing more to do.
    }
  }

  async _request(method, url, init) {
    const timeout = AbortSignal.timeout?.(this.requestTimeoutMs);
    const signal = timeout && AbortSignal.any
      ? AbortSignal.any([this._abort.signal, timeout])
      : this._abort.signal;
    try {
      return await this.fetch(url, { method, ...init, signal });
    } catch (error) {
      this._checkOpen();
      if (error?.name === 'TimeoutError') {
        throw new WhepError(`${method} ${new URL(url).pathname}: no answer in ${this.requestTimeoutMs / 1000} s`);
      }
      throw new WhepError(`${method} ${new URL(url).pathname}: ${error?.message || 'network error'}`);
    }
  }
}

/**
 * "503 Service Unavailable: camera is offline" from a failed response: the body's text, or
 * its "error"/"message" field when it is JSON (camgate answers {"error": "..."}).
 */
export async function describeFailure(response) {
  let text = '';
  try {
    text = (await response.text()).trim();
  } catch {
    // body unreadable: the status line alone must do
  }
  if (text.startsWith('{')) {
    try {
      const body = JSON.parse(text);
      const message = body?.error ?? body?.message;
      if (typeof message === 'string' && message) text = message;
    } catch {
      // not JSON after all: show it as it is
    }
  }
  if (text.length > 300) text = `${text.slice(0, 300)}…`;
  const status = [response.status, response.statusText].filter(Boolean).join(' ');
  return text ? `${status}: ${text}` : status || 'request failed';
}

/**
 * SDP fragment (application/trickle-ice-sdpfrag) for trickled candidates:
 *
 *   a=ice-ufrag:EsAw
 *   a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1
 *   m=video 9 UDP/TLS/RTP/SAVPF 96 97
 *   a=mid:0
 *   a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0
 *   a=end-of-candidates
 *
 * localSdp is the offer we sent (source of ice-ufrag/pwd and m-lines); candidates are
 * RTCIceCandidate-likes ({candidate, sdpMid, sdpMLineIndex, usernameFragment}); with
 * end=true every m-section gets a=end-of-candidates (only the bundle's first one when bundled).
 */
export function buildSdpFrag(localSdp, candidates, end = false) {
  const sections = parseSdpSections(localSdp);
  if (!sections.length) throw new Error('local SDP has no m= section');
  const bundled = /^a=group:BUNDLE /m.test(localSdp);
  const first = sections[0];
  const lines = [
    `a=ice-ufrag:${candidates.find((c) => c.usernameFragment)?.usernameFragment || first.ufrag}`,
    `a=ice-pwd:${first.pwd}`,
  ];
  const sectionFor = (candidate) => {
    if (bundled) return first;
    return sections.find((s) => candidate.sdpMid != null && s.mid === candidate.sdpMid)
      || sections[candidate.sdpMLineIndex ?? 0] || first;
  };
  const targets = end ? (bundled ? [first] : sections) : [];
  for (const candidate of candidates) {
    const section = sectionFor(candidate);
    if (!targets.includes(section)) targets.push(section);
  }
  for (const section of sections.filter((s) => targets.includes(s))) {
    lines.push(section.mLine);
    if (section.mid != null) lines.push(`a=mid:${section.mid}`);
    for (const candidate of candidates) {
      if (sectionFor(candidate) === section) lines.push(`a=${candidate.candidate.replace(/^a=/, '')}`);
    }
    if (end) lines.push('a=end-of-candidates');
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** m-sections of an SDP: m= line, mid, ice-ufrag/pwd (media level, else session level). */
export function parseSdpSections(sdp) {
  const session = { ufrag: null, pwd: null };
  const sections = [];
  let current = session;
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) {
      current = { mLine: line, mid: null, ufrag: null, pwd: null };
      sections.push(current);
    } else if (line.startsWith('a=mid:')) {
      current.mid = line.slice(6);
    } else if (line.startsWith('a=ice-ufrag:')) {
      current.ufrag = line.slice(12);
    } else if (line.startsWith('a=ice-pwd:')) {
      current.pwd = line.slice(10);
    }
  }
  for (const section of sections) {
    section.ufrag ??= session.ufrag;
    section.pwd ??= session.pwd;
  }
  return sections;
}

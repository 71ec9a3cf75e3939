// WebRTC getStats() -> one flat summary of the received video, and its display rows.

const PROFILES = {
  0x42: 'Baseline', 0x4d: 'Main', 0x58: 'Extended', 0x64: 'High',
  0x6e: 'High 10', 0x7a: 'High 4:2:2', 0xf4: 'High 4:4:4',
};

/** "42e01f" -> "Constrained Baseline 3.1"; null when unparsable. */
export function describeProfileLevelId(hex) {
  if (!/^[0-9a-f]{6}$/i.test(hex || '')) return null;
  const profileIdc = parseInt(hex.slice(0, 2), 16);
  const constraints = parseInt(hex.slice(2, 4), 16);
  const levelIdc = parseInt(hex.slice(4, 6), 16);
  let profile = PROFILES[profileIdc] || `profile ${profileIdc}`;
  if (profileIdc === 0x42 && constraints & 0x40) profile = 'Constrained Baseline';
  if (profileIdc === 0x64 && (constraints & 0x0c) === 0x0c) profile = 'Constrained High';
  const level = levelIdc === 11 && constraints & 0x10 && profileIdc !== 0x64 ? '1b' : (levelIdc / 10).toFixed(1);
  return `${profile} ${level}`;
}

/** "H264 Constrained Baseline 3.1 (42e01f)" from a codec stats entry. */
export function describeCodec(codec) {
  if (!codec?.mimeType) return null;
  const name = codec.mimeType.split('/').pop();
  const plid = /profile-level-id=([0-9a-f]{6})/i.exec(codec.sdpFmtpLine || '')?.[1];
  const profile = plid && describeProfileLevelId(plid);
  return profile ? `${name} ${profile} (${plid.toLowerCase()})` : name;
}

const get = (report, id) => (id && typeof report.get === 'function' ? report.get(id) : undefined);

/**
 * Summarise an RTCStatsReport (or any Map/iterable of stats objects). prev is the previous
 * summary, for the rate fields (fps when framesPerSecond is missing, bitrate).
 */
export function summarize(report, prev = null) {
  const all = [...(typeof report.values === 'function' ? report.values() : report)];
  const inbound = all.find((s) => s.type === 'inbound-rtp' && (s.kind ?? s.mediaType) === 'video');
  const summary = {
    timestamp: inbound?.timestamp ?? Date.now(),
    width: inbound?.frameWidth ?? null,
    height: inbound?.frameHeight ?? null,
    fps: inbound?.framesPerSecond ?? null,
    bitrateKbps: null,
    rttMs: null,
    packetsReceived: inbound?.packetsReceived ?? 0,
    packetsLost: inbound?.packetsLost ?? 0,
    framesDecoded: inbound?.framesDecoded ?? 0,
    framesDropped: inbound?.framesDropped ?? 0,
    keyFramesDecoded: inbound?.keyFramesDecoded ?? null,
    freezeCount: inbound?.freezeCount ?? null,
    bytesReceived: inbound?.bytesReceived ?? 0,
    jitterMs: inbound?.jitter != null ? inbound.jitter * 1000 : null,
    decoder: inbound?.decoderImplementation ?? null,
    codec: describeCodec(get(report, inbound?.codecId) ?? all.find((s) => s.type === 'codec' && /^video\//i.test(s.mimeType || ''))),
  };

  const transport = get(report, inbound?.transportId) ?? all.find((s) => s.type === 'transport');
  const pair = get(report, transport?.selectedCandidatePairId)
    ?? all.find((s) => s.type === 'candidate-pair' && (s.selected || (s.nominated && s.state === 'succeeded')));
  if (pair?.currentRoundTripTime != null) summary.rttMs = pair.currentRoundTripTime * 1000;

  const seconds = prev ? (summary.timestamp - prev.timestamp) / 1000 : 0;
  if (seconds > 0) {
    const bytes = summary.bytesReceived - prev.bytesReceived;
    const frames = summary.framesDecoded - prev.framesDecoded;
    if (bytes >= 0) summary.bitrateKbps = (bytes * 8) / 1000 / seconds;
    if (summary.fps == null && frames >= 0) summary.fps = frames / seconds;
  }
  return summary;
}

const dash = '–';
const fixed = (value, digits) => (value == null || Number.isNaN(value) ? dash : value.toFixed(digits));

function formatBitrate(kbps) {
  if (kbps == null) return dash;
  return kbps >= 1000 ? `${(kbps / 1000).toFixed(2)} Mb/s` : `${kbps.toFixed(0)} kb/s`;
}

/**
 * [label, value] rows for the overlay. stream: the gateway's status on the "stream" channel
 * (streams.js parseStatus), whose rows follow: the stream in use and the path estimate.
 */
export function formatStats(s, stream = null) {
  if (!s) return [['video', 'not streaming']];
  return [
    ...formatVideoRows(s),
    ...formatStreamRows(stream),
  ];
}

function formatVideoRows(s) {
  return [
    ['res', s.width ? `${s.width}×${s.height}` : dash],
    ['fps', fixed(s.fps, 1)],
    ['rate', formatBitrate(s.bitrateKbps)],
    ['rtt', s.rttMs == null ? dash : `${s.rttMs.toFixed(s.rttMs < 10 ? 1 : 0)} ms`],
    ['lost', `${s.packetsLost}`],
    ['freeze', s.freezeCount == null ? dash : `${s.freezeCount}`],
    ['codec', s.codec || dash],
    ['decoder', s.decoder || dash],
  ];
}

/**
 * Rows for the stream in use (with "auto" when camgate chooses) and the gateway's estimate
 * of the path to this browser: what it carries, loss, RTT, and whether the main stream fits.
 */
export function formatStreamRows(status) {
  if (!status) return [];
  const pin = status.pin === 'auto' ? ' (auto)' : status.pin ? ' (pinned)' : '';
  const rows = [['stream', `${status.current}${pin}`]];
  const e = status.estimate;
  if (!e) return [...rows, ['path', 'measuring…']];
  const loss = e.loss == null ? dash : `${(e.loss * 100).toFixed(e.loss < 0.1 ? 1 : 0)} %`;
  const rtt = e.rttMs == null ? dash : `${e.rttMs.toFixed(e.rttMs < 10 ? 1 : 0)} ms`;
  rows.push(['path', `${formatBitrate(e.bitrateKbps)} · ${loss} lost · ${rtt}`]);
  if (status.streams.includes('sub')) {
    const allowed = e.mainAllowed == null ? dash : e.mainAllowed ? 'allowed' : 'not allowed';
    rows.push(['main', e.mainKbps == null ? allowed : `${allowed} (${formatBitrate(e.mainKbps)})`]);
  }
  return rows;
}

// Capped exponential backoff with jitter, shared by the WHEP players and the API poller.
//
//   const backoff = new Backoff();        // 1 s, 2 s, 4 s ... 30 s, each +-20 %
//   setTimeout(retry, backoff.next());
//   backoff.reset();                      // after a success

export class Backoff {
  constructor({ minMs = 1000, maxMs = 30000, factor = 2, jitter = 0.2, random = Math.random } = {}) {
    Object.assign(this, { minMs, maxMs, factor, jitter, random });
    this.attempt = 0;
  }

  /** Delay before the next attempt, in ms; each call grows the base delay up to maxMs. */
  next() {
    const base = Math.min(this.maxMs, this.minMs * this.factor ** this.attempt);
    this.attempt += 1;
    const spread = base * this.jitter * (this.random() * 2 - 1);
    return Math.round(Math.min(this.maxMs, Math.max(this.minMs, base + spread)));
  }

  reset() {
    this.attempt = 0;
  }
}

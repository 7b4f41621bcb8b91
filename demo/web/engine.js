// edgefm demo engine: everything between raw accelerometer samples and the model, with no DOM.
// Live mode (DeviceMotion) and replay mode (a JSON trace) both push samples through
// `Engine.push(t_s, ax_g, ay_g, az_g)`, so the two modes run exactly the same code.
//
// Units: time in seconds, acceleration in g (DeviceMotion gives m/s^2; the caller divides by
// STANDARD_GRAVITY). Sample counts are `window`, `hop`; durations end in `_s`.

export const STANDARD_GRAVITY = 9.80665; // m/s^2 per g

// Linear-interpolation resampler from an irregular sensor clock to the model rate fs_hz.
// A phone's DeviceMotion rate (~60 Hz, jittery) is reduced to 32 Hz; a short moving average
// over the input period acts as the anti-alias filter before interpolation (`smooth_n` input
// samples; 1 = none, used by replay when the trace is already at the model rate).
export class Resampler {
  constructor(fs_hz, smooth_n = 1) {
    if (!(fs_hz > 0)) throw new Error(`Resampler: fs_hz must be > 0, got ${fs_hz}`);
    this.fs_hz = fs_hz;
    this.k = 0;            // index of the next output sample (time k / fs_hz from t0)
    this.t0 = null;        // time of the first input sample
    this.prev = null;      // [t, x, y, z] of the previous (smoothed) input sample
    this.smooth_n = Math.max(1, smooth_n | 0);
    this.hist = [];
  }
  // push one input sample; returns the model-rate samples it completes: [[x, y, z], ...]
  push(t, x, y, z) {
    if (this.smooth_n > 1) {
      this.hist.push([x, y, z]);
      if (this.hist.length > this.smooth_n) this.hist.shift();
      const n = this.hist.length;
      x = 0; y = 0; z = 0;
      for (const h of this.hist) { x += h[0]; y += h[1]; z += h[2]; }
      x /= n; y /= n; z /= n;
    }
    const out = [];
    if (this.t0 === null) { this.t0 = t; this.prev = [t, x, y, z]; out.push([x, y, z]); this.k = 1; return out; }
    const [tp, xp, yp, zp] = this.prev;
    if (!(t > tp)) return out;      // out-of-order or duplicate timestamp: drop it
    for (;;) {
      const tk = this.t0 + this.k / this.fs_hz;
      if (tk > t) break;
      const f = (tk - tp) / (t - tp);
      out.push([xp + (x - xp) * f, yp + (y - yp) * f, zp + (z - zp) * f]);
      this.k += 1;
    }
    this.prev = [t, x, y, z];
    return out;
  }
}

// Motion gate after LIFT-PD, exactly runtime/gate.py ("acc-magnitude-std/v1"), configured
// from the manifest's GateConfig.to_dict(). Per sample: m = |a| (g); s1 += m, s2 += m^2.
// Per block of B = block_s * fs_hz samples (aligned at sample 0): f = std of m over the block
// (-inf if any sample was not finite), then the hysteresis state machine
//   low = f < off_threshold ? low + 1 : 0                 (consecutive quiet blocks)
//   off -> on  when f >= on_threshold, or (wake > 0 and b - since >= wake)
//   on -> off  when low >= hold and b - since >= min_on              (counts in blocks)
// A model window is inferred iff the gate was on in any block of the window's last hop.
export const GATE_KIND = "acc-magnitude-std/v1";
export class MotionGate {
  constructor(cfg, fs_hz, window, hop) {
    const need = ["on_threshold", "off_threshold", "min_on_s", "off_hold_s", "wake_every_s", "block_s", "fs_hz"];
    for (const k of need) if (!(k in cfg)) throw new Error(`gate config: missing field '${k}'`);
    // an unknown field means the runtime's gate changed: refuse rather than decide differently
    for (const k of Object.keys(cfg)) if (k !== "kind" && !need.includes(k)) throw new Error(`gate config: unknown field '${k}'`);
    if ((cfg.kind || GATE_KIND) !== GATE_KIND) throw new Error(`gate config: unknown kind '${cfg.kind}'`);
    if (Math.abs(cfg.fs_hz - fs_hz) > 1e-9) throw new Error(`gate runs at ${cfg.fs_hz} Hz, model at ${fs_hz} Hz`);
    this.cfg = cfg;
    this.B = Math.round(cfg.block_s * fs_hz);
    this.min_on = Math.round(cfg.min_on_s / cfg.block_s);
    this.wake = Math.round(cfg.wake_every_s / cfg.block_s);
    this.hold = Math.round(cfg.off_hold_s / cfg.block_s);
    this.low = 0;
    if (window % this.B || hop % this.B) throw new Error(`window ${window} / hop ${hop} are not whole gate blocks of ${this.B}`);
    this.hb = hop / this.B;               // blocks per hop
    this.recent = [];                     // states of the last hb blocks
    this.s1 = 0; this.s2 = 0; this.k = 0; this.ok = true;
    this.on = false; this.since = 0; this.b = 0;
    this.stat = 0;                        // last block's feature (g), for display
  }
  // one sample in g (NaN = missing)
  push(x, y, z) {
    const m = Math.sqrt(x * x + y * y + z * z);
    if (!Number.isFinite(m)) this.ok = false; else { this.s1 += m; this.s2 += m * m; }
    this.k += 1;
    if (this.k < this.B) return;
    const B = this.B;
    const f = this.ok ? Math.sqrt(Math.max(this.s2 / B - (this.s1 / B) * (this.s1 / B), 0)) : -Infinity;
    this.s1 = 0; this.s2 = 0; this.k = 0; this.ok = true;
    const c = this.cfg;
    this.low = f < c.off_threshold ? this.low + 1 : 0;
    if (!this.on) {
      if (f >= c.on_threshold || (this.wake > 0 && this.b - this.since >= this.wake)) { this.on = true; this.since = this.b; }
    } else if (this.low >= this.hold && this.b - this.since >= this.min_on) { this.on = false; this.since = this.b; }
    this.b += 1;
    this.stat = f;
    this.recent.push(this.on);
    if (this.recent.length > this.hb) this.recent.shift();
  }
  // called when a model window ends (after its last sample was pushed): run the network?
  decide() { return this.recent.some((v) => v); }
}

// Ring of the last `window` samples at the model rate; emits a window every `hop` samples.
export class Windower {
  constructor(channels, window, hop) {
    this.C = channels; this.window = window; this.hop = hop;
    this.buf = Array.from({ length: channels }, () => new Float32Array(window));
    this.n = 0;              // samples seen in total
  }
  // push one sample [c0, c1, c2]; returns true when a window ends at this sample
  push(v) {
    const i = this.n % this.window;
    for (let c = 0; c < this.C; c++) this.buf[c][i] = v[c];
    this.n += 1;
    return this.n >= this.window && (this.n - this.window) % this.hop === 0;
  }
  // the current window, normalised, as a (1, C, window) row-major Float32Array
  normalised(mean, std) {
    const out = new Float32Array(this.C * this.window);
    const start = this.n % this.window;          // oldest sample in the ring
    for (let c = 0; c < this.C; c++)
      for (let t = 0; t < this.window; t++)
        out[c * this.window + t] = (this.buf[c][(start + t) % this.window] - mean[c]) / std[c];
    return out;
  }
}

// Battery projection for the chosen device profile: average power = unavoidable floor
// (accelerometer + MCU sleep) + the gate's per-sample cost + energy per inference times the
// observed inference rate (+ PPG front end when the policy keeps it on).
export function batteryDays(dev, inferences_per_s, fs_hz, ppg_on = false) {
  const p = dev.floor_w + dev.gate_j_per_sample * fs_hz + dev.inference_j * inferences_per_s
    + (ppg_on ? dev.ppg_w : 0);
  return dev.battery_j / p / 86400;
}

// The whole path: samples -> resampler -> gate (every sample) -> windower -> model.
// `infer(Float32Array) -> Promise<number>` runs the network; results are kept per window.
export class Engine {
  constructor(manifest, gateCfg, infer, { smooth_n = 1 } = {}) {
    const spec = manifest.input_spec;
    this.spec = spec;
    this.fs_hz = spec.fs_hz;
    const ch = spec.channels;
    const acc = ["acc_x", "acc_y", "acc_z"];
    if (ch.length !== 3 || ch.some((c, i) => c !== acc[i]))
      throw new Error(`model input channels ${JSON.stringify(ch)} are not ${JSON.stringify(acc)}`);
    this.mean = spec.normalisation.mean; this.std = spec.normalisation.std;
    this.resampler = new Resampler(this.fs_hz, smooth_n);
    this.gate = new MotionGate(gateCfg, this.fs_hz, spec.window, spec.hop);
    this.win = new Windower(3, spec.window, spec.hop);
    this.infer = infer;
    this.windows = 0; this.skipped = 0; this.results = [];
    this.queue = Promise.resolve();
  }
  // push one sensor sample (t in s, acceleration in g); inference runs in order, queued
  push(t, x, y, z) {
    for (const v of this.resampler.push(t, x, y, z)) {
      this.gate.push(v[0], v[1], v[2]);
      if (!this.win.push(v)) continue;
      const index = this.windows++;
      const end_s = this.win.n / this.fs_hz;
      if (!this.gate.decide()) { this.skipped += 1; this.results.push({ index, end_s, ran: false }); continue; }
      const x_in = this.win.normalised(this.mean, this.std);
      const r = { index, end_s, ran: true, output: null, latency_ms: null };
      this.results.push(r);
      this.queue = this.queue.then(async () => {
        const t0 = performance.now();
        r.output = await this.infer(x_in);
        r.latency_ms = performance.now() - t0;
      });
    }
  }
  async flush() { await this.queue; }
}

// edgefm demo app: ONNX Runtime Web (wasm, served locally) runs the exported student on the
// phone's accelerometer (live) or on a recorded trace (replay), through engine.js.
import * as ort from "./ort/ort.wasm.min.mjs";
import { Engine, STANDARD_GRAVITY, batteryDays } from "./engine.js";

const $ = (id) => document.getElementById(id);
const state = { ready: false, done: false, error: null, results: [], mode: null };
window.__edgefm = state;   // read by the browser test

function fail(msg) {
  state.error = String(msg);
  $("status").textContent = `error: ${msg}`;
  $("status").className = "status error";
  console.error(msg);
}

async function getJSON(path) {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

let cfg = null;     // {manifest, gate, device, session}

async function init() {
  const app = await getJSON("app.json");          // written by `edgefm demo build`
  const manifest = await getJSON(app.model_manifest);
  const gate = await getJSON(app.gate);
  const device = await getJSON(app.device);
  ort.env.wasm.wasmPaths = new URL("./ort/", location.href).href;
  ort.env.wasm.numThreads = 1;          // no cross-origin isolation needed
  ort.env.wasm.proxy = false;
  const session = await ort.InferenceSession.create(app.model, { executionProviders: ["wasm"] });
  cfg = { app, manifest, gate, device, session };
  $("model").textContent = `${app.model.split("/").pop()} · ${manifest.input_spec.channels.join(",")} @ ` +
    `${manifest.input_spec.fs_hz} Hz · ${manifest.input_spec.window} samples, hop ${manifest.input_spec.hop}`;
  $("devname").textContent = device.name;
  state.ready = true;
  $("status").textContent = "ready";
}

async function runModel(x) {
  const { session, manifest } = cfg;
  const T = manifest.input_spec.window;
  const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", x, [1, 3, T]) };
  const out = await session.run(feeds);
  return out[session.outputNames[0]].data[0];
}

function median(a) {
  if (!a.length) return NaN;
  const s = [...a].sort((p, q) => p - q); const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function render(engine) {
  const ran = engine.results.filter((r) => r.ran && r.output !== null);
  const last = ran[ran.length - 1];
  const unit = (cfg.manifest.output_spec && cfg.manifest.output_spec.unit) || "";
  $("hr").textContent = last ? `${last.output.toFixed(1)}` : "–";
  $("hrunit").textContent = unit;
  $("gate").textContent = engine.gate.on ? "ON (moving)" : "OFF (still)";
  $("gate").className = engine.gate.on ? "v on" : "v off";
  $("gatestat").textContent = Number.isFinite(engine.gate.stat) ? `motion ${(engine.gate.stat * 1000).toFixed(1)} mg` : "no valid data";
  $("windows").textContent = `${engine.windows}`;
  $("skipped").textContent = engine.windows ? `${engine.skipped} (${(100 * engine.skipped / engine.windows).toFixed(0)}%)` : "0";
  const lat = ran.map((r) => r.latency_ms);
  $("latency").textContent = last ? `${last.latency_ms.toFixed(2)} ms (median ${median(lat).toFixed(2)})` : "–";
  const seconds = engine.win.n / engine.fs_hz;
  if (seconds > 0) {
    const rate = ran.length / seconds;
    $("battery").textContent = `${batteryDays(cfg.device, rate, engine.fs_hz).toFixed(1)} days`;
  }
  $("elapsed").textContent = `${seconds.toFixed(0)} s of data`;
}

function snapshot(engine) {
  state.results = engine.results.map((r) => ({ ...r }));
  state.windows = engine.windows; state.skipped = engine.skipped;
}

async function replay(url, speed) {
  const trace = await getJSON(url);
  const ch = trace.channels;
  const idx = ["acc_x", "acc_y", "acc_z"].map((c) => ch.indexOf(c));
  if (idx.some((i) => i < 0)) throw new Error(`${url}: trace needs channels acc_x, acc_y, acc_z, has ${ch}`);
  if (trace.unit && trace.unit !== "g") throw new Error(`${url}: trace unit must be g, is ${trace.unit}`);
  const engine = new Engine(cfg.manifest, cfg.gate, runModel);
  state.mode = "replay"; $("mode").textContent = `replay: ${url} (${speed === "max" ? "as fast as possible" : speed + "×"})`;
  const n = trace.data[idx[0]].length, fs = trace.fs_hz;
  const chunk = speed === "max" ? 256 : Math.max(1, Math.round(fs * Number(speed) / 10));
  for (let i = 0; i < n; i += chunk) {
    for (let j = i; j < Math.min(n, i + chunk); j++)
      engine.push(j / fs, trace.data[idx[0]][j], trace.data[idx[1]][j], trace.data[idx[2]][j]);
    await engine.flush();
    render(engine); snapshot(engine);
    await new Promise((r) => setTimeout(r, speed === "max" ? 0 : 100));
  }
  await engine.flush(); render(engine); snapshot(engine);
  state.done = true;
  $("status").textContent = `replay done: ${engine.windows} windows, ${engine.skipped} skipped`;
}

async function live() {
  if (!window.isSecureContext) throw new Error("the accelerometer needs HTTPS: run `edgefm demo serve DIR --https`");
  if (typeof DeviceMotionEvent === "undefined") throw new Error("this browser has no DeviceMotion sensor");
  if (typeof DeviceMotionEvent.requestPermission === "function") {    // iOS asks the user
    const p = await DeviceMotionEvent.requestPermission();
    if (p !== "granted") throw new Error("motion permission refused");
  }
  // phones deliver ~60 Hz: average 2 input samples before interpolating down to the model rate
  const engine = new Engine(cfg.manifest, cfg.gate, runModel, { smooth_n: 2 });
  state.mode = "live"; $("mode").textContent = "live: phone accelerometer";
  window.addEventListener("devicemotion", (e) => {
    const a = e.accelerationIncludingGravity;
    if (!a || a.x === null) return;
    engine.push(e.timeStamp / 1000, a.x / STANDARD_GRAVITY, a.y / STANDARD_GRAVITY, a.z / STANDARD_GRAVITY);
  });
  setInterval(() => { render(engine); snapshot(engine); }, 500);
  $("status").textContent = "live";
}

function params() { return new URLSearchParams(location.search); }

window.addEventListener("load", async () => {
  if ("serviceWorker" in navigator && params().get("sw") !== "0")
    navigator.serviceWorker.register("sw.js").catch((e) => console.warn("service worker:", e));
  try { await init(); } catch (e) { fail(e.message || e); return; }
  $("live").onclick = () => live().catch((e) => fail(e.message || e));
  $("replay").onclick = () => replay(cfg.app.trace, $("speed").value).catch((e) => fail(e.message || e));
  const p = params();
  if (p.get("mode") === "replay")
    replay(p.get("trace") || cfg.app.trace, p.get("speed") || "max").catch((e) => fail(e.message || e));
});

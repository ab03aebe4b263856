/**
 * The live view's two pages, plain HTML + JS (no framework, no build step): a canvas with the ROI
 * frame and the mask overlay, the nodule list, the alert history, small charts and the status;
 * and the calibrate page. `window.__live` exposes what the browser tests check.
 */
const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 0; background: #111; color: #ddd; }
header { padding: 8px 16px; background: #222; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 16px; margin: 0; color: #fff; }
main { display: grid; grid-template-columns: 520px 1fr; gap: 16px; padding: 16px; }
section { background: #1b1b1b; border-radius: 6px; padding: 8px 12px; margin-bottom: 12px; }
h2 { font-size: 13px; text-transform: uppercase; color: #999; margin: 4px 0 8px; }
table { border-collapse: collapse; width: 100%; }
td, th { padding: 2px 6px; text-align: right; }
th { color: #999; font-weight: normal; }
td:first-child, th:first-child { text-align: left; }
.ok { color: #6c6; } .bad { color: #e66; } .warn { color: #eb5; }
canvas.chart { width: 100%; height: 90px; background: #151515; }
a { color: #8bf; }
`;

/**
 * The token arrives once in ?token=, with a cookie that carries it from then on (src/live/server.ts); it is
 * taken out of the address bar and the history entry, where anyone at the bedside screen could read it.
 * This page's own requests still name it, for a browser that refuses the cookie.
 */
const TOKEN_SCRIPT = `
const token = new URLSearchParams(location.search).get('token');
if (location.search) history.replaceState(null, '', location.pathname);
const q = token ? '?token=' + encodeURIComponent(token) : '';
`;

const SCRIPT = `${TOKEN_SCRIPT}
const live = (window.__live = { frames: 0, lastMaskPixels: 0, nodules: [], samples: [], alerts: [], status: null });
const $ = (id) => document.getElementById(id);
// text from the box (a capture error quotes ffmpeg or a path) goes into markup escaped
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');
const view = $('view'); const ctx = view.getContext('2d');
const img = new Image();

function decodeRle(rle) { // COCO RLE, column-major, first run background
  const [h, w] = rle.size; const m = new Uint8Array(h * w); let i = 0, v = 0;
  for (const c of rle.counts) {
    if (v) for (let k = 0; k < c; k++) { const p = i + k; m[(p % h) * w + Math.floor(p / h)] = 1; }
    i += c; v ^= 1;
  }
  return { m, w, h };
}

function drawFrame(f) {
  img.onload = () => {
    const S = view.width / f.width;
    ctx.imageSmoothingEnabled = true; ctx.drawImage(img, 0, 0, view.width, view.height);
    const { m, w, h } = decodeRle(f.mask);
    const over = ctx.getImageData(0, 0, view.width, view.height); const d = over.data; let px = 0;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      if (!m[y * w + x]) continue; px++;
      const edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 ||
        !m[y * w + x - 1] || !m[y * w + x + 1] || !m[(y - 1) * w + x] || !m[(y + 1) * w + x];
      for (let dy = 0; dy < S; dy++) for (let dx = 0; dx < S; dx++) {
        const o = (((y * S + dy) * view.width) + x * S + dx) * 4;
        if (edge) { d[o] = 255; d[o + 1] = 220; d[o + 2] = 0; }
        else { d[o] = d[o] * 0.6 + 255 * 0.4; d[o + 1] *= 0.6; d[o + 2] *= 0.6; }
      }
    }
    ctx.putImageData(over, 0, 0);
    ctx.fillStyle = '#ffdc00'; ctx.font = '14px system-ui';
    for (const n of f.nodules) ctx.fillText('#' + n.id, n.bbox.x * S, Math.max(14, n.bbox.y * S - 4));
    if (!f.imaging) { // the imaging gate: no tissue in view, no alerts
      ctx.fillStyle = 'rgba(0,0,0,0.55)'; ctx.fillRect(0, view.height / 2 - 22, view.width, 44);
      ctx.fillStyle = '#f80'; ctx.font = 'bold 20px system-ui'; ctx.textAlign = 'center';
      const reason = (f.imagingReason || '?').replace('_', ' ');
      ctx.fillText('NO IMAGING (' + reason + ')', view.width / 2, view.height / 2 + 7);
      ctx.textAlign = 'start';
    }
    live.frames++; live.lastMaskPixels = px;
  };
  live.imaging = f.imaging;
  $('imaging').innerHTML = f.imaging
    ? '<span class="ok">yes</span>'
    : '<span class="warn">no: ' + esc(f.imagingReason) + '</span>';
  img.src = 'data:image/jpeg;base64,' + f.jpeg;
  live.nodules = f.nodules;
  $('nodules').innerHTML = f.nodules.length
    ? f.nodules.map((n) => '<tr class="nodule"><td>#' + n.id + '</td><td>' + n.areaPx +
        '</td><td>' + (n.areaMm2 === null ? '–' : n.areaMm2.toFixed(1)) +
        '</td><td>' + (100 * n.areaFraction).toFixed(1) + '%</td><td>' + n.meanProb.toFixed(2) +
        '</td><td>' + n.maxProb.toFixed(2) + '</td></tr>').join('')
    : '<tr><td colspan="6">no nodule in this frame</td></tr>';
  $('frameinfo').textContent = 'frame ' + f.seq + ', ' + f.latencyMs + ' ms capture → result';
}

function chart(id, series, colors, unit) {
  const c = $(id); const g = c.getContext('2d');
  const w = (c.width = c.clientWidth); const h = (c.height = c.clientHeight);
  g.clearRect(0, 0, w, h);
  const all = series.flatMap((s) => s.filter((v) => v !== null)); const max = Math.max(1, ...all) * 1.1;
  series.forEach((s, k) => {
    g.strokeStyle = colors[k]; g.beginPath(); let started = false;
    s.forEach((v, i) => {
      if (v === null) return;
      const x = (i / Math.max(1, s.length - 1)) * w; const y = h - (v / max) * h;
      started ? g.lineTo(x, y) : g.moveTo(x, y); started = true;
    });
    g.stroke();
  });
  g.fillStyle = '#888'; g.font = '11px system-ui'; g.fillText(max.toFixed(0) + ' ' + unit, 4, 12);
}

function drawCharts() {
  const s = live.samples;
  chart('fps', [s.map((x) => x.processedFps), s.map((x) => x.droppedFps)], ['#6c6', '#e66'], 'fps');
  const stage = (k) => s.map((x) => x.stagesMs[k]);
  chart('latency', [stage('preprocess'), stage('inference'), stage('postprocess')], ['#8bf', '#fb5', '#c8f'], 'ms p50');
  chart('temp', [s.map((x) => x.temperatureC)], ['#f86'], '°C');
  const last = s[s.length - 1];
  $('temptext').textContent = last && last.temperatureC !== null
    ? '(' + last.temperatureC.toFixed(1) + ' °C)'
    : '(no sensor on this machine)';
}

function showStatus(st) {
  live.status = st;
  const cap = st.daemon.capture; const model = st.daemon.model;
  $('model').textContent = model
    ? model.name + (model.version ? ' ' + model.version : ' (factory)') + ' on ' + model.provider
    : 'none';
  $('capture').innerHTML = cap
    ? '<span class="' + (cap.state === 'running' ? 'ok' : 'warn') + '">' + esc(cap.state) + '</span> ' +
      esc(cap.source) + (cap.lastError ? ' – ' + esc(cap.lastError) : '')
    : 'none';
  $('broker').innerHTML = st.mqttConnected
    ? '<span class="ok">connected</span>'
    : '<span class="bad">not connected</span>';
}

function showAlerts() {
  $('alerts').innerHTML = live.alerts.slice(-20).reverse().map((a) =>
    '<tr><td>' + new Date(a.time).toLocaleTimeString() +
    '</td><td>' + a.event.replace('nodule_', '') + (a.reason ? ' (' + a.reason.replace('_', ' ') + ')' : '') +
    '</td><td>#' + a.trackId + '</td><td>' + a.largestAreaPx + '</td><td>' + a.peakProb.toFixed(2) + '</td></tr>'
  ).join('') || '<tr><td colspan="5">none yet</td></tr>';
}

function connect() {
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws' + q);
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === 'frame') drawFrame(m);
    else if (m.type === 'hello') {
      live.samples = m.history; live.alerts = m.alerts;
      showStatus(m.status); showAlerts(); drawCharts();
    } else if (m.type === 'status') {
      live.samples.push(m.sample); if (live.samples.length > 300) live.samples.shift();
      showStatus(m.status); drawCharts();
    }
    else if (m.type === 'alert') { live.alerts.push(m.alert); showAlerts(); }
  };
  ws.onclose = () => { $('broker').textContent += ' (live view disconnected, retrying)'; setTimeout(connect, 1000); };
}
$('calib').href = '/calibrate';
connect();
`;

export function livePage(title: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title} – live</title><style>${STYLE}</style></head>
<body>
<header><h1>${title}</h1>
<span>model: <b id="model">…</b></span>
<span>capture: <b id="capture">…</b></span>
<span>broker: <b id="broker">…</b></span>
<span>imaging: <b id="imaging">…</b></span>
<a id="calib" href="/calibrate">calibrate view</a></header>
<main>
  <div>
    <canvas id="view" width="512" height="512"></canvas>
    <div id="frameinfo"></div>
  </div>
  <div>
    <section><h2>Nodules</h2><table>
      <thead><tr><th>id</th><th>px</th><th>mm²</th><th>ROI</th><th>mean p</th><th>max p</th></tr></thead>
      <tbody id="nodules"></tbody></table></section>
    <section><h2>Alerts</h2><table>
      <thead><tr><th>time</th><th>event</th><th>track</th><th>px</th><th>peak p</th></tr></thead>
      <tbody id="alerts"></tbody></table></section>
    <section><h2>Frames per second (processed, dropped)</h2><canvas class="chart" id="fps"></canvas></section>
    <section><h2>Latency p50 (preprocess, inference, post-process)</h2>
      <canvas class="chart" id="latency"></canvas></section>
    <section><h2>CPU temperature <span id="temptext"></span></h2><canvas class="chart" id="temp"></canvas></section>
  </div>
</main>
<script>${SCRIPT}</script>
</body></html>`;
}

export function calibratePage(title: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title} – calibrate</title>
<style>${STYLE} img { max-width: 100%; border: 1px solid #333; }</style></head>
<body>
<header><h1>${title}: calibrate</h1><a id="back" href="/">live view</a></header>
<main style="grid-template-columns: 1fr 320px">
  <div><img id="frame" alt="full capture frame"></div>
  <section><h2>Region of interest</h2>
    <p><span style="color:#ffc800">■</span> configured: <code id="configured">…</code></p>
    <p><span style="color:#00c8ff">■</span> found on this frame: <code id="suggested">…</code></p>
    <p>Everything outside the configured rectangle (the header with patient data) is cropped before any processing.
    If the rectangles differ, paste the suggestion into <code>capture.roi</code>.</p>
    <p>Outside the rectangles the screen is shown pixelated, so that patient details do not cross the network;
    <code>thyroid-edge calibrate --out</code> on the box writes the full screen.</p>
  </section>
</main>
<script>${TOKEN_SCRIPT}
document.getElementById('back').href = '/';
fetch('/api/calibrate.json' + q).then((r) => r.json()).then((c) => {
  const f = (r) => r ? '{ x: ' + r.x + ', y: ' + r.y + ', width: ' + r.width + ', height: ' + r.height + ' }' : 'none';
  document.getElementById('configured').textContent = f(c.configured);
  document.getElementById('suggested').textContent = f(c.suggested);
  document.getElementById('frame').src = 'data:image/png;base64,' + c.png;
  window.__calibrate = c;
});
</script>
</body></html>`;
}

// tuyaflash serve: a thin page over the JSON + server-sent-events API
// (docs/api.md). Everything it shows comes from the API; everything it
// does is a request to it.
'use strict';

const S = {
  info: null, ports: [], portsError: '', jobs: new Map(), devices: null,
  // secrets shown on request, per device key; templates loaded, per key
  revealed: new Map(), templates: new Map(),
  // requests with a Wi-Fi password, kept in this page only ("Run again")
  secretReq: new Map(),
  layouts: new Map(), modules: new Map(),
  // virtual devices added on this page, made by their first job
  addedSims: [],
};

// ---- helpers

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'style') e.style.cssText = v; // the CSP allows no style attributes
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k instanceof Node ? k : String(k));
  return e;
}

function svg(tag, attrs, ...kids) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
}

async function api(method, path, body) {
  const r = await fetch(path, {
    method, headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  let j = null;
  try { j = await r.json(); } catch (e) { /* not JSON */ }
  if (!r.ok) throw (j && j.error) || { message: r.status + ' ' + r.statusText };
  return j;
}

function size(n) {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return n / (1 << 20) + ' MiB';
  if (n >= 1024) return Math.round(n / 1024) + ' KiB';
  return n + ' bytes';
}
function rate(bps) { return (bps / 1000).toFixed(1) + ' kB/s'; }
function secs(s) {
  if (s < 60) return (s < 10 ? s.toFixed(1) : Math.round(s)) + ' s';
  return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
}
function date(t) { return t ? new Date(t).toLocaleString() : ''; }
function base(p) { return p.split(/[\\/]/).pop(); }
function show(e, on) { e.hidden = !on; }

function errorText(e) {
  return (e.message || String(e)) + (e.hint ? ' — what to do: ' + e.hint : '');
}

// ---- views

function route() {
  const view = (location.hash || '#adapters').slice(1);
  for (const s of document.querySelectorAll('.view')) show(s, s.id === view);
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.view === view);
}
window.addEventListener('hashchange', route);

// ---- jobs

const jobCards = new Map(); // job id -> Set of its cards (Jobs page, adapter)
const listCards = new Map(); // job id -> its card on the Jobs page

function jobCard(j) {
  const c = document.getElementById('tpl-job').content.firstElementChild.cloneNode(true);
  c.dataset.job = j.id;
  c.querySelector('.stop').addEventListener('click', () => api('POST', '/api/jobs/' + j.id + '/stop').catch(e => alertOn(c, e)));
  c.querySelector('.again').addEventListener('click', () => {
    const job = S.jobs.get(j.id);
    startJob(S.secretReq.get(j.id) || job.request, c);
  });
  if (!jobCards.has(j.id)) jobCards.set(j.id, new Set());
  jobCards.get(j.id).add(c);
  return c;
}

function dropCard(c) {
  const set = jobCards.get(c.dataset.job);
  if (set) set.delete(c);
  c.remove();
}

function alertOn(card, e) {
  const f = card.querySelector('.failure') || card.querySelector('.form-error');
  const p = f.querySelector('.emsg') || f;
  p.textContent = errorText(e);
  show(f, true);
}

const stepSymbol = { done: '✓', reused: '✓', note: 'ℹ', failed: '✗', running: '…', skipped: '–', planned: '○' };

function fillJob(c, j) {
  const kind = j.request.kind;
  c.dataset.state = j.state;
  c.querySelector('.title').textContent = '#' + j.id + ' ' + kind;
  c.querySelector('.port-label').textContent = j.request.port;
  const st = c.querySelector('.state');
  st.textContent = j.state === 'stopped' && j.resumable ? 'stopped · resumable' : j.state;
  st.className = 'badge state ' + j.state;
  c.querySelector('.elapsed').textContent = secs(j.elapsed_s);
  const running = j.state === 'running' || j.state === 'stopping';
  show(c.querySelector('.stop'), running);
  c.querySelector('.stop').disabled = j.state === 'stopping';
  show(c.querySelector('.again'), !running);
  c.querySelector('.again').textContent = j.resumable ? 'Run again to resume' : 'Run again';

  const prompt = c.querySelector('.prompt');
  prompt.textContent = j.prompt || '';
  show(prompt, !!j.prompt);

  const steps = c.querySelector('.steps');
  show(steps, kind === 'migrate');
  if (kind === 'migrate') {
    const done = new Map((j.steps || []).map(s => [s.step, s]));
    steps.replaceChildren(...(S.info ? S.info.steps : []).map(name => {
      const s = done.get(name);
      const status = s ? s.status : 'waiting';
      return el('li', { class: 'step ' + status, title: s && s.message ? s.message : name },
        (stepSymbol[status] || '') + ' ' + name);
    }));
  }

  const pr = c.querySelector('.progress');
  show(pr, !!j.progress);
  if (j.progress) {
    const p = j.progress;
    const pct = p.total > 0 ? Math.min(100, 100 * p.done / p.total) : 0;
    const fill = pr.querySelector('.fill');
    fill.style.width = pct.toFixed(1) + '%';
    pr.dataset.done = p.done;
    pr.dataset.total = p.total;
    let t = p.op + ' at ' + p.addr + ': ' + size(p.done) + ' of ' + size(p.total) + ' (' + Math.floor(pct) + ' %)';
    if (p.rate > 0) t += ' · ' + rate(p.rate);
    if (p.eta_s !== undefined && running) t += ' · ' + secs(p.eta_s) + ' left';
    if (p.step) t = p.step + ': ' + t;
    pr.querySelector('.ptext').textContent = t;
  }

  const f = c.querySelector('.failure');
  show(f, !!j.error);
  if (j.error) {
    f.querySelector('.emsg').textContent = j.error.message;
    f.querySelector('.ehint').textContent = j.error.hint ? 'What to do: ' + j.error.hint : '';
    f.classList.toggle('stopped', j.state === 'stopped');
  }
  c.querySelector('.summary').replaceChildren(...summary(j));

  const log = c.querySelector('.log');
  show(log, j.log.length > 0);
  log.querySelector('summary').textContent = 'Messages (' + j.log.length + ')';
  log.querySelector('pre').textContent = j.log.map(l => (l.kind === 'action' ? '>>> ' : l.kind === 'warning' ? 'warning: ' : '') + l.message).join('\n');
}

// chipOf is the chip a job's result reports.
function chipOf(j) {
  const r = j.result;
  if (!r) return null;
  if (r.chip) return r.chip.family;
  if (r.ports && r.ports[0] && r.ports[0].chip) return r.ports[0].chip;
  return null;
}

// moduleOf is the module the inventory's Tuya config names for the
// device a job found (by its MAC).
function moduleOf(j) {
  const r = j.result || {};
  const mac = (r.chip && r.chip.mac) || (r.ports && r.ports[0] && r.ports[0].mac);
  const d = S.devices ? [...S.devices.devices, ...S.devices.virtual_devices].find(x => mac && x.mac === mac && x.tuya) : null;
  return d ? d.tuya.module : null;
}

function summary(j) {
  const r = j.result;
  if (!r || !r.ok) return [];
  switch (j.request.kind) {
  case 'detect': {
    const c = r.chip;
    return [el('p', {}, c.family + ' · ' + c.protocol + ' · flash ' + (c.flash_id || '?') + (c.flash_name ? ' ' + c.flash_name : '') +
      ' (' + size(c.flash_size) + ')' + (c.mac ? ' · MAC ' + c.mac : '') + (c.virtual ? ' · virtual device' : ''))];
  }
  case 'backup':
    return [el('p', {}, 'Backup saved: ' + r.path + ' (' + size(r.sidecar.size) + ', sha256 ' + r.sidecar.sha256.slice(0, 12) + '…)' +
      (r.resumed_bytes ? ', resumed after ' + size(r.resumed_bytes) : ''))];
  case 'restore':
    return [el('p', {}, 'Restored and verified: ' + (r.results || []).map(x => size(x.size) + ' at ' + x.addr).join(', ') + '. ' + (r.reboot || ''))];
  case 'migrate': {
    const p = r.ports && r.ports[0];
    if (!p) return [];
    return [el('p', {}, p.result + (p.firmware ? ' · ' + p.firmware : '') + ' · ',
      p.host ? el('a', { href: 'http://' + p.host + '/', target: '_blank', rel: 'noopener noreferrer' }, p.host) : 'no address')];
  }
  }
  return [];
}

function updateJob(j) {
  if (!listCards.has(j.id)) {
    const c = jobCard(j);
    listCards.set(j.id, c);
    document.getElementById('job-list').prepend(c);
  }
  for (const c of jobCards.get(j.id)) fillJob(c, j);
  updatePortJob(j.request.port);
  const running = [...S.jobs.values()].filter(x => x.state === 'running' || x.state === 'stopping');
  document.getElementById('running').textContent = running.length ? running.length : '';
  // The tab says it too: how many jobs run, and when one waits for you.
  const waiting = running.some(x => x.prompt);
  document.title = (waiting ? '⚡ ' : '') + (running.length ? '(' + running.length + ') ' : '') + 'tuyaflash';
  show(document.getElementById('no-jobs'), S.jobs.size === 0);
}

function renderJobs() {
  for (const c of listCards.values()) dropCard(c);
  listCards.clear();
  const ids = [...S.jobs.keys()].sort((a, b) => a - b);
  for (const id of ids) updateJob(S.jobs.get(id));
  show(document.getElementById('no-jobs'), S.jobs.size === 0);
}

async function startJob(req, card) {
  const err = card.querySelector('.form-error');
  if (err) show(err, false);
  try {
    const j = await api('POST', '/api/jobs', req);
    if (req.wifi_password) S.secretReq.set(j.id, req);
    S.jobs.set(j.id, j);
    updateJob(j);
    return j;
  } catch (e) {
    alertOn(card, e);
  }
}

// ---- adapters

const portCards = new Map(); // port name -> card

function portCard(p) {
  const c = document.getElementById('tpl-port').content.firstElementChild.cloneNode(true);
  c.dataset.port = p.name;
  const mf = c.querySelector('.migrate-form');
  const rf = c.querySelector('.restore-form');
  const wiring = c.querySelector('.wiring');
  const until = mf.querySelector('[name=until]');
  until.append(el('option', { value: '' }, 'the end (record)'), ...(S.info ? S.info.steps : []).slice(0, -1).map(s => el('option', { value: s }, s)));
  c.querySelector('.actions').addEventListener('click', ev => {
    const act = ev.target.dataset && ev.target.dataset.act;
    if (!act) return;
    if (act === 'detect' || act === 'backup') startJob({ kind: act, port: p.name }, c);
    if (act === 'migrate') { show(mf, mf.hidden); show(rf, false); }
    if (act === 'restore') { fillBackups(rf.querySelector('select')); show(rf, rf.hidden); show(mf, false); }
    if (act === 'wiring') { show(wiring, wiring.hidden); if (!wiring.hidden) drawWiring(wiring, c.dataset.chip, c.dataset.module); }
    if (act === 'forget') forgetSim(c, p.name, ev.target);
  });
  mf.addEventListener('submit', async ev => {
    ev.preventDefault();
    const req = { kind: 'migrate', port: p.name };
    for (const k of ['firmware', 'ssid', 'wifi_password', 'host', 'until']) {
      const v = mf.elements[k].value.trim();
      if (v) req[k] = v;
    }
    if (await startJob(req, c)) show(mf, false);
  });
  rf.addEventListener('submit', async ev => {
    ev.preventDefault();
    const req = { kind: 'restore', port: p.name, backup: rf.elements.backup.value };
    if (rf.elements.force.checked) req.force = true;
    if (rf.elements.yes.checked) req.yes = true;
    if (await startJob(req, c)) show(rf, false);
  });
  portCards.set(p.name, c);
  return c;
}

function fillPort(c, p) {
  c.querySelector('.port-name').textContent = p.name;
  c.querySelector('.adapter').textContent = p.adapter || p.product || (p.virtual ? 'simulated chip' : p.given ? 'given with --port' : '');
  const b = [];
  if (p.virtual) b.push(el('span', { class: 'badge' }, 'virtual'));
  if (p.usb && p.vid) b.push(el('span', { class: 'badge quiet' }, p.vid + ':' + p.pid));
  c.querySelector('.badges').replaceChildren(...b);
  const info = c.querySelector('.sim-info');
  const forget = c.querySelector('[data-act=forget]');
  if (p.virtual) {
    info.textContent = p.sim
      ? 'MAC ' + p.sim.mac + (p.sim.station ? ' · station ' + p.sim.station : '') + ' · flash from ' + p.sim.origin + ' · made ' + date(p.sim.created)
      : 'Not made yet: its first job makes it.';
  }
  show(info, !!p.virtual);
  show(forget, !!p.sim);
  if (!p.sim) disarm(forget);
}

// forgetSim starts a virtual device over (POST /api/virtual/forget): the
// first click asks, the second deletes.
async function forgetSim(c, port, b) {
  if (!b.dataset.armed) {
    b.dataset.armed = '1';
    b.textContent = 'Delete its flash and identity';
    b.classList.replace('secondary', 'danger');
    return;
  }
  disarm(b);
  try {
    await api('POST', '/api/virtual/forget', { port });
    S.addedSims = S.addedSims.filter(n => n !== port);
    renderPorts();
  } catch (e) {
    alertOn(c, e);
  }
}

function disarm(b) {
  delete b.dataset.armed;
  b.textContent = 'Start over…';
  b.classList.replace('danger', 'secondary');
}

// The chips a virtual device can be: the ports sim:CHIP offered.
function simChips() {
  return S.ports.filter(p => p.virtual && /^sim:[a-z0-9]+$/.test(p.name)).map(p => p.name.slice(4));
}

function fillNewSim() {
  const sel = document.querySelector('#new-sim [name=chip]');
  const chips = simChips();
  if ([...sel.options].map(o => o.value).join() === chips.join()) return;
  const keep = sel.value;
  sel.replaceChildren(...chips.map(ch => el('option', { value: ch }, ch)));
  if (chips.includes(keep)) sel.value = keep;
  show(document.getElementById('new-sim'), chips.length > 0);
}

document.getElementById('new-sim').addEventListener('submit', ev => {
  ev.preventDefault();
  const f = ev.target;
  const name = f.elements.name.value.trim();
  const port = 'sim:' + f.elements.chip.value + (name ? '#' + name : '');
  if (!S.ports.some(p => p.name === port) && !S.addedSims.includes(port)) S.addedSims.push(port);
  f.elements.name.value = '';
  renderPorts();
  const c = portCards.get(port);
  if (c) c.scrollIntoView({ block: 'nearest' });
});

function fillBackups(sel) {
  const opts = [];
  const d = S.devices || { devices: [], virtual_devices: [] };
  for (const dev of [...d.devices, ...d.virtual_devices]) {
    for (const bk of dev.backups || []) {
      opts.push(el('option', { value: bk.path }, (dev.family || '') + ' ' + (dev.mac || dev.key) + ' · ' + base(bk.path) + ' · ' + date(bk.date)));
    }
  }
  if (!opts.length) opts.push(el('option', { value: '' }, 'no backup in the inventory yet'));
  sel.replaceChildren(...opts);
}

function latestJobOn(port) {
  let best = null;
  for (const j of S.jobs.values()) if (j.request.port === port && (!best || +j.id > +best.id)) best = j;
  return best;
}

function updatePortJob(port) {
  const c = portCards.get(port);
  if (!c) return;
  const j = latestJobOn(port);
  const slot = c.querySelector('.port-job');
  const chip = [...S.jobs.values()].filter(x => x.request.port === port && chipOf(x)).sort((a, b) => b.id - a.id)[0];
  if (chip) {
    c.dataset.chip = chipOf(chip);
    c.dataset.module = moduleOf(chip) || '';
    const w = c.querySelector('[data-act=wiring]');
    w.textContent = 'Wiring (' + c.dataset.chip + ')';
    show(w, true);
  }
  const running = j && (j.state === 'running' || j.state === 'stopping');
  for (const b of c.querySelectorAll('.actions button:not([data-act=wiring])')) b.disabled = running;
  if (!j) { slot.replaceChildren(); return; }
  let card = slot.firstElementChild;
  if (!card || card.dataset.job !== j.id) {
    if (card) dropCard(card);
    card = jobCard(j);
    slot.replaceChildren(card);
  }
  fillJob(card, j);
}

function renderPorts() {
  const real = document.getElementById('ports');
  const virt = document.getElementById('virtual-ports');
  const other = document.getElementById('other-ports');
  const main = [], rest = [], sims = [];
  const ports = [...S.ports];
  for (const name of S.addedSims) if (!ports.some(p => p.name === name)) ports.push({ name, virtual: true });
  for (const p of ports) {
    const c = portCards.get(p.name) || portCard(p);
    fillPort(c, p);
    (p.virtual ? sims : p.usb || p.given ? main : rest).push(c);
    updatePortJob(p.name);
  }
  const names = new Set(ports.map(p => p.name));
  for (const [name, c] of portCards) if (!names.has(name)) { c.remove(); portCards.delete(name); }
  real.replaceChildren(...(main.length ? main : [el('p', { class: 'empty' }, 'No USB-serial adapter plugged in.')]));
  virt.replaceChildren(...sims);
  other.querySelector('summary').textContent = rest.length + ' other serial port' + (rest.length === 1 ? '' : 's') + ' (no USB adapter)';
  other.querySelector('div').replaceChildren(...rest);
  show(other, rest.length > 0);
  fillNewSim();
  const pe = document.getElementById('ports-error');
  pe.textContent = S.portsError || '';
  show(pe, !!S.portsError);
}

// ---- wiring

const roleColor = { power: '#d62828', ground: '#333', rx: '#2a9d55', tx: '#1f6fd1', reset: '#e07b00', boot: '#8a3ffc' };

async function drawWiring(box, chip, preferred) {
  let ms = S.modules.get(chip);
  if (!ms) {
    ms = (await api('GET', '/api/modules?chip=' + encodeURIComponent(chip))).modules;
    S.modules.set(chip, ms);
  }
  if (!ms.length) { box.replaceChildren(el('p', {}, 'No module with a ' + chip + ' in the wiring table yet: find P10 (RX1), P11 (TX1) and CEN in its datasheet.')); return; }
  const fig = el('div', { class: 'module-figure' });
  const pick = name => {
    const m = ms.find(x => x.name === name) || ms[0];
    for (const b of picker.children) b.classList.toggle('active', b.dataset.module === m.name);
    fig.replaceChildren(moduleFigure(m));
  };
  const picker = el('div', { class: 'module-picker' }, ms.map(m =>
    el('button', { class: 'secondary small', 'data-module': m.name, onclick: () => pick(m.name) }, m.name)));
  box.replaceChildren(picker, fig);
  pick(ms.some(m => m.name === preferred) ? preferred : (ms.find(m => m.footprint) || ms[0]).name);
}

function padPositions(m) {
  const pos = new Map();
  if (m.footprint === 'row') {
    for (let i = 1; i <= m.pads; i++) pos.set(i, { x: 30 + (i - 1) * 24, y: 118, side: 'bottom' });
    return { pos, w: 60 + m.pads * 24, h: 170, body: { x: 20, y: 20, w: m.pads * 24 + 16, h: 112 } };
  }
  for (let i = 1; i <= 8; i++) pos.set(i, { x: 110, y: 56 + (i - 1) * 22, side: 'left' });
  for (let i = 9; i <= 16; i++) pos.set(i, { x: 250, y: 56 + (16 - i) * 22, side: 'right' });
  for (let i = 17; i <= m.pads; i++) pos.set(i, { x: 130 + (i - 17) * 20, y: 232, side: 'bottom' });
  return { pos, w: 380, h: 270, body: { x: 110, y: 14, w: 154, h: 230 } };
}

function moduleFigure(m) {
  const rows = m.wires.map(wi => el('tr', {},
    el('td', {}, el('span', { class: 'dot', style: 'background:' + (roleColor[wi.role] || '#888') })),
    el('td', {}, wi.signal), el('td', {}, wi.where), el('td', {}, '→ ' + wi.to)));
  const caption = el('figcaption', {}, el('b', {}, m.name + ' (' + m.chip + ')'), el('table', {}, rows),
    m.footprint ? null : el('p', { class: 'note' }, 'No drawing of this module\'s shape: the pads as its board definition names them ("pad" ones are test pads on the back).'),
    ...(m.notes || []).map(n => el('p', { class: 'note' }, n)));
  if (!m.footprint) return el('figure', { class: 'wiring-figure' }, caption);
  const { pos, w, h, body } = padPositions(m);
  const wired = new Map();
  for (const wi of m.wires) for (const p of wi.pads) if (/^\d+$/.test(p)) wired.set(+p, wi);
  const g = svg('svg', { viewBox: '0 0 ' + w + ' ' + h, class: 'module', role: 'img', 'aria-label': m.name + ' pads and wiring' });
  g.append(svg('rect', { x: body.x, y: body.y, width: body.w, height: body.h, rx: 4, class: 'body' }));
  g.append(svg('rect', { x: body.x + 6, y: body.y + 6, width: body.w - 12, height: 28, class: 'antenna' }));
  g.append(svg('text', { x: body.x + body.w / 2, y: body.y + 24, class: 'antenna-label' }, 'antenna'));
  g.append(svg('text', { x: body.x + body.w / 2, y: body.y + 70, class: 'module-name' }, m.name));
  for (const [n, p] of pos) {
    const wi = wired.get(n);
    const pad = svg('rect', { x: p.x - 7, y: p.y - 7, width: 14, height: 14, rx: 2, class: 'pad' + (wi ? ' wired' : '') });
    if (wi) pad.setAttribute('fill', roleColor[wi.role] || '#888');
    g.append(pad, svg('text', { x: p.x, y: p.y + 3, class: 'pad-num' + (wi ? ' on' : '') }, String(n)));
    if (!wi) continue;
    const label = wi.signal.replace(/ \(.*\)/, '');
    const t = { left: { x: p.x - 12, y: p.y + 4, a: 'end' }, right: { x: p.x + 12, y: p.y + 4, a: 'start' }, bottom: { x: p.x, y: p.y + 24, a: 'middle' } }[p.side];
    g.append(svg('text', { x: t.x, y: t.y, 'text-anchor': t.a, class: 'pad-label', fill: roleColor[wi.role] }, label));
  }
  return el('figure', { class: 'wiring-figure' }, g, caption);
}

// ---- devices

async function layoutOf(chip, flashSize) {
  const k = chip + '/' + flashSize;
  if (!S.layouts.has(k)) {
    S.layouts.set(k, api('GET', '/api/layout?chip=' + encodeURIComponent(chip) + '&flash_size=' + flashSize).catch(() => null));
  }
  return S.layouts.get(k);
}

function layoutBar(box, chip, flashSize) {
  layoutOf(chip, flashSize).then(l => {
    if (!l) return;
    const bar = el('div', { class: 'layout-bar', title: l.source });
    const legend = el('div', { class: 'layout-legend' });
    for (const r of l.regions) {
      bar.append(el('span', { class: 'seg ' + r.name, style: 'flex-grow:' + r.size, title: r.label + ' ' + r.start + '–' + r.end + ' (' + size(r.size) + ')' }));
      legend.append(el('span', { class: 'key' }, el('span', { class: 'swatch ' + r.name }), r.label + ' ' + r.start));
    }
    box.replaceChildren(bar, legend);
  });
}

function field(name, ...value) {
  return [el('dt', {}, name), el('dd', {}, ...value)];
}

function deviceCard(d) {
  const name = d.tuya && d.tuya.device_id ? d.tuya.device_id : d.mac || d.key;
  const fw = d.firmware ? d.firmware + (d.firmware_version ? ' ' + d.firmware_version : '') : 'stock (as far as tuyaflash knows)';
  const v = d.last_verify;
  const dl = el('dl', {},
    field('Chip', d.family + (d.flash_id ? ' · flash ' + d.flash_id + (d.flash_name ? ' ' + d.flash_name : '') : '') + (d.flash_size ? ' · ' + size(d.flash_size) : '')),
    field('MAC', (d.mac || 'unknown') + (d.mac_placeholder ? ' (placeholder: ' + d.mac_placeholder + ')' : '')),
    field('Firmware', fw),
    d.ip ? field('Address', el('a', { href: 'http://' + d.ip + '/', target: '_blank', rel: 'noopener noreferrer' }, d.ip + (d.hostname ? ' (' + d.hostname + ')' : ''))) : [],
    field('Last check', v ? el('span', { class: v.ok ? 'ok' : 'bad' }, (v.ok ? '✓ verified ' : '✗ ' + (v.problem || 'failed') + ' ') + (v.firmware || '') + ' ' + (v.version || '') + ', ' + date(v.date)) : 'never verified'),
    d.migration ? field('Migration', (d.migration.outcome || 'unfinished') + ' · ' + d.migration.steps.map(s => s.step + ' ' + s.status).join(', ')) : [],
    field('Seen', date(d.first_seen) + ' – ' + date(d.last_seen)));
  const card = el('article', { class: 'card device', 'data-key': d.key },
    el('div', { class: 'dev-head' }, el('b', {}, name), ' ', el('span', { class: 'badge' + (v && v.ok ? ' good' : '') }, v && v.ok ? 'verified' : d.firmware && d.firmware !== 'stock' ? 'flashed' : 'stock'),
      d.virtual ? el('span', { class: 'badge quiet' }, 'virtual') : null, el('span', { class: 'key' }, d.key)),
    dl);
  if (d.backups && d.backups.length) {
    const lay = el('div', { class: 'layout' });
    if (d.flash_size) layoutBar(lay, d.family, d.flash_size);
    card.append(el('h3', {}, 'Backups'), el('table', { class: 'backups' },
      el('tr', {}, el('th', {}, 'file'), el('th', {}, 'size'), el('th', {}, 'date'), el('th', {}, 'sha256')),
      d.backups.map(b => el('tr', {}, el('td', { title: b.path }, base(b.path)), el('td', {}, size(b.size)), el('td', {}, date(b.date)),
        el('td', { class: 'mono', title: b.sha256 }, b.sha256.slice(0, 16) + '…')))), lay);
  }
  if (d.tuya) card.append(tuyaBox(d));
  return card;
}

function tuyaBox(d) {
  const t = d.tuya;
  const secret = S.revealed.get(d.key);
  const keyCell = secret
    ? el('span', { class: 'mono secret-shown' }, secret.local_key === null ? 'none stored' : secret.local_key)
    : el('span', {}, el('span', { class: 'hidden-secret' }, 'hidden'), ' ',
      el('button', { class: 'secondary small reveal', onclick: () => reveal(d.key) }, 'Reveal local key (shows a secret)'));
  const box = el('div', { class: 'tuya' }, el('h3', {}, 'Tuya config'), el('dl', {},
    t.device_id ? field('Device id', el('span', { class: 'mono' }, t.device_id)) : [],
    field('Local key', keyCell),
    t.product_key ? field('Product key', t.product_key) : [],
    t.module ? field('Module', t.module) : [],
    t.stock_version ? field('Stock firmware', t.stock_version) : []));
  if (t.pin_map) {
    const tb = el('div', { class: 'templates' });
    const loaded = S.templates.get(d.key);
    if (loaded) fillTemplates(tb, d.key, loaded);
    else tb.append(el('button', { class: 'secondary small', onclick: () => loadTemplates(d.key, tb) }, 'Pin templates'));
    box.append(tb);
  }
  return box;
}

async function reveal(key) {
  try {
    S.revealed.set(key, await api('POST', '/api/devices/reveal', { key }));
  } catch (e) {
    S.revealed.set(key, { local_key: null, error: e });
  }
  renderDevices();
}

async function loadTemplates(key, box) {
  try {
    const r = await api('GET', '/api/devices/templates?key=' + encodeURIComponent(key));
    S.templates.set(key, r.templates);
    fillTemplates(box, key, r.templates);
  } catch (e) {
    box.replaceChildren(el('p', { class: 'error-text' }, errorText(e)));
  }
}

function fillTemplates(box, key, ts) {
  box.replaceChildren(el('h3', {}, 'Pin templates'), ...ts.map(t => {
    const pre = el('pre', {}, t.content);
    const copy = el('button', { class: 'secondary small', onclick: async () => {
      try { await navigator.clipboard.writeText(t.content); copy.textContent = 'Copied'; } catch (e) { copy.textContent = 'Select the text to copy'; }
    } }, 'Copy');
    return el('div', { class: 'template' }, el('div', {}, el('b', {}, t.kind), ' ', t.file, ' ', copy, ' ',
      el('a', { class: 'button secondary small', href: '/api/devices/template?key=' + encodeURIComponent(key) + '&kind=' + encodeURIComponent(t.kind), download: t.file }, 'Download')),
    t.warnings && t.warnings.length ? el('p', { class: 'note' }, t.warnings.length + ' Tuya settings have no equivalent here') : null, pre);
  }));
}

function renderDevices() {
  const d = S.devices;
  if (!d) return;
  const err = document.getElementById('devices-error');
  err.textContent = d.error || '';
  show(err, !!d.error);
  document.getElementById('device-list').replaceChildren(...d.devices.map(deviceCard));
  document.getElementById('virtual-device-list').replaceChildren(...d.virtual_devices.map(deviceCard));
  show(document.getElementById('virtual-devices-title'), d.virtual_devices.length > 0);
  show(document.getElementById('no-devices'), d.devices.length + d.virtual_devices.length === 0);
}

// ---- live updates

function setConn(live) {
  const c = document.getElementById('conn');
  c.textContent = live ? 'live' : 'reconnecting…';
  c.classList.toggle('live', live);
}

function connect() {
  const es = new EventSource('/api/events');
  const on = (name, f) => es.addEventListener(name, e => f(JSON.parse(e.data)));
  on('hello', info => {
    S.info = info;
    setConn(true);
    document.getElementById('version').textContent = info.version;
    document.getElementById('firmware-names').replaceChildren(...info.firmware.map(f => el('option', { value: f })));
  });
  on('ports', v => { S.ports = v.ports; S.portsError = v.error || ''; renderPorts(); });
  on('jobs', list => { S.jobs = new Map(list.map(j => [j.id, j])); renderJobs(); });
  on('job', j => { S.jobs.set(j.id, j); updateJob(j); });
  on('devices', v => { S.devices = v; renderDevices(); });
  es.onerror = () => setConn(false);
}

route();
connect();

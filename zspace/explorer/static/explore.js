// zspace explore: the page. Plain JavaScript, no libraries, nothing from the network
// but this server's /api/... (see docs/explore.md for the API).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const CELL = 8; // hit-test grid cell, px
  const HIT = 6; // hover radius, px
  const THUMBS = 400; // thumbnails kept as object URLs

  // What tests and the benchmark read: counts and timings.
  const stats = { decodesSent: 0, decodesDone: 0, decodeMs: [], drawMs: [], thumbsSent: 0,
    samples: 0, paths: 0, points: 0, nearestDone: 0, lastZ: null };
  const S = {
    info: null, dirs: null, map: null, view: null, hover: -1, dragging: null,
    a: null, b: null, nextSlot: "a", point: null, base: null,
    pcs: null, axisOff: null, axis: 0, scale: 1, sampleSeed: 0,
  };
  window.zspace = { stats, state: S };

  function status(text, isError = false) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", isError);
  }

  async function fetchOk(url) {
    const r = await fetch(url);
    if (!r.ok) throw new Error((await r.text()).trim() || `${url}: HTTP ${r.status}`);
    return r;
  }
  const getJSON = async (url) => (await fetchOk(url)).json();

  // At most one call in flight; arguments pushed meanwhile replace each other, so only
  // the newest runs next (a slider drag sends its latest position, not every step).
  class Latest {
    constructor(fn) { this.fn = fn; this.busy = false; this.pending = undefined; }
    push(arg) {
      this.pending = arg;
      if (!this.busy) this.pump();
    }
    async pump() {
      this.busy = true;
      while (this.pending !== undefined) {
        const arg = this.pending;
        this.pending = undefined;
        try { await this.fn(arg); } catch (e) { status(e.message, true); }
      }
      this.busy = false;
    }
    get idle() { return !this.busy && this.pending === undefined; }
  }

  const fmt = (v, digits = 3) => (Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(digits));

  function el(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
      else node[k] = v;
    }
    for (const c of children) node.append(c);
    return node;
  }

  // ------------------------------------------------------------------ colours

  const TAB = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"];
  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function hexRgb(hex) {
    const n = parseInt(hex.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }
  function categoryRgb(k) {
    if (k < TAB.length) return hexRgb(TAB[k]);
    const h = (k * 137.508) % 360; // golden angle: distinct hues for many classes
    const c = 0.55, x = c * (1 - Math.abs(((h / 60) % 2) - 1)), m = 0.25;
    const [r, g, b] = h < 60 ? [c, x, 0] : h < 120 ? [x, c, 0] : h < 180 ? [0, c, x]
      : h < 240 ? [0, x, c] : h < 300 ? [x, 0, c] : [c, 0, x];
    return [(r + m) * 255, (g + m) * 255, (b + m) * 255].map(Math.round);
  }
  function viridis(t) {
    const u = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1), i = Math.min(3, Math.floor(u));
    const f = u - i, a = VIRIDIS[i], b = VIRIDIS[i + 1];
    return a.map((v, j) => Math.round(v + f * (b[j] - v)));
  }
  const packRgb = ([r, g, b]) => ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0; // ImageData is RGBA bytes
  const cssRgb = ([r, g, b]) => `rgb(${r},${g},${b})`;

  // ------------------------------------------------------------------ the map

  const canvas = $("map");
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  let px = null, py = null, pixel = null, order = null, baseImage = null;
  let gridStart = null, gridItems = null;
  const gridCols = Math.ceil(W / CELL), gridRows = Math.ceil(H / CELL);

  function prepareMap(m) {
    const n = m.rows.length;
    px = new Float32Array(n); py = new Float32Array(n); pixel = new Uint32Array(n);
    // a fixed shuffled drawing order, so no class is always painted over the others
    order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    let seed = 12345;
    for (let i = n - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const j = seed % (i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    const c = m.colour;
    const legend = $("legend");
    legend.replaceChildren();
    if (c.kind === "category") {
      const used = new Set(c.values);
      for (let i = 0; i < n; i++) pixel[i] = packRgb(categoryRgb(c.values[i]));
      c.names.forEach((name, k) => {
        if (!used.has(k)) return;
        const sw = el("span", { class: "swatch" });
        sw.style.background = cssRgb(categoryRgb(k));
        legend.append(el("span", {}, [sw, name]));
      });
    } else if (c.kind === "continuous") {
      let lo = Infinity, hi = -Infinity;
      for (const v of c.values) { if (v < lo) lo = v; if (v > hi) hi = v; }
      const span = hi > lo ? hi - lo : 1;
      for (let i = 0; i < n; i++) pixel[i] = packRgb(viridis((c.values[i] - lo) / span));
      const bar = el("span", { class: "gradient" });
      bar.style.background = `linear-gradient(to right, ${VIRIDIS.map(cssRgb).join(",")})`;
      legend.append(el("span", {}, [`${c.by} ${fmt(lo)}`, bar, fmt(hi)]));
    } else {
      pixel.fill(packRgb([60, 90, 150]));
    }
  }

  function fitView() {
    const { x, y } = S.map;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < x.length; i++) {
      if (x[i] < x0) x0 = x[i]; if (x[i] > x1) x1 = x[i];
      if (y[i] < y0) y0 = y[i]; if (y[i] > y1) y1 = y[i];
    }
    const dx = Math.max(x1 - x0, 1e-9), dy = Math.max(y1 - y0, 1e-9);
    S.view = { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, scale: 0.94 * Math.min(W / dx, H / dy) };
  }

  const toScreen = (x, y) => [W / 2 + (x - S.view.cx) * S.view.scale,
    H / 2 - (y - S.view.cy) * S.view.scale];

  // Every point as a 2x2 block written straight into an ImageData (no per-point canvas
  // calls, no WebGL): 30,000 points take a few milliseconds. Then the hit-test grid.
  function drawPoints() {
    const t0 = performance.now();
    const { x, y } = S.map, n = x.length;
    const { cx, cy, scale } = S.view;
    const img = ctx.createImageData(W, H);
    const buf = new Uint32Array(img.data.buffer);
    buf.fill(0xffffffff);
    for (let i = 0; i < n; i++) {
      px[i] = W / 2 + (x[i] - cx) * scale;
      py[i] = H / 2 - (y[i] - cy) * scale;
    }
    for (let k = 0; k < n; k++) {
      const i = order[k];
      const sx = px[i] | 0, sy = py[i] | 0;
      if (sx < 0 || sy < 0 || sx >= W - 1 || sy >= H - 1) continue;
      const o = sy * W + sx, c = pixel[i];
      buf[o] = c; buf[o + 1] = c; buf[o + W] = c; buf[o + W + 1] = c;
    }
    baseImage = img;
    buildGrid();
    drawOverlay();
    const ms = performance.now() - t0;
    stats.drawMs.push(ms);
    $("map-note").textContent = `${n.toLocaleString()} points, drawn in ${ms.toFixed(1)} ms`;
  }

  function buildGrid() {
    const n = px.length, cells = gridCols * gridRows;
    const cellOf = new Int32Array(n);
    gridStart = new Int32Array(cells + 1);
    for (let i = 0; i < n; i++) {
      const gx = Math.floor(px[i] / CELL), gy = Math.floor(py[i] / CELL);
      const c = gx >= 0 && gy >= 0 && gx < gridCols && gy < gridRows ? gy * gridCols + gx : -1;
      cellOf[i] = c;
      if (c >= 0) gridStart[c + 1]++;
    }
    for (let c = 0; c < cells; c++) gridStart[c + 1] += gridStart[c];
    const fill = gridStart.slice(0, cells);
    gridItems = new Int32Array(gridStart[cells]);
    for (let i = 0; i < n; i++) if (cellOf[i] >= 0) gridItems[fill[cellOf[i]]++] = i;
  }

  function pointAt(mx, my) {
    let best = -1, bestD = HIT * HIT;
    const gx = Math.floor(mx / CELL), gy = Math.floor(my / CELL);
    for (let yy = gy - 1; yy <= gy + 1; yy++) {
      for (let xx = gx - 1; xx <= gx + 1; xx++) {
        if (xx < 0 || yy < 0 || xx >= gridCols || yy >= gridRows) continue;
        const c = yy * gridCols + xx;
        for (let k = gridStart[c]; k < gridStart[c + 1]; k++) {
          const i = gridItems[k], dx = px[i] + 1 - mx, dy = py[i] + 1 - my, d = dx * dx + dy * dy;
          if (d < bestD) { bestD = d; best = i; }
        }
      }
    }
    return best;
  }

  function ring(x, y, r, colour, width = 2) {
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.lineWidth = width + 2; ctx.strokeStyle = "#fff"; ctx.stroke();
    ctx.lineWidth = width; ctx.strokeStyle = colour; ctx.stroke();
  }

  function label(x, y, text) {
    ctx.font = "bold 12px system-ui, sans-serif";
    ctx.lineWidth = 3; ctx.strokeStyle = "#fff"; ctx.strokeText(text, x + 8, y - 8);
    ctx.fillStyle = "#111"; ctx.fillText(text, x + 8, y - 8);
  }

  // The latent point's place on a PCA map (its projection on the map's two components).
  function latentOnMap() {
    const m = S.map, z = stats.lastZ;
    if (!z || !m.pair) return null;
    const comps = m.pair.map((k) => S.dirs.pca[k - 1]);
    if (comps.some((c) => !c)) return null;
    const mean = S.dirs.mean;
    const xy = comps.map((c) => c.vector.reduce((s, v, j) => s + v * (z[j] - mean[j]), 0));
    return toScreen(xy[0], xy[1]);
  }

  function drawOverlay() {
    if (!baseImage) return;
    ctx.putImageData(baseImage, 0, 0);
    const rowIdx = S.map.rowIndex;
    for (const [slot, colour] of [["a", "#d62728"], ["b", "#1f6feb"]]) {
      const i = S[slot] === null ? undefined : rowIdx.get(S[slot]);
      if (i !== undefined) { ring(px[i] + 1, py[i] + 1, 7, colour); label(px[i], py[i], slot.toUpperCase()); }
    }
    const lp = latentOnMap();
    if (lp) ring(lp[0], lp[1], 5, "#111", 1.5);
    if (S.hover >= 0) ring(px[S.hover] + 1, py[S.hover] + 1, 5, "#111", 1);
  }

  // ------------------------------------------------------------------ hover: thumbnails

  const thumbs = new Map(); // row -> object URL
  async function thumbURL(row) {
    let url = thumbs.get(row);
    if (url) return url;
    stats.thumbsSent++;
    const blob = await (await fetchOk(`/api/thumb?i=${row}`)).blob();
    url = URL.createObjectURL(blob);
    thumbs.set(row, url);
    if (thumbs.size > THUMBS) {
      const [oldRow, oldUrl] = thumbs.entries().next().value;
      URL.revokeObjectURL(oldUrl);
      thumbs.delete(oldRow);
    }
    return url;
  }
  const thumbLoader = new Latest(async (row) => {
    const url = await thumbURL(row);
    if (S.hover >= 0 && S.map.rows[S.hover] === row) $("tooltip-img").src = url;
  });

  function describe(row) {
    const c = S.map.colour, i = S.map.rowIndex.get(row);
    let text = `#${row}`;
    if (i !== undefined && c.kind === "category") text += ` · ${c.names[c.values[i]]}`;
    if (i !== undefined && c.kind === "continuous") text += ` · ${c.by} ${fmt(c.values[i])}`;
    return text;
  }

  function showHover(i, mx, my) {
    S.hover = i;
    drawOverlay();
    const tip = $("tooltip");
    if (i < 0) { tip.hidden = true; return; }
    const row = S.map.rows[i];
    $("tooltip-text").textContent = describe(row);
    const img = $("tooltip-img");
    img.hidden = !S.info.images;
    img.removeAttribute("src");
    if (S.info.images) thumbLoader.push(row);
    tip.hidden = false;
    tip.style.left = `${Math.min(mx + 14, W - 90)}px`;
    tip.style.top = `${Math.min(my + 14, H - 100)}px`;
  }

  // ------------------------------------------------------------------ mouse on the map

  let frame = 0;
  const redrawSoon = () => {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; drawPoints(); });
  };
  const mouse = (e) => {
    const r = canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };

  canvas.addEventListener("mousedown", (e) => {
    const [mx, my] = mouse(e);
    S.dragging = { mx, my, cx: S.view.cx, cy: S.view.cy, moved: false };
  });
  window.addEventListener("mouseup", (e) => {
    const d = S.dragging;
    S.dragging = null;
    canvas.classList.remove("dragging");
    if (!d || d.moved || e.target !== canvas) return;
    const [mx, my] = mouse(e);
    const i = pointAt(mx, my);
    if (i >= 0) selectPoint(S.map.rows[i]);
  });
  canvas.addEventListener("mousemove", (e) => {
    if (!S.map) return;
    const [mx, my] = mouse(e);
    const d = S.dragging;
    if (d) {
      if (!d.moved && Math.hypot(mx - d.mx, my - d.my) > 3) { d.moved = true; canvas.classList.add("dragging"); }
      if (d.moved) {
        S.view.cx = d.cx - (mx - d.mx) / S.view.scale;
        S.view.cy = d.cy + (my - d.my) / S.view.scale;
        $("tooltip").hidden = true;
        redrawSoon();
        return;
      }
    }
    const i = pointAt(mx, my);
    if (i !== S.hover) showHover(i, mx, my);
  });
  canvas.addEventListener("mouseleave", () => showHover(-1, 0, 0));
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [mx, my] = mouse(e);
    const f = Math.exp(-e.deltaY * 0.0015);
    const v = S.view;
    const wx = v.cx + (mx - W / 2) / v.scale, wy = v.cy - (my - H / 2) / v.scale;
    v.scale *= f;
    v.cx = wx - (mx - W / 2) / v.scale;
    v.cy = wy + (my - H / 2) / v.scale;
    redrawSoon();
  }, { passive: false });
  canvas.addEventListener("dblclick", () => { fitView(); drawPoints(); });

  // ------------------------------------------------------------------ a clicked point

  async function selectPoint(row) {
    const p = await getJSON(`/api/point?i=${row}`);
    stats.points++;
    S.point = p;
    S[S.nextSlot] = row;
    S.nextSlot = S.nextSlot === "a" ? "b" : "a";
    $("point-title").textContent = `#${p.i}` + (p.label_name !== undefined ? ` · ${p.label_name}` : "");
    if (p.original) $("point-original").src = p.original; else $("point-original").removeAttribute("src");
    $("point-recon").src = p.reconstruction;
    $("recon-caption").textContent = `reconstruction (decoded ${p.reconstruction_of})`;
    const facts = [["row", `${p.i} (image ${p.index})`], ["radius |z|", fmt(p.radius, 4)]];
    if (p.mu_radius !== undefined) facts.push(["radius |mu|", fmt(p.mu_radius, 4)]);
    if (p.label_name !== undefined) facts.push(["label", p.label_name]);
    if (p.attributes) {
      const has = Object.entries(p.attributes).filter(([, v]) => v > 0).map(([k]) => k);
      facts.push(["attributes", has.length ? has.join(", ") : "none known"]);
    }
    $("point-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
    $("base-point").disabled = false;
    setBase(p.z);
    drawOverlay();
    updatePath();
  }

  // ------------------------------------------------------------------ the latent point

  function currentZ() {
    const d = S.info.z_dim, z = new Float64Array(d);
    for (let j = 0; j < d; j++) z[j] = S.base[j] + S.axisOff[j];
    S.dirs.pca.forEach((c, k) => {
      const s = S.pcs[k] * c.sigma;
      if (s) for (let j = 0; j < d; j++) z[j] += s * c.vector[j];
    });
    for (let j = 0; j < d; j++) z[j] *= S.scale;
    return z;
  }

  let decodedURL = null;
  const decoder = new Latest(async (z) => {
    const q = Array.from(z, (v) => Number(v.toPrecision(7))).join(",");
    stats.decodesSent++;
    stats.lastZ = z;
    const t0 = performance.now();
    const r = await fetchOk(`/api/decode?z=${q}`);
    const blob = await r.blob();
    const url = URL.createObjectURL(blob);
    const img = $("decoded");
    img.onload = () => { if (decodedURL && decodedURL !== url) URL.revokeObjectURL(decodedURL); decodedURL = url; };
    img.src = url;
    const ms = performance.now() - t0;
    stats.decodeMs.push(ms);
    stats.decodesDone++;
    $("z-radius").textContent = fmt(Number(r.headers.get("X-Zspace-Radius")), 4);
    $("z-timing").textContent = `${ms.toFixed(0)} ms (server ${(1000 * Number(r.headers.get("X-Zspace-Seconds"))).toFixed(0)} ms)`;
    nearLoader.push(q);
    drawOverlay();
  });
  // The nearest training point: its own request after each decode (latest wins too),
  // so a large data set slows the distance, not the image.
  const nearLoader = new Latest(async (q) => {
    const near = await getJSON(`/api/nearest?z=${q}`);
    stats.nearestDone++;
    $("z-nearest").textContent = `#${near.row} at distance ${fmt(near.distance, 4)}`;
    if (S.info.images) $("nearest-img").src = await thumbURL(near.row);
  });

  const refresh = () => decoder.push(currentZ());

  function setBase(z) {
    S.base = Float64Array.from(z);
    resetSliders();
  }

  function resetSliders() {
    S.pcs.fill(0);
    S.axisOff.fill(0);
    S.scale = 1;
    document.querySelectorAll("#sliders input").forEach((s) => { s.value = 0; s.dispatchEvent(new Event("show")); });
    $("axis-slider").value = 0;
    $("axis-value").textContent = "0 σ";
    $("scale-slider").value = 1;
    $("scale-value").textContent = "1.00";
    refresh();
  }

  function buildSliders() {
    const box = $("sliders");
    S.dirs.pca.forEach((c, k) => {
      const out = el("output", { text: "0 σ" });
      const input = el("input", { type: "range", min: -3, max: 3, step: 0.05, value: 0, id: `pc${k + 1}` });
      const show = () => { out.textContent = `${Number(input.value).toFixed(2)} σ`; };
      input.addEventListener("show", show);
      input.addEventListener("input", () => { S.pcs[k] = Number(input.value); show(); refresh(); });
      const name = el("label", { htmlFor: input.id, text: `PC${k + 1} (${(100 * c.explained).toFixed(1)} %)` });
      box.append(el("div", { class: "slider-row" }, [name, input, out]));
    });
    const std = S.dirs.axis_std;
    const axes = std.map((s, j) => [s, j]).sort((p, q) => q[0] - p[0]);
    $("axis-select").replaceChildren(...axes.map(([s, j]) => el("option", { value: j, text: `${j} (std ${fmt(s)})` })));
    S.axis = axes[0][1];
    const axisValue = () => (std[S.axis] ? S.axisOff[S.axis] / std[S.axis] : 0);
    $("axis-select").addEventListener("change", (e) => {
      S.axis = Number(e.target.value);
      $("axis-slider").value = axisValue();
      $("axis-value").textContent = `${axisValue().toFixed(2)} σ`;
    });
    $("axis-slider").addEventListener("input", (e) => {
      S.axisOff[S.axis] = Number(e.target.value) * (std[S.axis] || 1);
      $("axis-value").textContent = `${Number(e.target.value).toFixed(2)} σ`;
      refresh();
    });
    $("scale-slider").addEventListener("input", (e) => {
      S.scale = Number(e.target.value);
      $("scale-value").textContent = S.scale.toFixed(2);
      refresh();
    });
    $("base-point").addEventListener("click", () => S.point && setBase(S.point.z));
    $("base-mean").addEventListener("click", () => setBase(S.dirs.mean));
    $("base-origin").addEventListener("click", () => setBase(new Float64Array(S.info.z_dim)));
    $("reset-sliders").addEventListener("click", resetSliders);
  }

  // ------------------------------------------------------------------ samplers

  function figure(src, caption, onClick) {
    const f = el("figure", onClick ? { class: "clickable" } : {}, [el("img", { src, alt: caption }), el("figcaption", { text: caption })]);
    if (onClick) f.querySelector("img").addEventListener("click", onClick);
    return f;
  }
  const median = (xs) => { const s = [...xs].sort((p, q) => p - q); return s[Math.floor(s.length / 2)]; };

  const sampler = new Latest(async (name) => {
    const seed = S.sampleSeed++;
    let url = `/api/sample?sampler=${name}&n=16&seed=${seed}`;
    if (name === "uniform") url += `&limit=${Number($("uniform-limit").value)}`;
    const out = await getJSON(url);
    stats.samples++;
    const extra = out.params.limit !== undefined ? `, limit ${out.params.limit}` : "";
    const meanR = out.radius.reduce((s, v) => s + v, 0) / out.radius.length;
    $("sample-caption").textContent = `${name}${extra}, seed ${out.seed}: mean radius ${fmt(meanR)}, ` +
      `median distance to the nearest training point ${fmt(median(out.nearest_distance))} (click an image to explore it)`;
    $("samples").replaceChildren(...out.images.map((src, k) => figure(src, `r ${fmt(out.radius[k])}`, () => setBase(out.z[k]))));
  });

  function buildSamplers() {
    const box = $("sampler-buttons");
    for (const s of S.info.samplers) {
      const b = el("button", { text: s.name, title: s.note, disabled: !s.available, id: `sample-${s.name}` });
      b.addEventListener("click", () => sampler.push(s.name));
      box.append(b);
      if (s.name === "uniform") $("uniform-limit").value = s.limit;
    }
    const notes = S.info.samplers.filter((s) => s.name === "gauss" || s.name === "gmm").map((s) => `${s.name}: ${s.note}`);
    box.append(el("span", { class: "note", text: notes.join("; ") }));
  }

  // ------------------------------------------------------------------ interpolation

  const pather = new Latest(async ({ a, b, steps }) => {
    const out = await getJSON(`/api/interpolate?a=${a}&b=${b}&steps=${steps}`);
    stats.paths++;
    $("path-caption").textContent = `A = ${describe(a)}  →  B = ${describe(b)}, ${steps} steps (captions: radius)`;
    for (const name of ["lerp", "slerp"]) {
      const p = out.paths[name];
      $(`path-${name}`).replaceChildren(...p.images.map((src, k) => figure(src, `r ${fmt(p.radius[k])}`)));
    }
  });
  function updatePath() {
    if (S.a === null || S.b === null) return;
    const steps = Math.min(32, Math.max(2, Math.round(Number($("steps").value) || 8)));
    pather.push({ a: S.a, b: S.b, steps });
  }
  $("steps").addEventListener("change", updatePath);

  // ------------------------------------------------------------------ start

  async function loadMap() {
    const name = $("map-select").value, colour = $("colour-select").value;
    const m = await getJSON(`/api/map?name=${encodeURIComponent(name)}&colour=${encodeURIComponent(colour)}`);
    const spec = name.match(/^pca(?:-(\d+)-(\d+))?$/);
    m.pair = spec ? (spec[1] ? [Number(spec[1]), Number(spec[2])] : [1, 2]) : null;
    m.rowIndex = new Map(m.rows.map((r, i) => [r, i]));
    const keep = S.map && S.map.name === name;
    S.map = m;
    S.hover = -1;
    prepareMap(m);
    if (!keep) fitView();
    drawPoints();
  }

  // Where a row sits on the canvas (for tests that point the mouse at it).
  window.zspace.screenOf = (row) => {
    const i = S.map.rowIndex.get(row);
    return i === undefined ? null : [px[i] + 1, py[i] + 1];
  };
  window.zspace.idle = () => [decoder, sampler, pather, thumbLoader, nearLoader].every((l) => l.idle);
  window.zspace.currentZ = () => Array.from(currentZ());

  async function init() {
    S.info = await getJSON("/api/info");
    S.dirs = await getJSON("/api/directions");
    const i = S.info, c = i.counts;
    $("run-info").textContent = `${i.name}: ${i.kind.toUpperCase()}, z_dim ${i.z_dim}, ` +
      `${i.image_shape[1]}×${i.image_shape[2]}×${i.image_shape[0]}, epoch ${i.epoch}, ` +
      `${c.points.toLocaleString()} ${i.split} points` + (i.images ? "" : ` (${i.images_note})`);
    $("map-select").replaceChildren(...i.maps.map((m) => el("option", { value: m.name, text: m.title })));
    $("colour-select").replaceChildren(...i.colours.map((n) => el("option", { value: n, text: n })));
    $("colour-select").value = i.default_colour;
    $("map-select").addEventListener("change", () => loadMap().catch((e) => status(e.message, true)));
    $("colour-select").addEventListener("change", () => loadMap().catch((e) => status(e.message, true)));
    S.pcs = new Float64Array(S.dirs.pca.length);
    S.axisOff = new Float64Array(i.z_dim);
    buildSliders();
    buildSamplers();
    await loadMap();
    setBase(S.dirs.mean);
    status("ready");
  }
  init().catch((e) => status(e.message, true));
})();

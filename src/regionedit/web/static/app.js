// regionedit web UI: vanilla JS, no build step, no external resources.
// Talks to the JSON API of regionedit.web.server (same origin): /api/info, /api/samples, /api/image,
// /api/region, /api/edit. Images travel as PNG data URLs; the source is always the server-decoded PNG
// (from /api/image or /api/samples), so the mask painted here has exactly the image's pixel grid.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const el = {
    file: $("file"), samples: $("samples"), form: $("edit-form"), instruction: $("instruction"),
    seed: $("seed"), randomSeed: $("random-seed"), steps: $("steps"), findRegion: $("find-region"),
    generate: $("generate"), stage: $("stage"), sourceImg: $("source-img"), canvas: $("mask-canvas"),
    sourceSize: $("source-size"), regionInfo: $("region-info"), targetInfo: $("target-info"),
    showRegion: $("show-region"), brushSize: $("brush-size"), brushSizeValue: $("brush-size-value"),
    accept: $("accept-region"), reject: $("reject-region"), clear: $("clear-mask"), useMask: $("use-mask"),
    resultStage: $("result-stage"), resultImg: $("result-img"), resultSize: $("result-size"), status: $("status"),
    rTarget: $("r-target"), rPrompt: $("r-prompt"), rMethod: $("r-method"), rTime: $("r-time"),
    download: $("download"), useResult: $("use-result"), undo: $("undo"), history: $("history"),
    message: $("message"), busy: $("busy"), modelInfo: $("model-info"),
  };
  const ctx = el.canvas.getContext("2d", { willReadFrequently: true });
  const MAX_UNDO = 50;
  const TYPES = ["image/png", "image/jpeg", "image/webp"];

  const state = {
    info: null,
    source: null, width: 0, height: 0, // the current source: canonical PNG data URL and its size
    result: null,   // the last /api/edit answer shown (null: none)
    region: null,   // the last /api/region answer
    turns: [],      // edits made on the way to the current state: {instruction, status, image}
    undo: [],       // snapshots to go back to
    busy: 0,
    lastRequest: null, // {endpoint, mask, source}: what the last edit sent (for tests and debugging)
  };
  window.regionedit = { state, exportMask, ready: null };

  // -- messages and busy state ------------------------------------------------------------------
  let messageTimer = null;
  function showMessage(text, kind = "error") {
    el.message.textContent = text;
    el.message.className = kind;
    el.message.hidden = false;
    clearTimeout(messageTimer);
    messageTimer = setTimeout(() => { el.message.hidden = true; }, kind === "error" ? 10000 : 5000);
  }
  function setBusy(delta) {
    state.busy += delta;
    const busy = state.busy > 0;
    el.busy.hidden = !busy;
    document.body.dataset.busy = busy ? "1" : "0";
    for (const b of [el.generate, el.findRegion, el.accept]) b.disabled = busy || !state.source;
    if (state.info && !state.info.region_predictor) el.findRegion.disabled = true;
  }

  async function api(path, body) {
    setBusy(+1);
    try {
      const opts = body === undefined ? {} : {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      };
      let r;
      try {
        r = await fetch(path, opts);
      } catch (e) {
        throw new Error(`could not reach the server (${e.message}); is 'regionedit serve' still running?`);
      }
      let data = null;
      try { data = await r.json(); } catch (e) { /* not JSON */ }
      if (!r.ok) throw new Error((data && data.error) || `the server answered HTTP ${r.status}`);
      if (!data) throw new Error(`the server answered HTTP ${r.status} without JSON`);
      return data;
    } finally {
      setBusy(-1);
    }
  }

  function loadImg(url) {
    return new Promise((resolve, reject) => {
      const im = new Image();
      im.onload = () => resolve(im);
      im.onerror = () => reject(new Error("could not display the image"));
      im.src = url;
    });
  }

  // -- source image and the mask canvas ---------------------------------------------------------
  function displaySize(w, h) {
    const box = Math.max(256, Math.min(512, (el.stage.clientWidth || 512) - 16));
    let s = box / Math.max(w, h);
    if (s > 1) s = Math.floor(s); // crisp integer zoom for small images
    return [Math.max(1, Math.round(w * s)), Math.max(1, Math.round(h * s))];
  }
  function sizeElements() {
    if (!state.source) return;
    const [dw, dh] = displaySize(state.width, state.height);
    for (const e of [el.sourceImg, el.canvas, el.resultImg]) {
      e.style.width = `${dw}px`;
      e.style.height = `${dh}px`;
    }
  }

  async function setSource(url, width, height, { keepMask = false } = {}) {
    await loadImg(url);
    state.source = url; state.width = width; state.height = height;
    el.sourceImg.src = url;
    if (!keepMask || el.canvas.width !== width || el.canvas.height !== height) {
      el.canvas.width = width; el.canvas.height = height; // also clears it
    }
    el.stage.classList.remove("empty");
    el.sourceSize.textContent = `${width}×${height}`;
    const big = Math.max(width, height);
    el.brushSize.max = String(Math.max(16, Math.round(big / 3)));
    el.brushSize.value = String(Math.max(1, Math.round(big / 12)));
    el.brushSizeValue.textContent = `${el.brushSize.value} px`;
    sizeElements();
    updateRegionInfo();
    setBusy(0);
  }

  function maskPixels() {
    const d = ctx.getImageData(0, 0, el.canvas.width, el.canvas.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] >= 128) n++;
    return n;
  }
  function updateRegionInfo(text) {
    if (!state.source) { el.regionInfo.textContent = "region: none"; return; }
    const n = maskPixels();
    const pct = (100 * n / (state.width * state.height)).toFixed(1);
    el.regionInfo.textContent = text || (n ? `region: ${n} px (${pct}%)` : "region: none");
  }

  // The painted region as an opaque black/white PNG (white = edit) of the image's size.
  function exportMask() {
    const w = el.canvas.width, h = el.canvas.height;
    const src = ctx.getImageData(0, 0, w, h).data;
    const out = document.createElement("canvas");
    out.width = w; out.height = h;
    const octx = out.getContext("2d");
    const img = octx.createImageData(w, h);
    let n = 0;
    for (let i = 0; i < w * h; i++) {
      const on = src[4 * i + 3] >= 128;
      const v = on ? 255 : 0;
      img.data[4 * i] = v; img.data[4 * i + 1] = v; img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
      n += on;
    }
    octx.putImageData(img, 0, 0);
    return { url: out.toDataURL("image/png"), pixels: n };
  }

  // Show a server mask PNG (white = region) on the canvas as paint.
  async function setMaskFromPNG(url) {
    const im = await loadImg(url);
    const w = el.canvas.width, h = el.canvas.height;
    const tmp = document.createElement("canvas");
    tmp.width = w; tmp.height = h;
    const tctx = tmp.getContext("2d", { willReadFrequently: true });
    tctx.imageSmoothingEnabled = false;
    tctx.drawImage(im, 0, 0, w, h);
    const m = tctx.getImageData(0, 0, w, h);
    const out = ctx.createImageData(w, h);
    for (let i = 0; i < w * h; i++) {
      const on = m.data[4 * i] > 127;
      out.data[4 * i] = 255; out.data[4 * i + 1] = 0; out.data[4 * i + 2] = 255; out.data[4 * i + 3] = on ? 255 : 0;
    }
    ctx.putImageData(out, 0, 0);
    updateRegionInfo();
  }
  async function setMaskRaw(url) { // a snapshot of the canvas itself (toDataURL)
    ctx.clearRect(0, 0, el.canvas.width, el.canvas.height);
    if (url) ctx.drawImage(await loadImg(url), 0, 0);
    updateRegionInfo();
  }
  function clearMask() {
    ctx.clearRect(0, 0, el.canvas.width, el.canvas.height);
    updateRegionInfo();
  }

  // brush / erase with pointer events (mouse, pen, touch)
  let drawing = false, last = null;
  function toImage(e) {
    const r = el.canvas.getBoundingClientRect();
    return { x: (e.clientX - r.left) * el.canvas.width / r.width, y: (e.clientY - r.top) * el.canvas.height / r.height };
  }
  function stroke(a, b) {
    const erase = document.querySelector('input[name="tool"]:checked').value === "erase";
    const size = Number(el.brushSize.value);
    ctx.save();
    ctx.globalCompositeOperation = erase ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = "rgb(255, 0, 255)";
    ctx.lineWidth = size; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.arc(b.x, b.y, size / 2, 0, 2 * Math.PI);
    ctx.fill();
    ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y); ctx.stroke();
    ctx.restore();
  }
  el.canvas.addEventListener("pointerdown", (e) => {
    if (!state.source || e.button !== 0) return;
    e.preventDefault();
    el.canvas.setPointerCapture(e.pointerId);
    drawing = true; last = toImage(e);
    el.showRegion.checked = true; el.canvas.classList.remove("hidden");
    stroke(last, last);
    el.useMask.checked = true; // a corrected region is what the next Generate uses
  });
  el.canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const p = toImage(e);
    stroke(last, p); last = p;
  });
  const endStroke = () => { if (drawing) { drawing = false; updateRegionInfo(); } };
  el.canvas.addEventListener("pointerup", endStroke);
  el.canvas.addEventListener("pointercancel", endStroke);
  el.brushSize.addEventListener("input", () => { el.brushSizeValue.textContent = `${el.brushSize.value} px`; });
  el.showRegion.addEventListener("change", () => el.canvas.classList.toggle("hidden", !el.showRegion.checked));

  // -- result panel -----------------------------------------------------------------------------
  function slug(s) { return s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 40) || "edit"; }
  function showResult(r) {
    state.result = r;
    el.resultStage.classList.toggle("empty", !r);
    el.useResult.disabled = !r;
    if (!r) {
      el.resultImg.removeAttribute("src");
      el.status.textContent = ""; el.status.dataset.status = "";
      for (const d of [el.rTarget, el.rPrompt, el.rMethod, el.rTime]) d.textContent = "";
      el.download.classList.add("disabled"); el.download.setAttribute("aria-disabled", "true");
      el.download.href = "#"; el.resultSize.textContent = "";
      return;
    }
    el.resultImg.src = r.image;
    el.resultSize.textContent = `${r.width}×${r.height}`;
    el.status.dataset.status = r.status;
    el.status.textContent = r.status === "edited" ? `edited: ${r.region_pixels} px region` : `no edit: ${r.reason}`;
    el.rTarget.textContent = r.target_description || "—";
    el.rPrompt.textContent = r.local_prompt || "—";
    el.rMethod.textContent = `${r.method === "mask" ? "your mask" : "predicted region"}, seed ${r.seed}, ${r.steps} steps`;
    el.rTime.textContent = `${r.seconds.toFixed(2)} s` + (r.queue_seconds > 0.05 ? ` (+${r.queue_seconds.toFixed(2)} s queued)` : "");
    el.download.href = r.image;
    el.download.download = `regionedit-${slug(r.instruction)}-seed${r.seed}.png`;
    el.download.classList.remove("disabled"); el.download.removeAttribute("aria-disabled");
  }

  function renderHistory() {
    el.history.textContent = "";
    state.turns.forEach((t, i) => {
      const li = document.createElement("li");
      const im = document.createElement("img");
      im.src = t.image; im.alt = `turn ${i + 1}`;
      li.append(im, `${t.instruction} (${t.status === "edited" ? "edited" : "no edit"})`);
      if (i === state.turns.length - 1) li.className = "current";
      el.history.append(li);
    });
    el.undo.disabled = state.undo.length === 0;
  }

  // -- undo -------------------------------------------------------------------------------------
  function snapshot() {
    return {
      source: state.source, width: state.width, height: state.height, result: state.result, region: state.region,
      mask: state.source ? el.canvas.toDataURL("image/png") : null, useMask: el.useMask.checked,
      instruction: el.instruction.value, turns: state.turns.slice(),
    };
  }
  function pushUndo() {
    if (!state.source) return;
    state.undo.push(snapshot());
    if (state.undo.length > MAX_UNDO) state.undo.shift();
    el.undo.disabled = false;
  }
  async function undo() {
    const s = state.undo.pop();
    if (!s) return;
    await setSource(s.source, s.width, s.height);
    await setMaskRaw(s.mask);
    el.useMask.checked = s.useMask || !state.info.region_predictor;
    el.instruction.value = s.instruction;
    state.region = s.region;
    state.turns = s.turns;
    showResult(s.result);
    renderHistory();
    showMessage("undone", "info");
  }

  // -- actions ----------------------------------------------------------------------------------
  function instructionOrComplain() {
    const text = el.instruction.value.trim();
    if (!text) {
      showMessage("type an instruction first, e.g. 'remove the red circle'");
      el.instruction.focus();
      return null;
    }
    return text;
  }
  function intField(input, name, lo, hi) {
    const v = input.value.trim();
    if (v === "") return null;
    const n = Number(v);
    if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`${name} must be a whole number from ${lo} to ${hi}`);
    return n;
  }

  async function findRegion() {
    if (!state.source) return showMessage("upload an image or pick a sample first");
    const instruction = instructionOrComplain();
    if (!instruction) return;
    try {
      const r = await api("/api/region", { image: state.source, instruction });
      state.region = r;
      await setMaskFromPNG(r.mask);
      el.useMask.checked = !state.info.region_predictor;
      el.showRegion.checked = true; el.canvas.classList.remove("hidden");
      el.targetInfo.textContent = r.target_description ? `→ ${r.target_description}` : "";
      if (!r.found) showMessage(r.message, "info");
    } catch (e) {
      showMessage(e.message);
    }
  }

  async function generate({ forceMask = false } = {}) {
    if (!state.source) return showMessage("upload an image or pick a sample first");
    const instruction = instructionOrComplain();
    if (!instruction) return;
    let body;
    try {
      body = {
        image: state.source, instruction,
        seed: intField(el.seed, "seed", 0, Number.MAX_SAFE_INTEGER) ?? 0,
        steps: intField(el.steps, "steps", 1, state.info.limits.max_steps),
      };
    } catch (e) {
      return showMessage(e.message);
    }
    if (forceMask || el.useMask.checked || !state.info.region_predictor) {
      const m = exportMask();
      if (m.pixels === 0) {
        return showMessage("the region is empty: paint the region to edit with the brush" +
          (state.info.region_predictor ? ", or uncheck 'use my mask' to let the model find it" : ""));
      }
      body.mask = m.url;
    }
    state.lastRequest = { endpoint: "/api/edit", mask: body.mask || null, source: state.source };
    el.status.dataset.status = "working";
    el.status.textContent = "generating…";
    try {
      const r = await api("/api/edit", body);
      const before = snapshot();
      state.undo.push(before);
      if (state.undo.length > MAX_UNDO) state.undo.shift();
      state.turns = state.turns.concat([{ instruction: r.instruction, status: r.status, image: r.image }]);
      if (r.status === "edited" || r.method === "region") await setMaskFromPNG(r.mask);
      showResult(r);
      el.targetInfo.textContent = r.target_description ? `→ ${r.target_description}` : "";
      renderHistory();
      if (r.status !== "edited") showMessage(`no edit: ${r.reason}`, "info");
      else el.message.hidden = true;
    } catch (e) {
      el.status.dataset.status = "error";
      el.status.textContent = e.message;
      showMessage(e.message);
    }
  }

  async function useResult() {
    const r = state.result;
    if (!r) return;
    pushUndo();
    await setSource(r.image, r.width, r.height);
    state.region = null;
    showResult(null);
    el.useMask.checked = !state.info.region_predictor;
    el.targetInfo.textContent = "";
    el.instruction.value = "";
    el.instruction.focus();
    renderHistory();
  }

  async function newSource(url, width, height, instruction) {
    pushUndo();
    await setSource(url, width, height);
    state.region = null;
    state.turns = [];
    showResult(null);
    el.useMask.checked = !state.info.region_predictor;
    el.targetInfo.textContent = "";
    if (instruction !== undefined) el.instruction.value = instruction;
    renderHistory();
  }

  async function uploadFile(file) {
    if (!file) return;
    const lim = state.info.limits;
    if (file.type && !TYPES.includes(file.type)) {
      return showMessage(`${file.name} is ${file.type}; only PNG, JPEG and WebP images are accepted`);
    }
    if (file.size > lim.max_upload_bytes) {
      return showMessage(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB, over the upload limit of ` +
        `${(lim.max_upload_bytes / 1048576).toFixed(0)} MB; downscale or compress it`);
    }
    const dataUrl = await new Promise((resolve, reject) => {
      const fr = new FileReader();
      fr.onload = () => resolve(fr.result);
      fr.onerror = () => reject(new Error(`could not read ${file.name}`));
      fr.readAsDataURL(file);
    });
    try {
      const r = await api("/api/image", { image: dataUrl });
      await newSource(r.image, r.width, r.height);
      el.instruction.focus();
    } catch (e) {
      showMessage(`${file.name}: ${e.message}`);
    }
  }

  // -- wiring -----------------------------------------------------------------------------------
  el.file.addEventListener("change", () => { uploadFile(el.file.files[0]); el.file.value = ""; });
  for (const target of [el.stage, document.body]) {
    target.addEventListener("dragover", (e) => { e.preventDefault(); el.stage.classList.add("drag"); });
    target.addEventListener("dragleave", () => el.stage.classList.remove("drag"));
    target.addEventListener("drop", (e) => {
      e.preventDefault(); e.stopPropagation(); el.stage.classList.remove("drag");
      if (e.dataTransfer.files.length) uploadFile(e.dataTransfer.files[0]);
    });
  }
  el.form.addEventListener("submit", (e) => { e.preventDefault(); generate(); });
  el.findRegion.addEventListener("click", findRegion);
  el.randomSeed.addEventListener("click", () => { el.seed.value = String(Math.floor(Math.random() * 2 ** 31)); });
  el.accept.addEventListener("click", () => { el.useMask.checked = true; generate({ forceMask: true }); });
  el.reject.addEventListener("click", () => {
    clearMask();
    el.useMask.checked = true;
    $("tool-brush").checked = true;
    showMessage("region rejected: paint the region to edit, then press Generate", "info");
  });
  el.clear.addEventListener("click", clearMask);
  el.useResult.addEventListener("click", useResult);
  el.undo.addEventListener("click", undo);
  document.addEventListener("keydown", (e) => {
    const typing = ["INPUT", "TEXTAREA"].includes(document.activeElement.tagName);
    if ((e.ctrlKey || e.metaKey) && e.key === "z" && !typing) { e.preventDefault(); undo(); }
  });
  window.addEventListener("resize", sizeElements);

  async function init() {
    setBusy(0);
    const info = await api("/api/info");
    state.info = info;
    el.modelInfo.textContent = `model ${info.model}` + (info.region_predictor ? "" : " (no region predictor: paint the region)");
    el.steps.value = String(info.defaults.steps);
    el.steps.max = String(info.limits.max_steps);
    if (!info.region_predictor) {
      el.findRegion.disabled = true;
      el.findRegion.title = "this model has no region predictor: paint the region with the brush";
      el.useMask.checked = true;
    }
    const { samples } = await api("/api/samples");
    for (const s of samples) {
      const b = document.createElement("button");
      b.type = "button"; b.title = `${s.caption}\n“${s.instruction}”`; b.dataset.sample = String(s.id);
      const im = document.createElement("img");
      im.src = s.image; im.alt = s.caption;
      b.append(im);
      b.addEventListener("click", () => newSource(s.image, s.width, s.height, s.instruction));
      el.samples.append(b);
    }
    setBusy(0);
    document.body.dataset.ready = "1";
  }
  window.regionedit.ready = init().catch((e) => showMessage(e.message));
})();

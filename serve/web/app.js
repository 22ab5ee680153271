// The page: draw a digit or drop a picture; the model runs in the browser (onnxruntime-web)
// when `make web` installed it, else on the server. Everything comes from this server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { name: null, version: null, shape: null, classes: [], session: null, engine: "server", busy: false };

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.appendChild(script);
  });
}

// The model and version in the address (?model=NAME&version=N), else the first model's newest version.
function chooseModel(models) {
  const params = new URLSearchParams(location.search);
  const model = models.find((m) => m.name === params.get("model")) || models[0];
  const version = Number(params.get("version"));
  state.name = model.name;
  state.version = model.versions.includes(version) ? version : model.versions[0]; // newest first
}

// Paths of the chosen version, for the server's v1 and v2 APIs and the ONNX file itself.
const modelPath = () => `/models/${encodeURIComponent(state.name)}/versions/${state.version}`;
const v1Path = () => `/v1${modelPath()}`;
const v2Path = () => `/v2${modelPath()}`;

function setUpModelPicker(models) {
  const [modelSelect, versionSelect] = [$("model-select"), $("version-select")];
  const option = (value, selected) => {
    const element = document.createElement("option");
    element.value = element.textContent = String(value);
    element.selected = selected;
    return element;
  };
  modelSelect.replaceChildren(...models.map((m) => option(m.name, m.name === state.name)));
  const versions = models.find((m) => m.name === state.name).versions;
  versionSelect.replaceChildren(...versions.map((v) => option(v, v === state.version)));
  const go = (name, version) => {
    const params = new URLSearchParams({ model: name });
    if (version !== undefined) params.set("version", String(version));
    location.search = params.toString();
  };
  modelSelect.addEventListener("change", () => go(modelSelect.value));
  versionSelect.addEventListener("change", () => go(state.name, versionSelect.value));
}

async function main() {
  const { models, browser_engine: browserEngine } = await getJSON("/models");
  chooseModel(models);
  setUpModelPicker(models);
  const meta = await getJSON(v2Path());
  state.shape = meta.inputs[0].shape.slice(1); // [H, W, C]
  state.classes = meta.parameters.classes;
  $("title").textContent = `${meta.parameters.dataset} (${state.classes.length} classes)`;
  renderCard(meta.parameters);
  renderProbabilities(state.classes.map(() => 0));
  if (browserEngine) await startBrowserEngine();
  $("engine").textContent = state.engine;
  if (state.shape[2] === 1) setUpPad();
  setUpPicker();
}

async function startBrowserEngine() {
  try {
    await loadScript("/web/ort/ort.wasm.min.js");
    ort.env.wasm.wasmPaths = "/web/ort/";
    ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which a plain page does not have
    const response = await fetch(`${modelPath()}/model.onnx`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    state.session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
    state.engine = "browser";
  } catch (error) {
    console.warn("onnxruntime-web could not start; the server answers instead:", error);
    state.session = null;
    state.engine = "server";
  }
}

// Pixels [H*W*C] as the nested lists [H][W][C] of TF Serving's `instances`.
function nested(pixels) {
  const [h, w, c] = state.shape;
  const image = [];
  for (let y = 0; y < h; y++) {
    const row = [];
    for (let x = 0; x < w; x++) row.push(Array.from(pixels.subarray((y * w + x) * c, (y * w + x + 1) * c)));
    image.push(row);
  }
  return image;
}

async function serverPredict(pixels) {
  const body = await getJSON(`${v1Path()}:predict`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ instances: [nested(pixels)] }),
  });
  return body.predictions[0];
}

// A picture file as it is, to the server's upload route: it decodes, turns and resizes the file itself.
async function serverClassify(file) {
  const body = await getJSON(`${modelPath()}/classify?top_k=${state.classes.length}`, {
    method: "POST",
    headers: { "content-type": file.type || "application/octet-stream" },
    body: file,
  });
  const byClass = new Map(body.predictions[0].top.map((t) => [t.class, t.probability]));
  return state.classes.map((name) => byClass.get(name));
}

async function predict(pixels) {
  if (!state.session) return serverPredict(pixels);
  const [h, w, c] = state.shape;
  const outputs = await state.session.run({ images: new ort.Tensor("uint8", pixels, [1, h, w, c]) });
  return Array.from(outputs.probabilities.data);
}

// Classify; with `check`, also ask the server and show the largest difference (once per image).
async function classify(pixels, check) {
  showModelInput(pixels);
  const probabilities = await predict(pixels);
  renderProbabilities(probabilities);
  if (check && state.session) {
    const served = await serverPredict(pixels);
    const diff = Math.max(...served.map((p, i) => Math.abs(p - probabilities[i])));
    const parity = $("parity");
    parity.dataset.maxDiff = String(diff);
    parity.textContent = `(browser vs server: largest difference ${diff.toExponential(1)})`;
  }
}

function renderProbabilities(probabilities) {
  const list = $("probabilities");
  const top = probabilities.indexOf(Math.max(...probabilities));
  list.replaceChildren(
    ...state.classes.map((name, i) => {
      const item = document.createElement("li");
      item.dataset.class = name;
      item.dataset.probability = String(probabilities[i]);
      item.className = i === top && probabilities[i] > 0 ? "top" : "";
      const label = document.createElement("span");
      label.className = "name";
      label.textContent = name;
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${(probabilities[i] * 100).toFixed(1)}%`;
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = probabilities[i].toFixed(3);
      item.append(label, bar, value);
      return item;
    }),
  );
}

function showModelInput(pixels) {
  const [h, w, c] = state.shape;
  const canvas = $("model-input");
  canvas.width = w;
  canvas.height = h;
  const image = canvas.getContext("2d").createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) image.data[i * 4 + k] = pixels[i * c + (c === 1 ? 0 : k)];
    image.data[i * 4 + 3] = 255;
  }
  canvas.getContext("2d").putImageData(image, 0, 0);
}

// The pad, prepared the way MNIST's digits were: the drawing's bounding box scaled to fit a
// 20x20 box (keeping its aspect), then placed in the 28x28 image so that its centre of mass
// falls on the centre; for a model of another size, the same proportions (20/28).
function padPixels() {
  const pad = $("pad");
  const [h, w] = state.shape;
  const { data } = pad.getContext("2d", { willReadFrequently: true }).getImageData(0, 0, pad.width, pad.height);
  let [left, top, right, bottom] = [pad.width, pad.height, -1, -1];
  for (let y = 0; y < pad.height; y++) {
    for (let x = 0; x < pad.width; x++) {
      if (data[(y * pad.width + x) * 4] > 0) {
        left = Math.min(left, x);
        right = Math.max(right, x);
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
      }
    }
  }
  const pixels = new Uint8Array(h * w);
  if (right < 0) return pixels; // nothing drawn
  const box = Math.max(1, Math.round((Math.min(h, w) * 20) / 28));
  const scale = box / Math.max(right - left + 1, bottom - top + 1);
  const bw = Math.max(1, Math.round((right - left + 1) * scale));
  const bh = Math.max(1, Math.round((bottom - top + 1) * scale));
  const small = document.createElement("canvas");
  small.width = bw;
  small.height = bh;
  const context = small.getContext("2d");
  context.imageSmoothingQuality = "high";
  context.drawImage(pad, left, top, right - left + 1, bottom - top + 1, 0, 0, bw, bh);
  const scaled = context.getImageData(0, 0, bw, bh).data;
  let [mass, mx, my] = [0, 0, 0];
  for (let y = 0; y < bh; y++) {
    for (let x = 0; x < bw; x++) {
      const v = scaled[(y * bw + x) * 4];
      mass += v;
      mx += v * x;
      my += v * y;
    }
  }
  const ox = Math.round((w - 1) / 2 - (mass ? mx / mass : (bw - 1) / 2));
  const oy = Math.round((h - 1) / 2 - (mass ? my / mass : (bh - 1) / 2));
  for (let y = 0; y < bh; y++) {
    for (let x = 0; x < bw; x++) {
      const [tx, ty] = [x + ox, y + oy];
      if (tx >= 0 && tx < w && ty >= 0 && ty < h) pixels[ty * w + tx] = scaled[(y * bw + x) * 4];
    }
  }
  return pixels;
}

function setUpPad() {
  $("draw").hidden = false;
  const pad = $("pad");
  const context = pad.getContext("2d", { willReadFrequently: true }); // read back on every stroke
  const clear = () => {
    context.fillStyle = "black";
    context.fillRect(0, 0, pad.width, pad.height);
  };
  clear();
  context.strokeStyle = "white";
  context.lineWidth = pad.width / 14;
  context.lineCap = context.lineJoin = "round";
  let drawing = false;
  let pending = false;
  const point = (event) => {
    const rect = pad.getBoundingClientRect();
    return [((event.clientX - rect.left) * pad.width) / rect.width, ((event.clientY - rect.top) * pad.height) / rect.height];
  };
  const update = (check) => {
    if (pending && !check) return;
    pending = true;
    requestAnimationFrame(async () => {
      await classify(padPixels(), check);
      pending = false;
    });
  };
  pad.addEventListener("pointerdown", (event) => {
    drawing = true;
    pad.setPointerCapture(event.pointerId);
    context.beginPath();
    context.moveTo(...point(event));
  });
  pad.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    context.lineTo(...point(event));
    context.stroke();
    update(false); // the bars follow the pen
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    update(true); // a finished stroke: also check the browser against the server
  };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);
  $("clear").addEventListener("click", () => {
    clear();
    classify(padPixels(), false);
  });
}

// A picture: drawn at the model's size; to gray as Pillow does ("L", ITU-R 601-2 luma).
async function pictureToPixels(file) {
  const [h, w, c] = state.shape;
  const bitmap = await createImageBitmap(file);
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const context = canvas.getContext("2d");
  context.imageSmoothingQuality = "high";
  context.drawImage(bitmap, 0, 0, w, h);
  const { data } = context.getImageData(0, 0, w, h);
  const pixels = new Uint8Array(h * w * c);
  for (let i = 0; i < h * w; i++) {
    const [r, g, b] = [data[i * 4], data[i * 4 + 1], data[i * 4 + 2]];
    if (c === 1) pixels[i] = Math.round((r * 299 + g * 587 + b * 114) / 1000);
    else pixels.set([r, g, b], i * 3);
  }
  return pixels;
}

function setUpPicker() {
  const input = $("file");
  const drop = $("drop");
  // The file goes to the server as it is (its answer is shown); with the browser engine, the browser's own
  // reading of it runs too, and the page says how far the two answers lie apart.
  const take = async (file) => {
    if (!file) return;
    const pixels = await pictureToPixels(file);
    showModelInput(pixels);
    const served = await serverClassify(file);
    renderProbabilities(served);
    if (state.session) {
      const browser = await predict(pixels);
      const diff = Math.max(...served.map((p, i) => Math.abs(p - browser[i])));
      const parity = $("parity");
      parity.dataset.maxDiff = String(diff);
      parity.textContent = `(browser vs server: largest difference ${diff.toExponential(1)})`;
    }
  };
  input.addEventListener("change", () => take(input.files[0]));
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") input.click();
  });
  drop.addEventListener("dragover", (event) => event.preventDefault());
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    take(event.dataTransfer.files[0]);
  });
}

function renderCard(parameters) {
  const facts = $("facts");
  const metrics = parameters.metrics || {};
  const rows = [
    ["dataset", parameters.dataset],
    ["task", `${parameters.task}: ${state.classes.join(", ")}`],
    ["test accuracy", metrics.accuracy !== undefined ? `${metrics.accuracy.toFixed(4)} on ${metrics.n_test} images` : "—"],
  ];
  if (parameters.task === "binary") {
    rows.push(["balanced accuracy", metrics.balanced_accuracy?.toFixed(4) ?? "—"]);
    rows.push(["always the majority class", metrics.majority_baseline_accuracy?.toFixed(4) ?? "—"]);
  }
  const input = parameters.input || {};
  rows.push(["input", `${input.name || "images"}: uint8 [batch, ${state.shape.join(", ")}], values 0..255`]);
  const artifacts = (parameters.parity || {}).artifacts || {};
  for (const [name, entry] of Object.entries(artifacts)) {
    if (entry.max_abs_diff !== undefined) {
      rows.push([`${name} vs Keras`, `max difference ${entry.max_abs_diff.toExponential(1)}, argmax agreement ${entry.argmax_agreement}`]);
    }
  }
  facts.replaceChildren(
    ...rows.flatMap(([term, value]) => {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      return [dt, dd];
    }),
  );
  const templates = parameters.templates;
  if (!templates) return;
  $("templates").replaceChildren(
    ...templates.png.map((png, i) => {
      const figure = document.createElement("figure");
      const image = document.createElement("img");
      image.src = `data:image/png;base64,${png}`;
      image.alt = `learned weights of class ${templates.classes[i]}`;
      const caption = document.createElement("figcaption");
      caption.textContent = templates.classes[i];
      figure.append(image, caption);
      return figure;
    }),
  );
}

main().catch((error) => {
  console.warn(error);
  $("engine").textContent = `unavailable (${error.message})`;
});

// The "Try the lens" page: a prompt box, an optional target, and the lens grid computed in this browser by
// lens-worker.js (ONNX Runtime Web, WASM). The model is fetched only when the learner presses "Load the model".
// window.tryLens (load, run, lastResult) is what the page's tests and benchmark drive.

const here = new URL(".", import.meta.url);
const VISIBLE = { " ": "␣", "\n": "↵", "\t": "⇥" };
const METRICS = {
  prob: { label: "probability of the top token", short: "p", value: (r, l, t) => r.top_probs[l][t][0] },
  rank: { label: "rank of the target", short: "rank", value: (r, l, t) => r.target_rank[l][t] },
  entropy: { label: "entropy (nats)", short: "H", value: (r, l, t) => r.entropy[l][t] },
  kl: { label: "KL to the final layer (nats)", short: "KL", value: (r, l, t) => r.kl_to_final[l][t] },
};
// A light-to-dark blue ramp; each cell's text is black or white, whichever contrasts more (always >= 4.5:1).
const RAMP = [
  [247, 251, 255],
  [198, 219, 239],
  [107, 174, 214],
  [33, 113, 181],
  [8, 48, 107],
];

function showToken(text) {
  return text ? Array.from(text, (ch) => VISIBLE[ch] ?? ch).join("") : "∅";
}

function short(text, n = 9) {
  const shown = showToken(text);
  return shown.length > n ? shown.slice(0, n - 1) + "…" : shown;
}

function colour(x) {
  const t = Math.min(1, Math.max(0, x)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(t));
  const f = t - i;
  return RAMP[i].map((c, j) => Math.round(c + f * (RAMP[i + 1][j] - c)));
}

function luminance(rgb) {
  const [r, g, b] = rgb.map((c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function textColour(rgb) {
  const lum = luminance(rgb);
  return (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) ? "#000" : "#fff";
}

// How dark a cell is for each metric: a confident, settled reading is dark.
function intensity(metric, value, vocab) {
  if (metric === "prob") return value;
  if (metric === "rank") return 1 - Math.log(value) / Math.log(vocab);
  if (metric === "entropy") return 1 - value / Math.log(vocab);
  return 1 / (1 + value); // KL
}

function formatValue(metric, value) {
  if (metric === "rank") return "#" + value;
  return value.toFixed(2);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function megabytes(bytes) {
  return (bytes / 1e6).toFixed(0) + " MB";
}

class TryLens {
  constructor(root) {
    this.root = root;
    this.status = root.querySelector("#tl-status");
    this.loadButton = root.querySelector("#tl-load");
    this.progress = root.querySelector("#tl-progress");
    this.form = root.querySelector("#tl-form");
    this.prompt = root.querySelector("#tl-prompt");
    this.target = root.querySelector("#tl-target");
    this.metric = root.querySelector("#tl-metric");
    this.runButton = root.querySelector("#tl-run");
    this.output = root.querySelector("#tl-result");
    this.worker = null;
    this.ready = null;
    this.pending = new Map();
    this.nextId = 0;
    this.lastResult = null;
    this.manifest = null;
    this.loadButton.addEventListener("click", () => this.load().catch(() => {}));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run(this.prompt.value, this.target.value).catch(() => {});
    });
    this.metric.addEventListener("change", () => this.lastResult && this.render(this.lastResult));
    this.readManifest();
  }

  async readManifest() {
    if (location.protocol === "file:") {
      this.say("This page needs the site served over HTTP (browsers refuse workers on file:// pages), for example: python3 -m http.server --directory _build/html");
      this.loadButton.disabled = true;
      return;
    }
    try {
      const response = await fetch(new URL("model/manifest.json", here));
      this.manifest = await response.json();
      this.loadButton.textContent = `Load the model (${megabytes(this.manifest.model_bytes)})`;
    } catch {
      this.say("The model's files are missing from this site: build it with make book.");
      this.loadButton.disabled = true;
    }
  }

  say(text) {
    this.status.textContent = text;
  }

  load() {
    if (this.ready) return this.ready;
    this.loadButton.disabled = true;
    this.progress.hidden = false;
    this.say("Downloading the model…");
    this.worker = new Worker(new URL("lens-worker.js", here), { type: "module" });
    this.ready = new Promise((resolve, reject) => {
      this.worker.onmessage = (event) => {
        const message = event.data;
        if (message.type === "progress") {
          this.progress.max = message.total;
          this.progress.value = message.loaded;
          this.progress.setAttribute("aria-valuetext", `${megabytes(message.loaded)} of ${megabytes(message.total)}`);
          this.say(
            message.preparing
              ? `Downloaded ${megabytes(message.total)}; preparing the model (a few seconds)…`
              : `Downloading the model: ${megabytes(message.loaded)} of ${megabytes(message.total)}`,
          );
        } else if (message.type === "ready") {
          this.loadInfo = message;
          this.loadButton.textContent = `Model loaded (${megabytes(message.bytes)})`;
          this.say(
            `Model loaded (${megabytes(message.bytes)} in ${(message.fetchSeconds + message.prepareSeconds).toFixed(1)} s). Type a prompt and press "Read through the lens".`,
          );
          this.runButton.disabled = false;
          resolve(message);
        } else if (message.type === "result" || (message.type === "error" && message.id !== null)) {
          const waiting = this.pending.get(message.id);
          this.pending.delete(message.id);
          if (waiting && message.type === "result") waiting.resolve(message);
          else if (waiting) waiting.reject(new Error(message.message));
        } else if (message.type === "error") {
          this.say("Could not load the model: " + message.message);
          this.loadButton.disabled = false;
          this.ready = null;
          reject(new Error(message.message));
        }
      };
    });
    this.worker.postMessage({ type: "load" });
    return this.ready;
  }

  async run(prompt, target) {
    await this.load();
    const id = this.nextId++;
    this.runButton.disabled = true;
    this.say("Reading every layer…");
    try {
      const result = await new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        this.worker.postMessage({ type: "run", id, prompt, target: target || null });
      });
      this.lastResult = result;
      this.render(result);
      this.say(
        `${result.tokens.length} tokens x ${result.entropy.length} layers read in ${result.seconds.toFixed(1)} s in this browser.`,
      );
      return result;
    } catch (error) {
      this.say("Error: " + (error.message ?? error));
      throw error;
    } finally {
      this.runButton.disabled = false;
    }
  }

  cellText(r, l, t) {
    const top = r.top_tokens[l][t]
      .map((token, j) => `${showToken(token)} ${r.top_probs[l][t][j].toFixed(3)}`)
      .join(", ");
    let text = `Layer ${l}, after ${showToken(r.tokens[t])} (position ${t}): top 5 ${top}.`;
    if (r.target) {
      text += ` Target ${showToken(r.target.text)}: rank ${r.target_rank[l][t]}, probability ${r.target_prob[l][t].toFixed(3)}.`;
    }
    return text + ` Entropy ${r.entropy[l][t].toFixed(2)}, KL to the final layer ${r.kl_to_final[l][t].toFixed(2)} nats.`;
  }

  render(r) {
    let metric = this.metric.value;
    if (metric === "rank" && !r.target) metric = "prob";
    const info = METRICS[metric];
    const vocab = this.manifest?.vocab_size ?? 49152;
    const layers = r.entropy.length;
    const detail = el("p", { class: "tl-detail", id: "tl-detail", "aria-live": "polite", text: "Hover over or focus a cell for its top 5." });
    const grid = el("table", { class: "tl-grid" });
    grid.append(el("caption", { text: `Top token at each layer (rows) and position (columns); the number and colour: ${info.label}.` }));
    const head = el("tr", {}, el("th", { scope: "col", text: "layer" }));
    r.tokens.forEach((token) => head.append(el("th", { scope: "col", text: short(token, 8) })));
    grid.append(el("thead", {}, head));
    const body = el("tbody");
    for (let l = layers - 1; l >= 0; l--) {
      const row = el("tr", {}, el("th", { scope: "row", text: String(l) }));
      for (let t = 0; t < r.tokens.length; t++) {
        const value = info.value(r, l, t);
        const rgb = colour(intensity(metric, value, vocab));
        const cell = el(
          "button",
          { type: "button", class: "tl-cell", "aria-label": this.cellText(r, l, t) },
          el("span", { class: "tl-token", text: short(r.top_tokens[l][t][0]) }),
          el("span", { class: "tl-value", text: formatValue(metric, value) }),
        );
        cell.style.background = `rgb(${rgb.join(",")})`;
        cell.style.color = textColour(rgb);
        const show = () => (detail.textContent = this.cellText(r, l, t));
        cell.addEventListener("mouseenter", show);
        cell.addEventListener("focus", show);
        row.append(el("td", {}, cell));
      }
      body.append(row);
    }
    grid.append(body);
    const box = el("div", { class: "tl-grid-box", role: "region", "aria-label": "The lens grid (scrolls sideways)", tabindex: "0" }, grid);
    this.output.replaceChildren(box, detail, this.plainTable(r));
  }

  plainTable(r) {
    const columns = ["Layer", "Position", "Token", "Top-1", "Probability", "Entropy", "KL to final"];
    if (r.target) columns.push("Target rank", "Target probability");
    const table = el("table", { class: "tl-table" }, el("caption", { text: "Every cell of the grid, one row per layer and position" }));
    table.append(el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", { scope: "col", text: c })))));
    const body = el("tbody");
    for (let l = 0; l < r.entropy.length; l++) {
      for (let t = 0; t < r.tokens.length; t++) {
        const cells = [
          String(l),
          String(t),
          showToken(r.tokens[t]),
          showToken(r.top_tokens[l][t][0]),
          r.top_probs[l][t][0].toFixed(3),
          r.entropy[l][t].toFixed(2),
          r.kl_to_final[l][t].toFixed(2),
        ];
        if (r.target) cells.push(String(r.target_rank[l][t]), r.target_prob[l][t].toFixed(3));
        body.append(el("tr", {}, ...cells.map((c) => el("td", { text: c }))));
      }
    }
    table.append(body);
    return el("details", { class: "tl-numbers" }, el("summary", { text: "The same numbers as a table" }), el("div", { class: "tl-table-box", role: "region", "aria-label": "The numbers (scroll)", tabindex: "0" }, table));
  }
}

const root = document.getElementById("try-lens");
if (root) window.tryLens = new TryLens(root);

// The "Try the lens" page's worker: it loads the tokenizer and the ONNX model, then reads prompts through the
// lens, away from the page's thread (the page stays responsive while the grid is computed).
// Messages in: {type: "load"} and {type: "run", id, prompt, target}. Out: progress, ready, result, error.
import * as ort from "./vendor/ort/ort.wasm.min.mjs";
import { Tokenizer } from "./vendor/tokenizers.min.mjs";

const here = new URL(".", import.meta.url);
ort.env.wasm.wasmPaths = new URL("vendor/ort/", here).href; // the site's own copy, never a CDN
ort.env.wasm.numThreads = 1; // no cross-origin isolation is assumed: single-threaded WASM
ort.env.wasm.proxy = false;

let session = null;
let tokenizer = null;
let manifest = null;
const texts = new Map();

function post(message) {
  self.postMessage(message);
}

async function fetchBytes(url, total, onBytes) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not fetch ${url}: HTTP ${response.status}`);
  const size = Number(response.headers.get("Content-Length")) || total;
  const reader = response.body.getReader();
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes.set(value, offset);
    offset += value.length;
    onBytes(offset, size);
  }
  return bytes.subarray(0, offset);
}

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not fetch ${url}: HTTP ${response.status}`);
  return response.json();
}

async function load() {
  const start = performance.now();
  manifest = await fetchJson(new URL("model/manifest.json", here));
  const [tokenizerJson, tokenizerConfig] = await Promise.all([
    fetchJson(new URL("model/tokenizer.json", here)),
    fetchJson(new URL("model/tokenizer_config.json", here)),
  ]);
  tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
  const model = await fetchBytes(new URL("model/" + manifest.model_file, here), manifest.model_bytes, (loaded, total) =>
    post({ type: "progress", loaded, total }),
  );
  post({ type: "progress", loaded: model.length, total: model.length, preparing: true });
  const downloaded = performance.now();
  session = await ort.InferenceSession.create(model, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  const ready = performance.now();
  post({
    type: "ready",
    model: manifest.model,
    bytes: model.length,
    fetchSeconds: (downloaded - start) / 1000,
    prepareSeconds: (ready - downloaded) / 1000,
  });
}

function tokenText(id) {
  if (!texts.has(id)) texts.set(id, tokenizer.decode([id], { skip_special_tokens: false }));
  return texts.get(id);
}

function targetId(target) {
  const ids = tokenizer.encode(target, { add_special_tokens: false }).ids;
  if (ids.length !== 1) {
    const pieces = ids.map((id) => JSON.stringify(tokenText(Number(id)))).join(" + ");
    throw new Error(`the target ${JSON.stringify(target)} is ${ids.length} tokens (${pieces}), not one`);
  }
  return Number(ids[0]);
}

async function run({ id, prompt, target }) {
  if (!prompt || !prompt.trim()) throw new Error("the prompt is empty; type some text to read");
  const ids = tokenizer.encode(prompt).ids.map(Number);
  if (ids.length > manifest.max_tokens) {
    throw new Error(`the prompt is ${ids.length} tokens long; this page reads at most ${manifest.max_tokens}`);
  }
  const target_id = target ? targetId(target) : null;
  // Positions are read in chunks on growing prefixes (the model is causal: a chunk's numbers are the whole
  // prompt's), so that the [layers, positions, vocabulary] tensors of one run stay small.
  const start = performance.now();
  const chunk = manifest.chunk_positions;
  const T = ids.length;
  const layers = manifest.n_layers + 1;
  const k = manifest.top_k;
  const rows = () => Array.from({ length: layers }, () => []);
  const topIds = rows();
  const topProbs = rows();
  const entropy = rows();
  const kl = rows();
  const targetProb = rows();
  const targetRank = rows();
  for (let first = 0; first < T; first += chunk) {
    const end = Math.min(T, first + chunk);
    const n = end - first;
    const out = await session.run({
      input_ids: new ort.Tensor("int64", BigInt64Array.from(ids.slice(0, end), BigInt), [end]),
      target_id: new ort.Tensor("int64", BigInt64Array.from([BigInt(target_id ?? 0)]), []),
      first: new ort.Tensor("int64", BigInt64Array.from([BigInt(first)]), []),
    });
    for (let l = 0; l < layers; l++) {
      for (let t = 0; t < n; t++) {
        const cell = l * n + t;
        topIds[l].push(Array.from(out.top_ids.data.subarray(cell * k, (cell + 1) * k), Number));
        topProbs[l].push(Array.from(out.top_probs.data.subarray(cell * k, (cell + 1) * k)));
        entropy[l].push(out.entropy.data[cell]);
        kl[l].push(out.kl_to_final.data[cell]);
        targetProb[l].push(out.target_prob.data[cell]);
        targetRank[l].push(Math.round(out.target_rank.data[cell]));
      }
    }
  }
  const seconds = (performance.now() - start) / 1000;
  post({
    type: "result",
    id,
    seconds,
    tokens: ids.map(tokenText),
    token_ids: ids,
    top_ids: topIds,
    top_probs: topProbs,
    top_tokens: topIds.map((row) => row.map((cell) => cell.map(tokenText))),
    entropy,
    kl_to_final: kl,
    target: target_id === null ? null : { text: target, id: target_id },
    target_prob: target_id === null ? null : targetProb,
    target_rank: target_id === null ? null : targetRank,
  });
}

self.onmessage = async (event) => {
  const message = event.data;
  try {
    if (message.type === "load") await load();
    else if (message.type === "run") await run(message);
  } catch (error) {
    post({ type: "error", id: message.id ?? null, message: String(error && error.message ? error.message : error) });
  }
};

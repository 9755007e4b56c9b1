// The web page's script: list the models, tag the text, draw the answer on the text itself.
//
// It calls the public API as any client does (relative URLs, so it works behind a path prefix) and
// builds every node with textContent, never innerHTML: the text and the tokens are the user's.
// Offsets in answers count code points (Python's str), so the text is cut as Array.from(text),
// not with String.slice (UTF-16), or every emoji before an entity would shift it.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "tagger.apiKey"; // sessionStorage: typed once per tab, gone when the tab closes
const PALETTE = 8; // ui.css defines .c0 ... .c7

const state = { models: new Map(), last: null, seq: 0 };

class Failure extends Error {
  // A refusal with what the API said (status, message, field, Retry-After), or a network failure (status 0).
  constructor(status, message, { field, reason, requestId, retryAfter, body } = {}) {
    super(message);
    Object.assign(this, { status, field, reason, requestId, retryAfter, body });
  }
}

function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.append(...children);
  return node;
}

function apiHeaders(json) {
  const headers = json ? { "Content-Type": "application/json" } : {};
  const key = sessionStorage.getItem(KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

async function api(path, init = {}) {
  let response;
  try {
    response = await fetch(new URL(path, document.baseURI), init);
  } catch (err) {
    throw new Failure(0, `could not reach the service (${err.message})`);
  }
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: a proxy's error page, say; shown as it came
  }
  if (!response.ok) {
    const e = (body && body.error) || {};
    throw new Failure(response.status, e.message || text.slice(0, 300) || response.statusText, {
      field: e.field,
      reason: e.reason,
      requestId: e.request_id,
      retryAfter: response.headers.get("Retry-After"),
      body,
    });
  }
  if (body === null) throw new Failure(response.status, "the service answered with something that is not JSON");
  return body;
}

function showError(failure) {
  const box = $("error");
  const parts = [];
  if (failure.status) parts.push(el("strong", "status", String(failure.status)), " ");
  parts.push(el("span", "message", failure.message));
  if (failure.field) parts.push(" ", el("span", "field", "field: ", el("code", "", failure.field)));
  if (failure.retryAfter) parts.push(" ", el("span", "retry", `retry in ${failure.retryAfter} s`));
  if (failure.requestId) parts.push(el("small", "request-id", `request id ${failure.requestId}`));
  box.replaceChildren(...parts);
  box.hidden = false;
  if (failure.status === 401) {
    $("auth").hidden = false;
    $("key").focus();
  }
}

function clearError() {
  $("error").hidden = true;
  $("error").replaceChildren();
}

async function loadModels() {
  try {
    const listing = await api("v1/models", { headers: apiHeaders(false) });
    state.models = new Map(listing.models.map((m) => [m.name, m]));
    const options = listing.models.map((m) => new Option(`${m.name} (${m.task})`, m.name));
    $("model").replaceChildren(...options);
    $("model").value = state.models.has(listing.default) ? listing.default : listing.models[0]?.name || "";
    clearError();
    countChars();
    return true;
  } catch (failure) {
    $("model").replaceChildren(new Option("no models listed", ""));
    showError(failure);
    return false;
  }
}

function countChars() {
  const used = Array.from($("text").value).length; // code points, as the service counts them
  const limit = state.models.get($("model").value)?.limits?.max_text_chars;
  const count = $("count");
  const n = (x) => x.toLocaleString("en");
  count.textContent = limit ? `${n(used)} / ${n(limit)} characters` : `${n(used)} characters`;
  const over = limit !== undefined && used > limit;
  count.classList.toggle("over", over);
  if (over) count.textContent += " (over the limit: the service will refuse it)";
}

const shellQuote = (s) => `'${s.replaceAll("'", "'\\''")}'`;

function curlCommand(url, json) {
  const lines = [`curl -sS ${shellQuote(url)}`, "-H 'Content-Type: application/json'"];
  if (sessionStorage.getItem(KEY)) lines.push('-H "Authorization: Bearer $TAGGER_API_KEY"');
  lines.push(`-d ${shellQuote(json)}`);
  return lines.join(" \\\n  ");
}

async function tag() {
  const model = $("model").value;
  if (!model) return;
  const text = $("text").value;
  const json = JSON.stringify({ texts: [text], scores: true });
  const path = `v1/models/${encodeURIComponent(model)}/tag`;
  $("curl").textContent = curlCommand(new URL(path, document.baseURI).href, json);
  const seq = ++state.seq; // answers to requests sent before the latest are dropped
  busy(true);
  const started = performance.now();
  try {
    const answer = await api(path, { method: "POST", headers: apiHeaders(true), body: json });
    if (seq !== state.seq) return;
    state.last = { text, answer, ms: Math.round(performance.now() - started) };
    clearError();
    render();
  } catch (failure) {
    if (seq !== state.seq) return;
    state.last = null;
    showError(failure);
    $("result").replaceChildren();
    $("legend").replaceChildren();
    $("status").textContent = "No result: see the error above.";
    $("raw").textContent = failure.body ? pretty(failure.body) : "";
  } finally {
    if (seq === state.seq) busy(false);
  }
}

function busy(on) {
  $("result").setAttribute("aria-busy", String(on));
  $("tag").textContent = on ? "Tagging…" : "Tag";
}

function colour(label) {
  const labels = state.models.get(state.last.answer.model)?.span_labels || [];
  let index = labels.indexOf(label);
  if (index < 0) index = [...label].reduce((h, c) => h + c.codePointAt(0), 0);
  return `c${index % PALETTE}`;
}

const fixed = (score) => score.toFixed(2);

function pretty(value, pad = "") {
  // JSON with a line per field, but a list of plain values (tokens, tags, scores, offsets) or a span on one line
  const plain = (v) => v === null || typeof v !== "object";
  const values = (v) => (Array.isArray(v) ? v : Object.values(v));
  const flat = (v) => plain(v) || values(v).every((x) => plain(x) || (Array.isArray(x) && x.every(plain)));
  if (flat(value)) return JSON.stringify(value);
  const inner = `${pad}  `;
  const list = Array.isArray(value);
  const items = list
    ? value.map((v) => inner + pretty(v, inner))
    : Object.entries(value).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${pretty(v, inner)}`);
  const [open, close] = list ? "[]" : "{}";
  return items.length ? `${open}\n${items.join(",\n")}\n${pad}${close}` : open + close;
}

function token(result, i, cut, threshold, title) {
  const [start, end] = result.offsets[i];
  const node = el("span", "tok", cut(start, end));
  const score = result.scores?.[i];
  if (score !== undefined) {
    node.classList.toggle("low", score <= threshold);
    node.title = `${title}score ${fixed(score)}`;
  }
  return node;
}

function drawSpans(box, result, cut, threshold) {
  // the text as it came, each entity's tokens in a <mark> with its label badge
  let at = 0;
  let i = 0;
  const upTo = (parent, end, title) => {
    for (; i < end; i++) {
      parent.append(cut(at, result.offsets[i][0]), token(result, i, cut, threshold, title));
      at = result.offsets[i][1];
    }
  };
  for (const span of [...result.spans].sort((a, b) => a.start - b.start)) {
    upTo(box, span.start, "");
    box.append(cut(at, result.offsets[span.start][0]));
    at = result.offsets[span.start][0];
    const inner = el("span", "ent-text");
    upTo(inner, span.end, `${span.label}, token `);
    const badge = el("span", "badge", span.label, " ", el("span", "score", fixed(span.score)));
    const mark = el("mark", `ent ${colour(span.label)}`, inner, badge);
    mark.classList.toggle("low", span.score <= threshold);
    mark.title = `${span.label}: "${span.text}", span score ${span.score}`;
    Object.assign(mark.dataset, { label: span.label, startChar: span.start_char, endChar: span.end_char });
    box.append(mark);
  }
  upTo(box, result.tokens.length, "");
}

function drawTokens(box, result, cut, threshold, spans) {
  // each token with its tag under it; the gaps between them as they were in the text
  let at = 0;
  result.tokens.forEach((_, i) => {
    const tagText = result.tags[i];
    const cell = el("span", "tt", token(result, i, cut, threshold, `${tagText}, `), el("span", "tag", tagText));
    if (spans && tagText !== "O") cell.classList.add(colour(tagText.slice(2)));
    box.append(cut(at, result.offsets[i][0]), cell);
    at = result.offsets[i][1];
  });
}

function render() {
  if (!state.last) return;
  const { text, answer, ms } = state.last;
  const result = answer.results[0];
  const chars = Array.from(text);
  const cut = (start, end) => chars.slice(start, end).join("");
  const threshold = Number($("threshold").value);
  const spans = Array.isArray(result.spans);
  const asSpans = spans && !$("every-tag").checked;
  const box = el("div", asSpans ? "text spans" : "text tokens");
  (asSpans ? drawSpans : drawTokens)(box, result, cut, threshold, spans);
  box.append(cut(result.offsets.at(-1)?.[1] ?? 0, chars.length));
  $("result").replaceChildren(result.tokens.length ? box : el("p", "muted", "(no tokens: the text is blank)"));
  const labels = spans ? state.models.get(answer.model)?.span_labels || [] : [];
  $("legend").replaceChildren(...labels.map((label) => el("span", `chip ${colour(label)}`, label)));
  const low = (result.scores || []).filter((s) => s <= threshold).length;
  const found = spans ? `, ${result.spans.length} entities` : "";
  $("status").textContent =
    `${answer.model} ${answer.version}: ${result.tokens.length} tokens${found}, ` +
    `${low} scored at or below ${fixed(threshold)} (${ms} ms)`;
  $("raw").textContent = pretty(answer);
}

async function copyCurl() {
  const button = $("copy");
  const command = $("curl").textContent;
  try {
    await navigator.clipboard.writeText(command);
    button.textContent = "Copied";
  } catch {
    // no clipboard API (plain http on another host): select the text, so Ctrl+C copies it
    const range = document.createRange();
    range.selectNodeContents($("curl"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    button.textContent = document.execCommand("copy") ? "Copied" : "Selected: press Ctrl+C";
  }
  setTimeout(() => (button.textContent = "Copy"), 2000);
}

async function useKey(event) {
  event.preventDefault();
  const key = $("key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  $("key").value = "";
  $("auth").hidden = true;
  clearError();
  if (state.models.size || (await loadModels())) await tag(); // what the key was asked for
}

function setUp() {
  $("form").addEventListener("submit", (event) => {
    event.preventDefault();
    tag();
  });
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      $("form").requestSubmit();
    }
  });
  $("text").addEventListener("input", countChars);
  $("model").addEventListener("change", () => {
    countChars();
    tag();
  });
  $("threshold").addEventListener("input", () => {
    $("threshold-value").textContent = fixed(Number($("threshold").value));
    render(); // the last answer again: no new request
  });
  $("every-tag").addEventListener("change", render);
  $("copy").addEventListener("click", copyCurl);
  $("auth").addEventListener("submit", useKey);
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    $("key").value = "";
  });
  countChars();
  loadModels().then((listed) => listed && tag()); // the example, tagged on arrival
}

setUp();

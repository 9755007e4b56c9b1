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

const state = { models: new Map(), last: null, seq: 0, corrections: false, edit: null };

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
  $("correct").hidden = !state.corrections || !result.tokens.length;
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
  if (state.models.size || (await loadModels())) {
    await probeCorrections();
    await tag(); // what the key was asked for
  }
}

// --- corrections: the editor and the review queue (when the service keeps corrections) --------------------

async function probeCorrections() {
  // the corrections routes answer 404 corrections_off unless the service names a database
  const model = $("model").value;
  if (!model) return;
  try {
    await api(`v1/models/${encodeURIComponent(model)}/review?limit=1`, { headers: apiHeaders(false) });
    state.corrections = true;
  } catch (failure) {
    state.corrections = failure.reason !== "corrections_off" && failure.status !== 404;
  }
  $("tabs").hidden = !state.corrections;
  render();
}

const spanModel = (model) => Array.isArray(state.models.get(model)?.span_labels);

function labelsOf(model) {
  // what the select offers: span labels (and O, no entity) for span models, the tag set otherwise
  const info = state.models.get(model);
  return spanModel(model) ? ["O", ...info.span_labels] : [...(info?.tags || [])];
}

function startCorrecting({ model, tokens, tags, text = null, offsets = null, reviewId = null }) {
  state.edit = { model, tokens, tags: [...tags], served: [...tags], text, offsets, reviewId, sel: null };
  state.edit.spans = spanModel(model);
  const options = labelsOf(model).map((l) => new Option(l === "O" && state.edit.spans ? "O (no entity)" : l, l));
  $("label").replaceChildren(...options);
  $("span-tools").hidden = !state.edit.spans;
  $("correct-title").textContent = reviewId ? `Correct review item ${reviewId} (${model})` : `Correct (${model})`;
  $("correct-status").textContent = "";
  $("correct-panel").hidden = false;
  drawEditor();
  $("correct-panel").scrollIntoView({ block: "nearest" });
}

function entityRange(i) {
  // [start, end] (inclusive) of the entity token i is in, or null for O
  const tags = state.edit.tags;
  if (tags[i] === "O") return null;
  let a = i;
  while (a > 0 && tags[a].startsWith("I-") && tags[a - 1] !== "O" && tags[a - 1].slice(2) === tags[a].slice(2)) a--;
  let b = i;
  while (b + 1 < tags.length && tags[b + 1] === `I-${tags[i].slice(2)}`) b++;
  return [a, b];
}

function drawEditor() {
  const { tokens, tags, served, spans, sel } = state.edit;
  const buttons = tokens.map((word, i) => {
    const tag = tags[i];
    const shown = spans ? (tag.startsWith("B-") ? tag.slice(2) : "") : tag;
    const node = el("button", "tk", el("span", "tw", word), el("span", "tg", shown));
    node.type = "button";
    Object.assign(node.dataset, { i: String(i), tag });
    if (spans && tag !== "O") node.classList.add("ent", colourOf(state.edit.model, tag.slice(2)));
    if (sel && i >= sel[0] && i <= sel[1]) node.classList.add("sel");
    if (tag !== served[i]) node.classList.add("changed");
    node.setAttribute("aria-pressed", String(Boolean(sel && i >= sel[0] && i <= sel[1])));
    node.title = `${word}: ${tag}${tag !== served[i] ? ` (was ${served[i]})` : ""}`;
    return node;
  });
  $("editor").replaceChildren(...buttons);
  for (const id of ["apply", "remove", "extend-left", "extend-right", "shrink-left", "shrink-right"]) {
    $(id).disabled = !sel;
  }
}

function colourOf(model, label) {
  const labels = state.models.get(model)?.span_labels || [];
  let index = labels.indexOf(label);
  if (index < 0) index = [...label].reduce((h, c) => h + c.codePointAt(0), 0);
  return `c${index % PALETTE}`;
}

function select(i, extend) {
  const edit = state.edit;
  if (extend && edit.sel) {
    edit.sel = [Math.min(edit.sel[0], i), Math.max(edit.sel[1], i)];
  } else {
    edit.sel = (edit.spans && entityRange(i)) || [i, i];
  }
  const tag = edit.tags[edit.sel[0]];
  $("label").value = edit.spans ? (tag === "O" ? "O" : tag.slice(2)) : tag;
  drawEditor();
}

function setRange(a, b, label) {
  // span models: the tokens a..b become one entity `label` (or O); a cut entity after it opens anew
  const tags = state.edit.tags;
  for (let i = a; i <= b; i++) tags[i] = label === "O" ? "O" : `${i === a ? "B" : "I"}-${label}`;
  if (b + 1 < tags.length && tags[b + 1].startsWith("I-")) tags[b + 1] = `B-${tags[b + 1].slice(2)}`;
}

function apply() {
  const edit = state.edit;
  if (!edit?.sel) return;
  const [a, b] = edit.sel;
  const label = $("label").value;
  if (edit.spans) setRange(a, b, label);
  else for (let i = a; i <= b; i++) edit.tags[i] = label;
  drawEditor();
}

function reshape(dStart, dEnd) {
  // extend (-1 start, +1 end) or shrink (+1 start, -1 end) the selected entity by a token, keeping its label
  const edit = state.edit;
  if (!edit?.sel) return;
  const range = entityRange(edit.sel[0]) || edit.sel;
  const label = edit.tags[range[0]] === "O" ? $("label").value : edit.tags[range[0]].slice(2);
  const a = range[0] + dStart;
  const b = range[1] + dEnd;
  if (a < 0 || b >= edit.tokens.length || a > b || label === "O") return;
  setRange(range[0], range[1], "O");
  setRange(a, b, label);
  edit.sel = [a, b];
  drawEditor();
}

function removeEntity() {
  const edit = state.edit;
  if (!edit?.sel) return;
  const range = entityRange(edit.sel[0]) || edit.sel;
  setRange(range[0], range[1], "O");
  edit.sel = range;
  $("label").value = "O";
  drawEditor();
}

async function submitCorrection() {
  const edit = state.edit;
  if (!edit) return;
  const body = { tokens: edit.tokens, tags: edit.tags };
  if (edit.text !== null && edit.offsets) Object.assign(body, { text: edit.text, offsets: edit.offsets });
  if (edit.reviewId) body.review_id = edit.reviewId;
  const by = $("corrected-by").value.trim();
  if (by) body.corrected_by = by;
  const status = $("correct-status");
  status.textContent = "Sending…";
  try {
    const path = `v1/models/${encodeURIComponent(edit.model)}/corrections`;
    const stored = await api(path, { method: "POST", headers: apiHeaders(true), body: JSON.stringify(body) });
    clearError();
    const changed = stored.tokens_changed === null ? "" : `, ${stored.tokens_changed} tags changed`;
    const conflict = stored.conflict ? " Another correction of these tokens disagrees: both are kept." : "";
    status.textContent = stored.created
      ? `Stored as correction ${stored.id}${changed}.${conflict}`
      : `Already stored, as correction ${stored.id}.${conflict}`;
    status.dataset.id = String(stored.id);
    if (edit.reviewId) loadReview();
  } catch (failure) {
    status.textContent = "Not stored: see the error above.";
    showError(failure);
  }
}

function showTab(review) {
  $("tab-tag").setAttribute("aria-selected", String(!review));
  $("tab-review").setAttribute("aria-selected", String(review));
  $("tag-view").hidden = review;
  $("review-view").hidden = !review;
  if (review) loadReview();
}

async function loadReview() {
  const model = $("model").value;
  const status = $("review-status");
  status.textContent = `Loading ${model}'s queue…`;
  try {
    const queue = await api(`v1/models/${encodeURIComponent(model)}/review?limit=50`, { headers: apiHeaders(false) });
    clearError();
    const items = queue.items.map((item) => {
      const shown = item.text ?? item.tokens.join(" ");
      const button = el("button", "quiet", "Correct");
      button.type = "button";
      button.dataset.id = String(item.id);
      button.addEventListener("click", () => {
        showTab(false);
        startCorrecting({ ...item, reviewId: item.id });
      });
      return el("li", "", el("span", "conf", fixed(item.confidence)), el("span", "rv-text", shown), button);
    });
    $("review-list").replaceChildren(...items);
    status.textContent = items.length
      ? `${model}: ${items.length} sentences, least confident first (confidence before each).`
      : `${model}: nothing waiting for review (the service keeps a share of what it tags: TAGGER_REVIEW_SAMPLE).`;
  } catch (failure) {
    status.textContent = "";
    showError(failure);
  }
}

function setUpCorrections() {
  $("correct").addEventListener("click", () => {
    const { text, answer } = state.last;
    const result = answer.results[0];
    startCorrecting({ model: answer.model, tokens: result.tokens, tags: result.tags, text, offsets: result.offsets });
  });
  $("editor").addEventListener("click", (event) => {
    const button = event.target.closest(".tk");
    if (button) select(Number(button.dataset.i), event.shiftKey);
  });
  $("apply").addEventListener("click", apply);
  $("remove").addEventListener("click", removeEntity);
  $("extend-left").addEventListener("click", () => reshape(-1, 0));
  $("extend-right").addEventListener("click", () => reshape(0, 1));
  $("shrink-left").addEventListener("click", () => reshape(1, 0));
  $("shrink-right").addEventListener("click", () => reshape(0, -1));
  $("submit-correction").addEventListener("click", submitCorrection);
  $("cancel-correction").addEventListener("click", () => {
    state.edit = null;
    $("correct-panel").hidden = true;
  });
  $("tab-tag").addEventListener("click", () => showTab(false));
  $("tab-review").addEventListener("click", () => showTab(true));
  $("review-refresh").addEventListener("click", loadReview);
}

function setUp() {
  setUpCorrections();
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
    if (!$("review-view").hidden) loadReview();
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
  loadModels().then(async (listed) => {
    if (!listed) return;
    await probeCorrections();
    tag(); // the example, tagged on arrival
  });
}

setUp();

"use strict";
// The view of a run: items as rows, variants side by side. Every text of the run (answers, prompts,
// reasons) is model output or user data, so it reaches the page only through textContent, never as HTML.
// The filters live in the address's fragment (#variants=disagree&label=female&paraphrase=1&q=word), so a
// filtered view can be linked to.
// Label mode (served page only: the static file has no server to store labels) lets a person label answers
// without seeing the readers' labels first: an answer's readers are hidden until this person has labelled it.
// Keys 1..k pick the spec's labels, u "unclear", n or the right arrow the next answer; each label is POSTed
// to the server with the token written into the page (server.py says why), and stored at once.
(async () => {
  const embedded = document.getElementById("data");
  const data = embedded ? JSON.parse(embedded.textContent) : await (await fetch("data.json")).json();
  const F = Object.fromEntries(data.fields.map((name, i) => [name, i]));
  const axes = data.axes.map((a) => a.column);
  const form = document.getElementById("filters");
  const tbody = document.querySelector("#answers tbody");
  const more = document.getElementById("more");
  const count = document.getElementById("count");
  const PAGE = 50; // items drawn at a time: 10,000 answers drawn at once would stall the page
  const NAMES = ["variants", "readers", "unparsed", "label", "q", "mode", ...axes];
  const token = form.elements.mode.dataset.token || null; // only the served page has one
  const mine = new Map(); // answer key -> this person's label
  const keys = new Map(data.run.labels.map((name, i) => [String(i + 1), name]));
  keys.set("u", "unclear");
  const status = el("span", "error");
  document.getElementById("labelling").append(" ", status);
  if (token) {
    const given = await (await fetch("labels")).json();
    for (const [key, value] of Object.entries(given.labels)) mine.set(key, value);
  }

  document.getElementById("title").textContent = `${data.run.name}: ${data.run.run_id}`;
  document.title = `evalrun view: ${data.run.name}`;

  const rows = new Map(data.items.map((item) => [item.id, { item, answers: [] }]));
  for (const a of data.answers) rows.get(a[F.item]).answers.push(a);

  let haystacks = null; // lower-cased text of each answer, made at the first search
  const prompts = data.prompts.map((p) => p.toLowerCase());
  function haystack(i) {
    if (haystacks === null) {
      haystacks = data.answers.map((a) => [a[F.response], a[F.reason], a[F.error], ...a[F.readings].flatMap(
        (r) => [r[2], ...(r[3] || [])])].filter(Boolean).join("\n").toLowerCase());
    }
    return haystacks[i];
  }
  const index = new Map(data.answers.map((a, i) => [a, i]));

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function state() {
    const s = {};
    for (const name of NAMES) {
      const field = form.elements[name];
      if (!field) continue;
      const value = field.type === "checkbox" ? (field.checked ? field.value : "") : field.value.trim();
      if (value) s[name] = value;
    }
    return s;
  }

  function keeps(a, s, itemHit) {
    if (s.variants && !a[F.variants_disagree]) return false;
    if (s.readers && !a[F.readers_disagree]) return false;
    if (s.unparsed && a[F.label] !== null) return false;
    if (s.label && a[F.label] !== s.label) return false;
    for (const c of axes) if (s[c] && a[F[c]] !== s[c]) return false;
    if (s.q && !itemHit) {
      const q = s.q.toLowerCase();
      if (!haystack(index.get(a)).includes(q) && !prompts[a[F.prompt]].includes(q)) return false;
    }
    return true;
  }

  function labelling() {
    return token !== null && form.elements.mode.checked;
  }

  function label(value) {
    return el("span", value === null ? "badge unparsed" : "badge", value === null ? "unparsed" : value);
  }

  function yours(a) {
    const line = el("div", "mine");
    line.append("your label: ", mine.has(a[F.answer]) ? label(mine.get(a[F.answer])) : "none yet", " ");
    for (const [key, name] of keys) {
      const button = el("button", null, `${key} ${name}`);
      button.type = "button";
      button.addEventListener("click", () => give(a, name));
      line.append(button);
    }
    return line;
  }

  function card(a) {
    const box = el("div", a === current ? "answer current" : "answer");
    const tags = axes.filter((c) => a[F[c]] !== null).map((c) => `${c} ${a[F[c]]}`);
    if (tags.length) box.append(el("div", "tags", tags.join(" · ")));
    const labelled = a[F.answer] !== null && labelling();
    // unlabelled by this person, in label mode: the readers' labels would lead them, so they wait
    const hidden = labelled && !mine.has(a[F.answer]);
    if (labelled) {
      box.append(yours(a));
      box.addEventListener("click", () => focus(a));
    }
    const line = el("div");
    if (hidden) line.append(el("span", "hidden-labels", "the readers' labels show once you have labelled it"));
    else line.append(label(a[F.label]), el("span", "reason", a[F.reason]));
    box.append(line);
    if (a[F.error]) box.append(el("div", "error", a[F.error]));
    box.append(el("pre", "response", a[F.response] ?? ""));
    cards.set(a, box);
    if (a[F.readings].length && !hidden) {
      const list = el("ul", "readers");
      for (const [reader, value, reason, judged] of a[F.readings]) {
        const li = el("li");
        li.append(`${reader}: `, label(value), el("span", "reason", reason));
        for (const [i, text] of (judged || []).entries()) {
          const d = el("details");
          d.append(el("summary", null, `${reader}'s own answer${judged.length > 1 ? ` ${i + 1}` : ""}`),
            el("pre", null, text));
          li.append(d);
        }
        list.append(li);
      }
      box.append(list);
    }
    const prompt = el("details");
    prompt.append(el("summary", null, "prompt"), el("pre", null, data.prompts[a[F.prompt]]));
    box.append(prompt);
    return box;
  }

  function row({ item, answers }) {
    const tr = el("tr");
    const th = el("th", "item");
    th.append(el("div", "item-id", item.id));
    if (item.gold !== null) th.append(el("div", "tags", `gold: ${item.gold}`));
    th.append(el("div", "item-text", item.text));
    tr.append(th);
    for (const v of data.variants) {
      const td = el("td");
      for (const a of answers) if (a[F.variant] === v) td.append(card(a));
      tr.append(td);
    }
    return tr;
  }

  let shown = [];
  let drawn = 0;
  let order = []; // the shown answers a person can label, in the order drawn
  let current = null; // the answer the keys label
  const cards = new Map(); // answer -> its drawn card
  let written = null; // the fragment apply wrote last
  function drawMore() {
    const part = document.createDocumentFragment();
    for (const r of shown.slice(drawn, drawn + PAGE)) part.append(row(r));
    drawn = Math.min(shown.length, drawn + PAGE);
    tbody.append(part);
    more.hidden = drawn >= shown.length;
  }

  function apply() {
    const s = state();
    const q = (s.q || "").toLowerCase();
    shown = [];
    let answers = 0;
    for (const { item, answers: all } of rows.values()) {
      const itemHit = Boolean(q) && `${item.id}\n${item.text ?? ""}`.toLowerCase().includes(q);
      const kept = all.filter((a) => keeps(a, s, itemHit));
      if (kept.length) shown.push({ item, answers: kept });
      answers += kept.length;
    }
    tbody.replaceChildren();
    cards.clear();
    order = shown.flatMap((r) => data.variants.flatMap((v) => r.answers.filter(
      (a) => a[F.variant] === v && a[F.answer] !== null)));
    if (!order.includes(current)) current = null;
    drawn = 0;
    drawMore();
    count.textContent = `${shown.length} of ${rows.size} items, ${answers} of ${data.answers.length} answers`;
    // location.replace, not history.replaceState, which a page opened from a file may not call
    written = new URLSearchParams(s).toString();
    if (written !== location.hash.slice(1)) location.replace(`#${written}`);
  }

  function fromHash() {
    const s = new URLSearchParams(location.hash.slice(1));
    for (const name of NAMES) {
      const field = form.elements[name];
      if (!field) continue;
      if (field.type === "checkbox") field.checked = s.get(name) === field.value;
      else field.value = s.get(name) ?? "";
    }
  }

  function redraw(a) {
    const old = cards.get(a);
    if (old) old.replaceWith(card(a));
  }

  function focus(a) {
    if (current !== null) cards.get(current)?.classList.remove("current");
    current = a;
    // the answer's row may not be drawn yet
    while (!cards.has(a) && drawn < shown.length) drawMore();
    const box = cards.get(a);
    box?.classList.add("current");
    box?.scrollIntoView({ block: "nearest" });
  }

  function next(unlabelled) {
    const from = current === null ? -1 : order.indexOf(current);
    const rest = order.slice(from + 1);
    const found = unlabelled ? rest.find((a) => !mine.has(a[F.answer])) : rest[0];
    if (found) focus(found);
    else status.textContent = unlabelled ? "no unlabelled answer after this one" : "the last answer shown";
  }

  async function give(a, name) {
    status.textContent = "";
    try {
      const response = await fetch("labels", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Evalrun-Token": token },
        body: JSON.stringify({ answer_key: a[F.answer], label: name }),
      });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    } catch (err) {
      status.textContent = `not stored: ${err.message}`;
      return;
    }
    mine.set(a[F.answer], name);
    redraw(a); // now with the readers' labels beside the person's
    focus(a);
    next(true);
  }

  document.addEventListener("keydown", (e) => {
    if (!labelling() || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target instanceof HTMLElement && e.target.closest("input[type=search], select, textarea")) return;
    const key = e.key.toLowerCase();
    if (key === "n" || e.key === "ArrowRight") {
      e.preventDefault();
      next(false);
    } else if (keys.has(key)) {
      e.preventDefault();
      if (current === null) next(true);
      else give(current, keys.get(key));
    }
  });

  const head = el("tr");
  head.append(el("th", "item", "item"), ...data.variants.map((v) => el("th", null, v)));
  document.querySelector("#answers thead").append(head);
  let typing = 0;
  form.addEventListener("input", (e) => {
    clearTimeout(typing);
    typing = setTimeout(apply, e.target.name === "q" ? 150 : 0);
  });
  form.addEventListener("submit", (e) => e.preventDefault());
  more.addEventListener("click", drawMore);
  window.addEventListener("hashchange", () => {
    if (location.hash.slice(1) === written) return; // apply's own change
    fromHash();
    apply();
  });
  fromHash();
  apply();
  // the first items are in the page: what bench/view.py times the view's opening to
  performance.mark("evalrun:drawn");
})();

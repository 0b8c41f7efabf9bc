// The page of `pt2serde view` / `diff --html` (pt2serde.cli.view_page inlines view_groups.js, then this file).
// Nothing in the model is trusted: every string reaches the DOM through textContent or
// setAttribute of a plain (non-URL, non-event) attribute, class names come from the tables
// below, maps keyed by model strings are Maps, and graph ids handed to dagre are prefixed.
"use strict";
(function () {
  const LIMIT = 200;       // the budget of things drawn at first (boxes, clusters, copies)
  const OPEN_LIMIT = 400;  // ... and after a click or a search opens groups (others close to stay within)
  const OPEN_DEPTH = 12;   // groups nested deeper than this start collapsed
  const DRAW_DEPTH = 16;   // open clusters nested deeper are drawn flat (dagre recurses once per level)
  const FANOUT = 8;        // a box with more users is drawn again next to each (no edges across the graph)
  const FANOUT_CAP = 24;   // ... up to this many users (and copies within LIMIT): else one "k users" box
  const WORK = 8000;       // dagre's work (boxes, ranks spanned by edges and clusters): widest clusters flat, then longest edges out
  const LABEL_MAX = 34;    // characters of a name drawn in a box (the panel shows all of it)
  const CHAR_W = 6.7, BOX_H = 26, SVGNS = "http://www.w3.org/2000/svg";
  const KINDS = new Map([["parameter", "parameter"], ["buffer", "buffer"], ["constant", "constant"],
    ["custom_obj", "custom object"], ["token", "token"], ["user_input", "user input"], ["op", "operator"],
    ["output", "output"]]);
  const STATUSES = new Map([["added", "added"], ["removed", "removed"], ["changed", "changed"]]);

  const { str, arr, obj, Group, groupTree, fitWork } = viewGroups;
  // A string from the file as the page shows it: every character of HIDDEN_RANGES (cli/term.py's table,
  // which view_page puts before this script) as a visible escape, as term.escape writes them for a terminal, and
  // a backslash as \\ (no forged escape). With the u flag a surrogate pair is one character: only lone ones match.
  const HIDDEN = new RegExp("[" + arr(HIDDEN_RANGES).map(([a, b]) => "\\u{" + a.toString(16) + "}-\\u{" + b.toString(16) + "}")
    .join("") + "\\\\]", "gu");
  const SHORT = new Map([["\n", "\\n"], ["\r", "\\r"], ["\t", "\\t"], ["\\", "\\\\"]]);
  const hex = (n, w) => n.toString(16).padStart(w, "0");
  const escCode = (n) => (n < 0x100 ? "\\x" + hex(n, 2) : n < 0x10000 ? "\\u" + hex(n, 4) : "\\U" + hex(n, 8));
  const escChar = (c) => SHORT.get(c) || escCode(c.codePointAt(0));
  const show = (v) => str(v).replace(HIDDEN, escChar);
  const showLines = (v) => str(v).split("\n").map(show).join("\n");   // a stack trace keeps its line ends
  // a shown text cut to LABEL_MAX code points, never inside an escape (each one unit) or a surrogate pair
  const UNITS = /\\(?:[\\nrt]|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})|[^]/gu;
  const width = (u) => (u.codePointAt(0) > 0xffff ? 1 : u.length);   // an escape is ASCII, a pair one point
  const clip = (s) => {
    const units = s.match(UNITS) || [];
    if (units.reduce((n, u) => n + width(u), 0) <= LABEL_MAX) return s;
    let out = "", used = 0;
    for (const u of units) { if ((used += width(u)) > LABEL_MAX - 1) break; out += u; }
    return out + "\u2026";
  };
  const kindClass = (k) => "k-" + (KINDS.has(k) ? k : "other");
  const statusOf = (s) => (STATUSES.has(s) ? s : null);
  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = show(text);
    return e;
  }
  function pre(text) { const e = el("pre"); e.textContent = showLines(text); return e; }
  function data(text) { return el("span", "data", text); }   // file text inside the page's own text
  function sv(tag, attrs) {  // attrs: our own numbers and constant names only
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }
  function table(headers, rows, rowClass) {
    const t = el("table"), head = el("tr");
    headers.forEach((h) => head.appendChild(el("th", "", h)));
    t.appendChild(head);
    rows.forEach((cells, i) => {
      const tr = el("tr", rowClass ? rowClass(i) : "");
      cells.forEach((c) => tr.appendChild(el("td", "mono", c)));
      t.appendChild(tr);
    });
    return t;
  }

  // ------------------------------------------------------------------ the model
  let model;
  try { model = obj(JSON.parse($("model").textContent)); } catch (e) { model = {}; }
  const isDiff = model.kind === "diff";
  const diff = obj(model.diff);
  const graphs = arr(model.graphs).map(obj);
  const { graphById, nodes, root, groups, nodeGroup, containers } = groupTree(graphs);
  const valueMaps = new Map(graphs.map((g) => [g, [g.values, g.values_a].map((v) => new Map(Object.entries(obj(v))))]));
  const valueLabel = (g, e) => str(valueMaps.get(g)[e.status === "removed" ? 1 : 0].get(str(e.value)) ?? "?");  // held once per graph

  // ------------------------------------------------------------------ what is visible
  const expanded = new Set(["root"]);
  function initialExpansion() {   // breadth first: shallow groups open while what is drawn stays bounded
    let shown = root.items.length;
    let level = root.items.filter((it) => it instanceof Group);
    while (level.length) {
      const next = [];
      for (const grp of level) {   // an open group is drawn as its cluster and its items
        if (shown + grp.items.length > LIMIT || grp.depth > OPEN_DEPTH) continue;
        expanded.add(grp.key); shown += grp.items.length;
        grp.items.forEach((it) => { if (it instanceof Group) next.push(it); });
      }
      level = next;
    }
  }
  initialExpansion();

  const narrow = new Map();   // open group key -> its one item drawn; its other items are one "k other items" box
  const shownItems = (grp) => (narrow.has(grp.key) ? [narrow.get(grp.key)] : grp.items);
  function unitOf(id) {   // the box that shows node `id`: itself, its outermost collapsed group, or an "other items" box
    let unit = "n:" + id, child = id;
    for (let p = nodeGroup.get(id); p; child = p, p = p.parent) {
      if (!expanded.has(p.key)) unit = "g:" + p.key;
      else if (narrow.has(p.key) && narrow.get(p.key) !== child) unit = "o:" + p.key;
    }
    return unit;
  }
  function openGroups() {   // the open groups that are drawn (their parents open too), outermost first
    const out = [root];
    for (let i = 0; i < out.length; i += 1) {
      shownItems(out[i]).forEach((it) => { if (it instanceof Group && expanded.has(it.key)) out.push(it); });
    }
    return out;
  }
  // what an open group draws: its cluster and its items (a narrowed one: one item and the "other items" box)
  const cost = (open) => open.reduce((sum, grp) => sum + 1 + (narrow.has(grp.key) ? 2 : grp.items.length), 0);
  // Open `grp` and its parents; then close other groups, innermost first, until what is drawn fits OPEN_LIMIT;
  // if the path alone is over, its outer levels are narrowed (outermost first) to the next level on the path.
  function open(grp) {
    narrow.clear();
    const path = [];
    for (let p = grp; p; p = p.parent) { path.unshift(p); expanded.add(p.key); }
    const keep = new Set(path);
    for (let drawn = openGroups(); cost(drawn) > OPEN_LIMIT; drawn = openGroups()) {
      const other = drawn.filter((g) => !keep.has(g)).sort((a, b) => b.depth - a.depth)[0];
      if (other === undefined) break;
      expanded.delete(other.key);
    }
    for (let i = 0; i + 1 < path.length && cost(openGroups()) > OPEN_LIMIT; i += 1) {
      if (path[i].items.length > 2) narrow.set(path[i].key, path[i + 1]);
    }
  }
  function reveal(id) { open(nodeGroup.get(id)); }

  // ------------------------------------------------------------------ layout and drawing
  const svg = $("graph"), viewport = $("viewport");
  const view = { k: 1, x: 0, y: 0, w: 0, h: 0 };
  let layout = null, selected = null, boxes = new Map();

  function boxWidth(lines) { return Math.max(56, Math.max(...lines.map((l) => l.length)) * CHAR_W + 18); }
  function nodeLines(n) {
    const name = show(n.name), op = show(n.op);
    return op && op !== name ? [clip(op), clip(name)] : [clip(name)];
  }

  function build() {
    const g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
    g.setGraph({ rankdir: "TB", nodesep: 18, ranksep: 34, edgesep: 8, marginx: 24, marginy: 24 });
    g.setDefaultEdgeLabel(() => ({}));
    const queue = [[root, null, 0]];   // [group, its cluster's key, drawn depth]: no recursion
    for (let q = 0; q < queue.length; q += 1) {
      const [grp, cluster, depth] = queue[q];
      if (narrow.has(grp.key)) {
        const lines = [grp.items.length - 1 + " other items"];
        g.setNode("o:" + grp.key, { group: grp, lines, width: boxWidth(lines), height: BOX_H });
        if (cluster) g.setParent("o:" + grp.key, cluster);
      }
      for (const it of shownItems(grp)) {
        let key, label;
        if (it instanceof Group) {
          key = "g:" + it.key;
          if (expanded.has(it.key) && it.items.length) {
            if (depth >= DRAW_DEPTH) { queue.push([it, cluster, depth]); continue; }   // drawn flat
            g.setNode(key, { cluster: it, label: clip(show(it.label)) });
            if (cluster) g.setParent(key, cluster);
            queue.push([it, key, depth + 1]);
            continue;
          }
          const lines = [clip(show(it.label)), it.count + (it.count === 1 ? " node" : " nodes")];
          label = { group: it, lines, width: boxWidth(lines), height: BOX_H + 14 };
        } else {
          key = "n:" + it;
          const lines = nodeLines(nodes.get(it).n);
          label = { id: it, lines, width: boxWidth(lines), height: lines.length > 1 ? BOX_H + 14 : BOX_H };
        }
        g.setNode(key, label);
        if (cluster) g.setParent(key, cluster);
      }
    }
    const edges = new Map();
    const addEdge = (u, v, text, calls) => {
      if (u === v || !g.hasNode(u) || !g.hasNode(v)) return;
      const k = JSON.stringify([u, v]), e = edges.get(k);
      if (e) { e.count += 1; return; }
      edges.set(k, { u, v, text, calls, count: 1 });
    };
    graphs.forEach((gr) => arr(gr.edges).forEach((e0) => {
      const e = obj(e0), a = str(e.from), b = str(e.to);
      if (nodes.has(a) && nodes.has(b)) addEdge(unitOf(a), unitOf(b), valueLabel(gr, e), false);
    }));
    groups.forEach((grp) => {   // a subgraph hangs from the node that calls it
      if (grp.kind !== "subgraph" || grp.owner === null) return;
      const first = arr(obj(graphById.get(grp.gid)).nodes).map((n) => str(obj(n).id)).find((id) => nodeGroup.has(id));
      const to = expanded.has(grp.key) && first !== undefined ? unitOf(first) : "g:" + grp.key;
      addEdge(unitOf(grp.owner), to, "calls", true);
    });
    const fanout = new Map();
    edges.forEach((e) => { if (!e.calls) fanout.set(e.u, (fanout.get(e.u) || 0) + 1); });
    // a source with many users: a copy next to each (while copies fit LIMIT), else one "k users" box
    let spare = LIMIT - g.nodeCount(), dropped = 0;
    const copied = new Set();
    Array.from(fanout).filter(([, k]) => k > FANOUT).sort((a, b) => a[1] - b[1]).forEach(([u, k]) => {
      if (k <= FANOUT_CAP && k <= spare) { copied.add(u); spare -= k; return; }
      const lines = ["\u2192 " + k + " users"], v = "u:" + u;
      g.setNode(v, { ref: u, lines, width: boxWidth(lines), height: BOX_H });
      if (g.parent(u)) g.setParent(v, g.parent(u));
      g.setEdge(u, v, { text: "", calls: false, width: 0, height: 0, labelpos: "c" });
    });
    const drawn = [];
    edges.forEach((e) => {
      if (!e.calls && fanout.get(e.u) > FANOUT && !copied.has(e.u)) { dropped += 1; return; }
      const text = clip(show(e.text)) + (e.count > 1 ? " \u00d7" + e.count : "");
      let u = e.u;
      if (copied.has(e.u)) {   // a copy of the source next to this user
        const src = g.node(e.u), lines = ["\u2197 " + (src.group ? src.lines[0] : src.lines[src.lines.length - 1])];
        u = "r:" + JSON.stringify([e.u, e.v]);
        g.setNode(u, { ref: e.u, lines, width: boxWidth(lines), height: BOX_H });
        if (g.parent(e.v)) g.setParent(u, g.parent(e.v));
      }
      drawn.push([u, e.v, { text, calls: e.calls, width: text.length * 6 + 6, height: 14, labelpos: "c" }]);
    });
    dropped += fitWork(g, drawn, WORK);
    drawn.forEach(([u, v, label]) => g.setEdge(u, v, label));
    g.graph().dropped = dropped;
    dagre.layout(g);
    return g;
  }

  function draw(g) {
    viewport.replaceChildren();
    boxes = new Map();
    const layers = ["clusters", "edges", "labels", "nodes"].map(() => viewport.appendChild(sv("g")));
    const clusters = g.nodes().filter((k) => g.node(k).cluster).sort((a, b) => g.node(a).cluster.depth - g.node(b).cluster.depth);
    for (const k of clusters) {
      const c = g.node(k), grp = c.cluster;
      const box = sv("g", { class: "cluster" + (grp.kind === "subgraph" ? " subgraph" : "") });
      box.appendChild(sv("rect", { x: c.x - c.width / 2, y: c.y - c.height / 2, width: c.width, height: c.height, rx: 6 }));
      const t = sv("text", { x: c.x - c.width / 2 + 6, y: c.y - c.height / 2 + 12 });
      t.textContent = "\u25be " + c.label;
      t.addEventListener("click", (ev) => { ev.stopPropagation(); if (!dragged) { expanded.delete(grp.key); refresh("g:" + grp.key); } });
      box.appendChild(t);
      layers[0].appendChild(box);
    }
    for (const ref of g.edges()) {
      const e = g.edge(ref), pts = e.points || [];
      if (!pts.length) continue;
      const d = pts.map((p, i) => (i ? "L" : "M") + p.x.toFixed(1) + " " + p.y.toFixed(1)).join(" ");
      layers[1].appendChild(sv("path", { d, class: "edge" + (e.calls ? " calls" : ""), "marker-end": "url(#arrow)" }));
      if (e.x === undefined || !e.text) continue;
      const lab = sv("g", { class: "elabel" });
      lab.appendChild(sv("rect", { x: e.x - e.width / 2, y: e.y - 7, width: e.width, height: 14, rx: 3 }));
      const t = sv("text", { x: e.x, y: e.y + 3.5, "text-anchor": "middle" });
      t.textContent = e.text;   // shown and clipped when laid out
      lab.appendChild(t);
      layers[2].appendChild(lab);
    }
    for (const k of g.nodes()) {
      const b = g.node(k);
      if (b.cluster) continue;
      const src = b.ref ? g.node(b.ref) : b, target = b.ref || k;
      let cls = b.ref ? "ref" : "node";
      if (src.group) cls += src.group.kind === "subgraph" ? " subgraph" : " group";
      else {
        const n = nodes.get(src.id).n, st = statusOf(n.status);
        cls += " " + kindClass(n.kind) + (st ? " st-" + st : "");
      }
      const box = sv("g", { class: cls, transform: "translate(" + (b.x - b.width / 2) + "," + (b.y - b.height / 2) + ")" });
      box.dataset.key = k;
      box.appendChild(sv("rect", { width: b.width, height: b.height, rx: src.group ? 8 : 4 }));
      b.lines.forEach((line, i) => {
        const t = sv("text", { x: b.width / 2, y: 17 + 14 * i, "text-anchor": "middle" });
        t.textContent = line;
        box.appendChild(t);
      });
      const tip = sv("title");
      tip.textContent = show(src.group ? src.group.label : nodes.get(src.id).n.name);
      box.appendChild(tip);
      box.addEventListener("click", (ev) => { ev.stopPropagation(); if (!dragged) clickBox(target); });
      layers[3].appendChild(box);
      if (!b.ref) boxes.set(k, box);
    }
    const shown = g.nodes().filter((k) => !g.node(k).cluster && !g.node(k).ref).length;
    const cut = g.graph().dropped;
    $("status").textContent = nodes.size + " nodes in " + graphs.length + " graph(s); " + shown + " boxes shown" +
      (cut ? "; " + cut + " edges not drawn (too many to lay out: click a box to see its inputs)" : "") +
      (g.graph().flat ? "; " + g.graph().flat + " open groups drawn without their frame (too many to lay out)" : "");
  }

  function refresh(focusKey) {
    layout = build();
    draw(layout);
    if (selected && boxes.has(unitKey(selected))) mark(unitKey(selected), "selected");
    if (focusKey) centreOn(focusKey);
  }
  function unitKey(sel) { return sel.startsWith("n:") ? unitOf(sel.slice(2)) : sel; }

  function clickBox(k) {
    if (k.startsWith("g:") || k.startsWith("o:")) {   // a collapsed group, or the other items of a narrowed one
      const grp = groups.get(k.slice(2));
      open(grp);
      const first = grp.items[0];
      refresh(first === undefined ? null : first instanceof Group ? "g:" + first.key : unitOf(first));
      selectGroup(grp);
    } else {
      select(k.slice(2));
    }
  }
  function mark(key, cls) {
    viewport.querySelectorAll(".node." + cls).forEach((e) => e.classList.remove(cls));
    const b = boxes.get(key);
    if (b) b.classList.add(cls);
  }

  // ------------------------------------------------------------------ zoom and pan
  function apply() { viewport.setAttribute("transform", "translate(" + view.x + "," + view.y + ") scale(" + view.k + ")"); }
  function size() { const r = svg.getBoundingClientRect(); return [r.width || 800, r.height || 600]; }
  function extent() {   // the laid-out graph's size (an empty graph has none)
    const gr = layout ? layout.graph() : {}, ok = (v) => (Number.isFinite(v) && v > 0 ? v : 1);
    return [ok(gr.width), ok(gr.height)];
  }
  function fit() {
    const [gw, gh] = extent(), [w, h] = size();
    view.k = Math.min(2, Math.max(0.02, Math.min(w / gw, h / gh) * 0.95));
    view.x = (w - gw * view.k) / 2; view.y = Math.max(4, (h - gh * view.k) / 2);
    apply();
  }
  function firstView() {   // fit, unless that makes the boxes unreadable: then the top, at a readable size
    fit();
    if (view.k >= 0.35) return;
    const [gw] = extent(), [w] = size();
    view.k = 0.8; view.x = Math.max(10, (w - gw * view.k) / 2); view.y = 10;
    apply();
  }
  function zoom(f, cx, cy) {
    const [w, h] = size(), px = cx === undefined ? w / 2 : cx, py = cy === undefined ? h / 2 : cy;
    const k = Math.min(8, Math.max(0.02, view.k * f));
    view.x = px - (px - view.x) * (k / view.k); view.y = py - (py - view.y) * (k / view.k); view.k = k;
    apply();
  }
  function centreOn(key) {
    const b = layout && layout.hasNode(key) ? layout.node(key) : null;
    if (!b) return;
    const [w, h] = size();
    if (view.k < 0.6) view.k = 1;
    view.x = w / 2 - b.x * view.k; view.y = h / 2 - b.y * view.k;
    apply();
  }
  let drag = null, dragged = false;
  svg.addEventListener("pointerdown", (ev) => { drag = { x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y }; dragged = false; });
  svg.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 4) dragged = true;
    if (dragged) { view.x = drag.vx + dx; view.y = drag.vy + dy; apply(); }
  });
  window.addEventListener("pointerup", () => { drag = null; setTimeout(() => { dragged = false; }, 0); });
  svg.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = svg.getBoundingClientRect();
    zoom(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
  }, { passive: false });
  $("zoom-in").addEventListener("click", () => zoom(1.25));
  $("zoom-out").addEventListener("click", () => zoom(0.8));
  $("fit").addEventListener("click", fit);

  // ------------------------------------------------------------------ the side panel
  const TABS = [["node", "Node"], ["signature", "Signature"], ["ranges", "Ranges"], ["weights", "Weights"],
    ["files", "Extra files"], ["verdict", "Verdict"]].concat(isDiff ? [["changes", "Changes"]] : []);
  const tabButtons = new Map();
  let current = "node";
  const body = $("panel-body");
  function showTab(name) {
    current = name;
    tabButtons.forEach((b, k) => b.classList.toggle("on", k === name));
    body.replaceChildren();
    PANELS.get(name)();
  }
  function section(title) { body.appendChild(el("h3", "", title)); }
  function dl(pairs) {
    const d = el("dl");
    pairs.forEach(([k, v]) => { d.appendChild(el("dt", "", k)); d.appendChild(el("dd", "", v)); });
    body.appendChild(d);
  }
  function list(items, cls) {
    const ul = el("ul");
    items.forEach((it) => ul.appendChild(it instanceof Node ? el("li").appendChild(it).parentNode : el("li", cls ? cls(it) : "", it)));
    body.appendChild(ul);
  }
  let panelGroup = null;
  function nodePanel() {
    if (panelGroup) {
      const grp = panelGroup;
      section(grp.kind === "subgraph" ? "subgraph" : grp.kind === "run" ? "run of nodes" : "module");
      dl([["name", grp.label], ["nodes", String(grp.count)]]);
      const b = el("button", "", expanded.has(grp.key) ? "collapse" : "expand");
      b.addEventListener("click", () => {
        if (expanded.has(grp.key)) expanded.delete(grp.key); else open(grp);
        refresh("g:" + grp.key); showTab("node");
      });
      body.appendChild(b);
      return;
    }
    if (selected === null) { body.appendChild(el("p", "", "Click a node to see its target, arguments and metadata.")); return; }
    const id = selected.slice(2), { n, gid } = nodes.get(id), meta = obj(n.meta);
    const g = graphById.get(gid) || {};
    section("node");
    const pairs = [["name", str(n.name)], ["kind", KINDS.get(str(n.kind)) || str(n.kind)], ["op", str(n.op)],
      ["target", str(n.target)], ["graph", str(g.title) || gid]];
    if (isDiff) pairs.push(["status", str(n.status) || "same"], ["change", str(n.change)]);
    dl(pairs);
    const args = arr(n.args).map(obj);
    if (args.length) { section("arguments"); body.appendChild(table(["name", "value"], args.map((a) => [str(a.name), str(a.text)]))); }
    const mods = arr(n.module).map(str), types = arr(n.module_types).map(str);
    if (mods.length) { section("nn_module_stack"); body.appendChild(table(["path", "type"], mods.map((m, i) => [m, types[i] || ""]))); }
    const sf = arr(meta.source_fn).map(str);
    if (sf.length) { section("source_fn"); list(sf); }
    if (Array.isArray(meta.torch_fn)) { section("torch_fn"); list(meta.torch_fn.map(str)); }
    if (meta.stack_trace !== null && meta.stack_trace !== undefined) { section("stack trace"); body.appendChild(pre(meta.stack_trace)); }
    const other = Object.entries(obj(meta.other));
    if (other.length) { section("other meta"); body.appendChild(table(["field", "value"], other.map(([k, v]) => [k, str(v)]))); }
    const subs = arr(n.subgraphs).map(str).filter((s) => containers.has(s) && containers.get(s) !== root);
    if (subs.length) {
      section("subgraphs");
      subs.forEach((s) => {
        const grp = containers.get(s), b = el("button", "", grp.label);
        b.addEventListener("click", () => { open(grp); refresh("g:" + grp.key); });
        body.appendChild(b);
      });
    }
  }
  function bothSides(part, render) {   // render(value, title) of B's part, then of A's (verdict_a, ...) if a diff holds it
    const a = isDiff ? model[part + "_a"] : null, both = a !== null && a !== undefined;
    render(model[part], (t) => (both ? t + " of B (" + str(diff.b) + ")" : t));
    if (both) render(a, (t) => t + " of A (" + str(diff.a) + ")");
  }
  function signaturePanel() {
    bothSides("signature", (sig0, of) => {
      const sig = obj(sig0); section(of("inputs"));
      body.appendChild(table(["kind", "name", "target", "persistent"], arr(sig.inputs).map(obj).map((s) =>
        [KINDS.get(str(s.kind)) || str(s.kind), str(s.name), str(s.target), s.persistent === null || s.persistent === undefined ? "" : str(s.persistent)])));
      section(of("outputs")); body.appendChild(table(["kind", "name", "target"], arr(sig.outputs).map(obj).map((s) => [str(s.kind), str(s.name), str(s.target)])));
    });
    if (isDiff && arr(diff.signature).length) { section("signature changes"); list(arr(diff.signature)); }
  }
  const bound = (v, inf) => (v === null || v === undefined ? inf : str(v));
  const rangeText = (s, cls) => {   // the file's text in spans of its own: it cannot reorder ours
    const e = el("span", cls);
    e.append(data(s.name), " in [", data(bound(s.min, "-\u221e")), ", ", data(bound(s.max, "\u221e")), "]");
    return e;
  };
  function rangesPanel() {
    bothSides("symbols", (symbols, of) => {
      const syms = arr(symbols).map(obj); section(of("range constraints"));
      if (syms.length) list(syms.map(rangeText)); else body.appendChild(el("p", "", "no symbolic dimensions"));
    });
    if (isDiff && arr(diff.ranges).length) { section("range changes"); list(arr(diff.ranges)); }
  }
  const weightStatus = new Map(Object.entries(obj(diff.weights)).map(([k, v]) => [k, statusOf(v)]));
  const storages = arr(model.storages).map((s) => arr(obj(s).names).map(str));
  function sharedWith(w) {   // at most 5 other names viewing w's storage (model.storages), then "and N more"
    const names = (Number.isInteger(w.shared) && storages[w.shared]) || [];
    const others = names.slice(0, 6).filter((n) => n !== str(w.name)).slice(0, 5), rest = Math.max(0, names.length - 1 - others.length);
    return others.concat(rest ? ["and " + rest + " more"] : []).join(", ");
  }
  function weightsPanel() {
    const ws = arr(model.weights).map(obj);
    section("weights (" + ws.length + ")");
    const st = (w) => weightStatus.get(str(w.name)) || statusOf(w.status);
    body.appendChild(table(["name", "section", "dtype", "shape", "bytes", "storage", "shared with"].concat(isDiff ? ["diff"] : []),
      ws.map((w) => [str(w.name), str(w.section), str(w.dtype), "[" + arr(w.shape).map(str).join(", ") + "]",
        w.nbytes === null || w.nbytes === undefined ? "" : str(w.nbytes), str(w.storage),
        sharedWith(w)].concat(isDiff ? [st(w) || ""] : [])),
      (i) => (st(ws[i]) ? "st-" + st(ws[i]) : "")));
  }
  const filesPanel = () => bothSides("extra_files", (files, of) => {
    const fs = arr(files).map(obj); section(of("extra files") + " (" + fs.length + ")");
    body.appendChild(table(["name", "size"], fs.map((f) => [str(f.name), str(f.size)])));
  });
  function verdictPanel() {
    bothSides("verdict", (v0, of) => {
      const v = obj(v0); section(of("verdict")); dl([["valid", v.valid === true ? "yes" : "no"], ["readable by", arr(v.readable_by).map(str).join(", ") || "none"]]);
      body.appendChild(pre(v.text));
    });
    section("notes");
    const notes = arr(model.notes);
    if (!notes.length) body.appendChild(el("p", "", "none"));
    list(notes);
    section("programs");
    list(arr(model.programs));
  }
  function changesPanel() {
    const ch = arr(diff.changes).map(obj);
    section("changes (" + ch.length + ")");
    body.appendChild(table(["section", "change"], ch.map((c) => [str(c.section), str(c.text)])));
  }
  const PANELS = new Map([["node", nodePanel], ["signature", signaturePanel], ["ranges", rangesPanel],
    ["weights", weightsPanel], ["files", filesPanel], ["verdict", verdictPanel], ["changes", changesPanel]]);
  TABS.forEach(([k, label]) => {
    const b = el("button", "", label);
    b.dataset.tab = k;
    b.addEventListener("click", () => { panelGroup = panelGroup && k === "node" ? panelGroup : null; showTab(k); });
    $("tabs").appendChild(b); tabButtons.set(k, b);
  });

  function select(id) {
    selected = "n:" + id; panelGroup = null;
    mark(unitOf(id), "selected");
    showTab("node");
  }
  function selectGroup(grp) { panelGroup = grp; showTab("node"); }

  // ------------------------------------------------------------------ search
  let hits = [], hitAt = -1, lastQuery = null;
  function search() {
    const q = $("search").value.trim().toLowerCase();
    if (!q) { hits = []; $("hits").textContent = ""; return; }
    if (q !== lastQuery) {
      lastQuery = q; hitAt = -1;
      hits = [];
      nodes.forEach(({ n }, id) => {
        const seen = [n.name, n.op, n.target].flatMap((v) => [str(v), show(v)]);   // raw, and as shown
        if (seen.some((t) => t.toLowerCase().includes(q))) hits.push(id);
      });
    }
    if (!hits.length) { $("hits").textContent = "no match"; return; }
    hitAt = (hitAt + 1) % hits.length;
    const id = hits[hitAt];
    reveal(id);
    refresh("n:" + id);
    select(id);
    mark("n:" + id, "hit");
    $("hits").textContent = (hitAt + 1) + " of " + hits.length;
  }
  $("search").addEventListener("keydown", (ev) => { if (ev.key === "Enter") search(); });

  // ------------------------------------------------------------------ header, legend, diff bar
  function header() {
    $("title").textContent = show(model.title);
    $("subtitle").append("program ", data(model.program));
    if (model.torch_version) $("subtitle").append(" \u00b7 written by torch ", data(model.torch_version));
    $("subtitle").append(" \u00b7 ", data(model.generator));
    const legend = $("legend");
    const swatch = (cls, text) => { const s = el("span"); s.appendChild(el("span", "sw " + cls)); s.appendChild(document.createTextNode(text)); legend.appendChild(s); };
    KINDS.forEach((label, k) => swatch(kindClass(k), label));
    swatch("group", "module (click to expand)");
    swatch("subgraph", "subgraph");
    if (isDiff) STATUSES.forEach((label, k) => swatch("st-" + k, label));
    arr(model.symbols).map(obj).forEach((s) => legend.appendChild(rangeText(s, "legend-sym")));
    if (isDiff) {
      const bar = $("diffbar");
      const line = bar.appendChild(el("div"));
      line.append(data(diff.a), " \u2192 ", data(diff.b), ": " + arr(diff.changes).length + " change(s)");
      const ul = el("ul");
      arr(diff.signature).concat(arr(diff.ranges)).forEach((t) => ul.appendChild(el("li", "st-changed", str(t))));
      bar.appendChild(ul);
    }
  }

  try {
    header();
    refresh(null);
    firstView();
    showTab("node");
  } catch (e) {
    $("status").textContent = "";
    $("status").appendChild(el("span", "error", "cannot draw this model: " + str(e && e.message)));
    document.body.dataset.error = "1";
  }
  document.body.dataset.readyMs = performance.now().toFixed(1);
  document.body.dataset.ready = "1";
})();

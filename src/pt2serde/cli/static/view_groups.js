// The groups of the page of `pt2serde view` (pt2serde.cli.view_page inlines this file before
// view.js, in the same script): the model's graphs and nodes, and the tree of groups they are
// drawn in (subgraphs, modules, runs of CHUNK items). Keys are built so that no string from the
// file can forge one (JSON strings end where they end), depth is capped for subgraphs and modules
// together, and chains of modules holding one module each are one group.
"use strict";
const viewGroups = (function () {
  const CHUNK = 200;       // a group with more direct items is split into runs of this many
  const MAX_DEPTH = 64;    // groups (subgraph nesting and module stacks together) deeper than this are cut
  const str = (v) => (typeof v === "string" ? v : v === null || v === undefined ? "" : JSON.stringify(v));
  const arr = (v) => (Array.isArray(v) ? v : []);
  const obj = (v) => (v && typeof v === "object" && !Array.isArray(v) ? v : {});

  class Group {
    constructor(key, label, kind, parent) {
      this.key = key; this.label = label; this.kind = kind; this.parent = parent;
      this.items = []; this.count = 0; this.depth = parent ? parent.depth + 1 : 0; this.owner = null; this.gid = null;
    }
  }

  // The graphs of a model (a list of objects, as read), their nodes and the tree of groups.
  function groupTree(graphs) {
    const graphById = new Map();
    graphs.forEach((g) => { if (!graphById.has(str(g.id))) graphById.set(str(g.id), g); });
    const nodes = new Map();       // node id -> {n, gid}
    const callers = new Map();     // graph id -> first node id that calls it
    graphs.forEach((g) => arr(g.nodes).forEach((n0) => {
      const n = obj(n0), id = str(n.id);
      if (nodes.has(id)) return;
      nodes.set(id, { n, gid: str(g.id) });
      arr(n.subgraphs).forEach((s) => { if (!callers.has(str(s))) callers.set(str(s), id); });
    }));
    const topId = graphs.length ? str(graphs[0].id) : "";
    const root = new Group("root", "", "root", null);
    const groups = new Map([["root", root]]);
    const nodeGroup = new Map();   // node id -> innermost group
    const containers = new Map();  // graph id -> the group holding its nodes

    function ownerOf(gid) {
      const g = graphById.get(gid), o = g ? str(g.owner) : "";
      if (o && nodes.has(o) && nodes.get(o).gid !== gid) return o;
      const c = callers.get(gid);
      return c !== undefined && nodes.get(c).gid !== gid ? c : null;
    }
    function containerOf(gid, depth) {
      if (gid === topId) return root;
      if (containers.has(gid)) return containers.get(gid);
      const owner = depth < MAX_DEPTH ? ownerOf(gid) : null;
      containers.set(gid, root);   // a cycle of owners ends here, at the top
      const parent = owner === null ? root : placeOf(owner, depth + 1);
      const g = graphById.get(gid) || {};
      const grp = new Group("s:" + JSON.stringify(gid), str(g.title) || gid, "subgraph", parent);
      grp.owner = owner; grp.gid = gid;
      parent.items.push(grp); groups.set(grp.key, grp); containers.set(gid, grp);
      return grp;
    }
    function placeOf(id, depth) {
      if (nodeGroup.has(id)) return nodeGroup.get(id);
      const { n, gid } = nodes.get(id);
      let grp = containerOf(gid, depth);
      const outer = new Set(grp.owner !== null ? arr(nodes.get(grp.owner).n.module).map(str) : []);
      arr(n.module).slice(0, MAX_DEPTH).map(str).forEach((m) => {
        if (outer.has(m) || grp.depth >= MAX_DEPTH) return;   // one cap on subgraphs and modules together
        const key = grp.key + JSON.stringify(m);   // a JSON string ends where it ends: no separator to forge
        let sub = groups.get(key);
        if (!sub) { sub = new Group(key, m, "module", grp); grp.items.push(sub); groups.set(key, sub); }
        grp = sub;
      });
      grp.items.push(id); nodeGroup.set(id, grp);
      return grp;
    }
    nodes.forEach((_, id) => placeOf(id, 0));
    graphById.forEach((_, gid) => containerOf(gid, 0));   // subgraphs nobody calls: at the top

    // A weight (parameter, buffer, constant, custom object) outside any module goes into the
    // innermost group holding all its users: drawn next to them, collapsed with them, and no
    // long edge from the top of the graph (long edges are what makes a layout slow).
    const WEIGHTS = new Set(["parameter", "buffer", "constant", "custom_obj"]);
    function lineage(grp) { const out = []; for (let p = grp; p; p = p.parent) out.unshift(p); return out; }
    const users = new Map();
    graphs.forEach((g) => arr(g.edges).forEach((e0) => {
      const e = obj(e0), a = str(e.from), b = str(e.to);
      if (a !== b && nodes.has(a) && nodes.has(b) && WEIGHTS.has(nodes.get(a).n.kind)) {
        if (!users.has(a)) users.set(a, []);
        users.get(a).push(b);
      }
    }));
    const moved = new Map();   // weight id -> its new group
    users.forEach((to, id) => {
      const home = nodeGroup.get(id);
      if (home !== root && home.kind !== "subgraph") return;   // it has a module of its own
      let common = null;
      for (const b of to) {
        const line = lineage(nodeGroup.get(b));
        if (common === null) { common = line; continue; }
        let i = 0;
        while (i < common.length && i < line.length && common[i] === line[i]) i += 1;
        common = common.slice(0, i);
      }
      const target = common && common.length ? common[common.length - 1] : home;
      if (target === home || !common.includes(home)) return;
      nodeGroup.set(id, target); moved.set(id, target);
    });
    if (moved.size) {   // each moved weight first in its new group, gone from its old one
      const first = new Map();
      moved.forEach((grp, id) => { if (!first.has(grp)) first.set(grp, []); first.get(grp).push(id); });
      groups.forEach((grp) => { grp.items = (first.get(grp) || []).concat(grp.items.filter((it) => !moved.has(it))); });
    }

    function chunk(grp) {   // too many direct items: runs of CHUNK, nested while still too many
      let level = 0;
      while (grp.items.length > CHUNK) {
        const runs = [];
        for (let i = 0; i < grp.items.length; i += CHUNK) {
          const part = grp.items.slice(i, i + CHUNK);
          const run = new Group(grp.key + "#" + level + "." + i, "", "run", grp);
          run.items = part;
          part.forEach((it) => { if (it instanceof Group) it.parent = run; else nodeGroup.set(it, run); });
          run.label = "items " + (i + 1) + "\u2013" + (i + part.length);
          groups.set(run.key, run); runs.push(run);
        }
        grp.items = runs; level += 1;
      }
    }
    Array.from(groups.values()).forEach(chunk);
    // A chain of modules each holding only the next is one group, labelled "a.b.c" (full paths: the innermost).
    groups.forEach((grp) => {
      if (grp.kind !== "module" || !groups.has(grp.key)) return;
      for (let c = grp.items[0]; grp.items.length === 1 && c instanceof Group && c.kind === "module"; c = grp.items[0]) {
        grp.label = c.label.startsWith(grp.label + ".") ? c.label : grp.label + "." + c.label;
        grp.items = c.items;
        c.items.forEach((it) => { if (it instanceof Group) it.parent = grp; else nodeGroup.set(it, grp); });
        groups.delete(c.key);
      }
    });
    groups.forEach((grp) => { let d = 0; for (let p = grp.parent; p; p = p.parent) d += 1; grp.depth = d; });
    nodeGroup.forEach((grp) => { for (let p = grp; p; p = p.parent) p.count += 1; });
    return { graphById, nodes, callers, topId, root, groups, nodeGroup, containers };
  }
  // dagre's work, estimated with longest-path ranks: a box per node, two per rank an edge spans (one, and one
  // more for its label) and two per rank an open cluster spans (its left and right borders; the nesting graph
  // adds a top and a bottom rank per level it is nested in). While over `budget`, the clusters costing most
  // are drawn flat (their items go to the enclosing cluster), then the longest edges are left out. `drawn` ([u, v, label], edges not yet in g) is trimmed in place; returns
  // how many edges were left out, and sets g.graph().flat to how many clusters were drawn flat.
  function fitWork(g, drawn, budget) {
    const rank = new Map(), indeg = new Map(), out = new Map();
    g.nodes().forEach((k) => { indeg.set(k, 0); out.set(k, []); });
    g.edges().concat(drawn.map(([v, w]) => ({ v, w }))).forEach(({ v, w }) => { out.get(v).push(w); indeg.set(w, indeg.get(w) + 1); });
    const ready = g.nodes().filter((k) => indeg.get(k) === 0);
    ready.forEach((k) => rank.set(k, 0));
    for (let i = 0; i < ready.length; i += 1) {
      const r = rank.get(ready[i]);
      out.get(ready[i]).forEach((w) => {
        rank.set(w, Math.max(rank.get(w) || 0, r + 1));
        indeg.set(w, indeg.get(w) - 1);
        if (indeg.get(w) === 0) ready.push(w);
      });
    }
    const range = new Map();   // cluster -> [lowest, highest] rank of the boxes inside it
    g.nodes().forEach((k) => {
      if (g.node(k).cluster) return;
      const r = rank.get(k) || 0;
      for (let p = g.parent(k); p; p = g.parent(p)) {
        const [lo, hi] = range.get(p) || [r, r];
        range.set(p, [Math.min(lo, r), Math.max(hi, r)]);
      }
    });
    const span = ([u, v]) => 2 * Math.max(1, (rank.get(v) || 0) - (rank.get(u) || 0));
    const depth = (c) => { let d = 0; for (let p = g.parent(c); p; p = g.parent(p)) d += 1; return d; };
    const border = Array.from(range, ([c, [lo, hi]]) => [2 * (hi - lo + 1 + 2 * depth(c)), c]).sort((a, b) => b[0] - a[0]);
    let work = g.nodeCount() + drawn.reduce((sum, e) => sum + span(e), 0) + border.reduce((sum, [w]) => sum + w, 0);
    g.graph().flat = 0;
    for (const [w, c] of border) {
      if (work <= budget) break;
      g.children(c).forEach((k) => g.setParent(k, g.parent(c)));
      g.removeNode(c); work -= w + 1; g.graph().flat += 1;
    }
    if (work <= budget) return 0;
    const order = drawn.map((e, i) => [span(e), i]).sort((a, b) => b[0] - a[0]);
    const gone = new Set();
    for (const [sp, i] of order) {
      if (work <= budget) break;
      if (drawn[i][2].calls) continue;
      gone.add(i); work -= sp;
    }
    const kept = drawn.filter((_, i) => !gone.has(i));
    drawn.length = 0; kept.forEach((e) => drawn.push(e));
    return gone.size;
  }
  return { str, arr, obj, Group, groupTree, fitWork };
})();

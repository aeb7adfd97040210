// The mesh map page: HTML, CSS and the browser script, served by cli/map/server.ts with the
// cytoscape bundle from node_modules (no CDN: the page works offline). Kept as strings so
// they ship inside dist/ with the rest of the CLI. The script polls /graph.json, keeps the
// graph's positions while only counts change, and lays it out again only when workloads or
// edges appear or go. Everything from the mesh is written with textContent, never as HTML.

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mtun mesh map</title>
<link rel="stylesheet" href="map.css">
<link rel="icon" href="data:,">
</head>
<body>
<header>
  <h1>mtun mesh map</h1>
  <span id="status" role="status">loading…</span>
  <ul class="legend" aria-label="legend">
    <li><i class="mtls"></i>mTLS, allowed</li>
    <li><i class="plaintext"></i>plaintext</li>
    <li><i class="denied"></i>denied by policy</li>
    <li><i class="refused"></i>refused / failed</li>
    <li><b class="mesh"></b>in the mesh</li>
    <li><b class="nonmesh"></b>not in the mesh</li>
  </ul>
</header>
<main>
  <div id="graph" aria-label="graph of workloads and connections"></div>
  <aside id="detail" aria-live="polite"><p class="hint">Hover or click a workload or a connection for its detail.</p></aside>
</main>
<section id="list">
  <h2>Connections in the window</h2>
  <table id="edges">
    <thead><tr><th>from</th><th>to</th><th>security</th><th>verified source identity</th><th>allowed</th><th>denied</th><th>refused</th><th>deciding policy</th><th>bytes (in / out)</th><th>conn/s</th><th>tunnel set-up</th></tr></thead>
    <tbody></tbody>
  </table>
  <p id="agents"></p>
</section>
<script src="cytoscape.min.js"></script>
<script src="map.js"></script>
</body>
</html>
`;

export const PAGE_CSS = `
:root { --mtls: #2e7d32; --plain: #ef6c00; --deny: #c62828; --refused: #8e24aa; --ink: #1d2330; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--ink); background: #f6f7f9; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 16px; padding: 8px 16px; background: #fff; border-bottom: 1px solid #dde; }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 15px; margin: 8px 0; }
#status { color: #556; }
#status.stale { color: var(--deny); font-weight: 600; }
.legend { display: flex; flex-wrap: wrap; gap: 12px; list-style: none; margin: 0 0 0 auto; padding: 0; font-size: 12px; }
.legend i { display: inline-block; width: 26px; height: 0; margin-right: 5px; vertical-align: middle; border-top: 3px solid; }
.legend i.mtls { border-color: var(--mtls); }
.legend i.plaintext { border-color: var(--plain); border-top-style: dashed; }
.legend i.denied { border-color: var(--deny); border-top-width: 4px; }
.legend i.refused { border-color: var(--refused); border-top-style: dotted; }
.legend b { display: inline-block; width: 14px; height: 12px; margin-right: 5px; vertical-align: middle; border: 2px solid #1565c0; border-radius: 3px; background: #e3f0fd; }
.legend b.nonmesh { border: 2px dashed #777; background: #eee; }
main { display: flex; height: 62vh; min-height: 360px; }
#graph { flex: 1; background: #fff; border-right: 1px solid #dde; }
#detail { width: 340px; overflow: auto; padding: 10px 14px; background: #fff; font-size: 13px; }
#detail h3 { margin: 4px 0 8px; font-size: 14px; word-break: break-all; }
#detail dl { display: grid; grid-template-columns: max-content 1fr; gap: 3px 10px; margin: 0; }
#detail dt { color: #667; }
#detail dd { margin: 0; word-break: break-all; }
.hint { color: #778; }
#list { padding: 4px 16px 16px; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 12.5px; }
th, td { border-bottom: 1px solid #e4e6ea; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #eef0f4; font-weight: 600; }
tr.denied td:first-child { border-left: 4px solid var(--deny); }
tr.refused td:first-child { border-left: 4px solid var(--refused); }
tr.plaintext td:first-child { border-left: 4px solid var(--plain); }
tr.mtls td:first-child { border-left: 4px solid var(--mtls); }
tr.selected { background: #fff7d6; }
td.id { font-family: ui-monospace, monospace; font-size: 11.5px; word-break: break-all; }
#agents { color: #667; font-size: 12px; }
`;

export const PAGE_JS = String.raw`(function () {
  'use strict';
  var POLL_MS = 2000;
  var COLORS = { mtls: '#2e7d32', plaintext: '#ef6c00', denied: '#c62828', refused: '#8e24aa' };
  var cy = cytoscape({
    container: document.getElementById('graph'),
    minZoom: 0.1,
    maxZoom: 3,
    style: [
      { selector: 'node', style: { label: 'data(label)', 'font-size': 12, 'text-valign': 'center', 'text-halign': 'center', shape: 'round-rectangle', height: 26, padding: '8px', 'min-zoomed-font-size': 6, 'background-color': '#e3f0fd', 'border-width': 2, 'border-color': '#1565c0', color: '#1d2330' } },
      { selector: 'node[w]', style: { width: 'data(w)' } },
      { selector: 'node[mesh = "nonmesh"]', style: { 'background-color': '#eeeeee', 'border-color': '#777', 'border-style': 'dashed' } },
      { selector: 'node[mesh = "unknown"]', style: { 'background-color': '#f5f5f5', 'border-color': '#999', 'border-style': 'dotted' } },
      { selector: 'node[kind = "namespace"]', style: { shape: 'round-rectangle', 'background-color': '#f7f8fb', 'background-opacity': 1, 'border-color': '#c5cad6', 'border-width': 1, 'border-style': 'solid', label: 'data(label)', 'text-valign': 'top', 'text-halign': 'center', 'font-size': 13, 'font-weight': 'bold', color: '#556', padding: '18px' } },
      { selector: 'node[?idle]', style: { opacity: 0.55 } },
      { selector: 'edge', style: { 'curve-style': 'bezier', 'target-arrow-shape': 'triangle', 'arrow-scale': 1.1, width: 'data(width)', 'line-color': 'data(color)', 'target-arrow-color': 'data(color)', label: 'data(label)', 'font-size': 10.5, 'text-rotation': 'autorotate', 'text-background-color': '#fff', 'text-background-opacity': 0.85, 'text-background-padding': '2px', color: 'data(color)', 'min-zoomed-font-size': 7 } },
      { selector: 'edge[status = "plaintext"]', style: { 'line-style': 'dashed' } },
      { selector: 'edge[status = "refused"]', style: { 'line-style': 'dotted' } },
      { selector: ':selected', style: { 'overlay-color': '#f5b400', 'overlay-opacity': 0.25, 'overlay-padding': 6 } }
    ]
  });
  var state = { updates: 0, graph: null, shape: '', selected: null, failures: 0, lastUpdateMs: 0, lastLayoutMs: 0 };
  window.mtunMap = { cy: cy, state: state };

  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    if (n < 1073741824) return (n / 1048576).toFixed(1) + ' MiB';
    return (n / 1073741824).toFixed(2) + ' GiB';
  }
  function policyText(e) {
    if (!e.policies.length) return e.lastError ? e.lastError.code : '-';
    return e.policies.map(function (p) { return p.verdict + ' by ' + (p.policy === '-' ? 'no policy (default)' : p.policy) + ' ×' + p.count; }).join('; ');
  }
  function securityText(e) {
    if (e.status === 'refused' && e.allowed === 0 && !e.sourcePrincipal) return 'none (refused before any tunnel)';
    return e.security === 'mutual_tls' ? 'mTLS' : 'plaintext';
  }
  function edgeLabel(e) {
    if (e.status === 'denied') return 'DENY ×' + e.denied;
    if (e.status === 'refused') return 'refused ×' + e.failed + (e.lastError ? ' (' + e.lastError.code + ')' : '');
    return (e.security === 'mutual_tls' ? 'mTLS' : 'plaintext') + ' ×' + e.opened + (e.denied ? ' · ' + e.denied + ' denied' : '');
  }
  function el(tag, text, cls) {
    var x = document.createElement(tag);
    if (text !== undefined) x.textContent = String(text);
    if (cls) x.className = cls;
    return x;
  }
  function showDetail(title, rows) {
    var d = document.getElementById('detail');
    d.replaceChildren(el('h3', title));
    var dl = el('dl');
    rows.forEach(function (r) {
      if (r[1] === undefined || r[1] === null || r[1] === '') return;
      dl.append(el('dt', r[0]), el('dd', r[1]));
    });
    d.append(dl);
  }
  function edgeRows(e) {
    return [
      ['status', e.status],
      ['security', securityText(e) === 'mTLS' ? 'mutual TLS (HBONE)' : securityText(e)],
      ['source identity', e.sourcePrincipal || 'none verified'],
      ['destination identity', e.destinationPrincipal],
      ['service', e.services.join(', ')],
      ['connections', e.opened + ' opened, ' + e.active + ' open now'],
      ['allowed', e.allowed],
      ['denied', e.denied],
      ['refused / failed', e.failed],
      ['decided by', policyText(e)],
      ['last error', e.lastError ? e.lastError.code + ': ' + e.lastError.message : ''],
      ['bytes from client', bytes(e.bytesFromClient)],
      ['bytes to client', bytes(e.bytesToClient)],
      ['rate', e.connectionsPerSecond.toFixed(3) + ' conn/s, ' + bytes(Math.round(e.bytesPerSecond)) + '/s'],
      ['tunnel set-up', e.setupMs ? e.setupMs.mean.toFixed(1) + ' ms mean, ' + e.setupMs.max.toFixed(1) + ' ms max (' + e.setupMs.count + ')' : ''],
      ['last seen', new Date(e.lastSeen).toLocaleTimeString()],
      ['reported by', e.reportedBy.join(', ')]
    ];
  }
  function nodeRows(n) {
    return [
      ['namespace', n.namespace],
      ['kind', n.kind],
      ['mesh', n.inMesh === true ? 'in the mesh (ambient)' : n.inMesh === false ? 'not in the mesh' : 'unknown address'],
      ['pods', n.pods],
      ['service accounts', n.serviceAccounts.join(', ')],
      ['nodes', n.nodes.join(', ')]
    ];
  }
  function show(ele) {
    if (ele.isEdge()) showDetail(ele.data('edge').source + ' → ' + ele.data('edge').target, edgeRows(ele.data('edge')));
    else if (ele.data('node')) showDetail(ele.data('node').id, nodeRows(ele.data('node')));
  }
  cy.on('mouseover', 'edge, node', function (ev) { if (!state.selected) show(ev.target); });
  cy.on('tap', 'edge, node', function (ev) { state.selected = ev.target.id(); show(ev.target); markRow(); });
  cy.on('tap', function (ev) { if (ev.target === cy) { state.selected = null; markRow(); } });

  function markRow() {
    document.querySelectorAll('#edges tbody tr').forEach(function (tr) {
      tr.classList.toggle('selected', tr.dataset.edge === state.selected);
    });
  }
  var ORDER = { denied: 0, refused: 1, plaintext: 2, mtls: 3 };
  var MAX_ROWS = 200; // the graph shows them all; the table lists what needs a look first
  function renderTable(g) {
    var body = document.querySelector('#edges tbody');
    var sorted = g.edges.slice().sort(function (a, b) {
      return ORDER[a.status] - ORDER[b.status] || (a.id < b.id ? -1 : 1);
    });
    var shown = sorted.slice(0, MAX_ROWS);
    if (state.selected && shown.every(function (e) { return e.id !== state.selected; })) {
      var sel = sorted.filter(function (e) { return e.id === state.selected; });
      shown = sel.concat(shown.slice(0, MAX_ROWS - 1));
    }
    var rows = shown.map(function (e) {
      var tr = el('tr', undefined, e.status);
      tr.dataset.edge = e.id;
      tr.append(
        el('td', e.source), el('td', e.target),
        el('td', securityText(e)),
        el('td', e.sourcePrincipal || 'none', 'id'),
        el('td', e.allowed), el('td', e.denied), el('td', e.failed),
        el('td', policyText(e)),
        el('td', bytes(e.bytesFromClient) + ' / ' + bytes(e.bytesToClient)),
        el('td', e.connectionsPerSecond.toFixed(3)),
        el('td', e.setupMs ? e.setupMs.mean.toFixed(1) + ' ms' : '-')
      );
      tr.addEventListener('click', function () {
        state.selected = e.id;
        cy.$(':selected').unselect();
        var ce = cy.getElementById(e.id);
        ce.select();
        show(ce);
        markRow();
      });
      return tr;
    });
    if (sorted.length > shown.length) {
      var more = el('tr');
      var td = el('td', (sorted.length - shown.length) + ' more connections are on the graph (this table lists denied, refused and plaintext ones first); click one there for its detail.');
      td.colSpan = 11;
      more.append(td);
      rows.push(more);
    }
    body.replaceChildren.apply(body, rows);
    markRow();
    var agents = g.agents.map(function (a) { return (a.node || a.url) + (a.ok ? ' ok' : ' unreachable: ' + a.error); });
    document.getElementById('agents').textContent = 'Agents: ' + agents.join('; ');
  }

  function update(g) {
    var started = performance.now();
    var used = {};
    g.edges.forEach(function (e) { used[e.source] = 1; used[e.target] = 1; });
    var want = {};
    var elements = [];
    g.nodes.forEach(function (n) {
      var ns = 'ns:' + n.namespace;
      if (!want[ns]) { want[ns] = 1; elements.push({ group: 'nodes', data: { id: ns, label: n.namespace, kind: 'namespace' } }); }
      want[n.id] = 1;
      var mesh = n.inMesh === true ? 'mesh' : n.inMesh === false ? 'nonmesh' : 'unknown';
      var text = n.workload + (mesh === 'nonmesh' ? ' (no mesh)' : '');
      elements.push({ group: 'nodes', data: { id: n.id, parent: ns, label: text, w: 16 + text.length * 7, mesh: mesh, kind: n.kind, idle: !used[n.id], node: n } });
    });
    // Workloads coming or going move the layout; new edges too while the graph is small (a
    // layout is quick there); in a large one a new edge is drawn where its ends already are.
    var shape = Object.keys(want).sort().join('\n');
    if (g.nodes.length <= 100) shape += '\n' + g.edges.map(function (e) { return e.id; }).sort().join('\n');
    g.edges.forEach(function (e) {
      want[e.id] = 1;
      elements.push({ group: 'edges', data: { id: e.id, source: e.source, target: e.target, status: e.status, label: edgeLabel(e), color: COLORS[e.status], width: Math.min(8, 2 + Math.log10(1 + e.opened) * 1.5 + (e.status === 'denied' ? 1.5 : 0)), edge: e } });
    });
    cy.batch(function () {
      cy.elements().forEach(function (x) { if (!want[x.id()]) cy.remove(x); });
      elements.forEach(function (x) {
        var have = cy.getElementById(x.data.id);
        if (have.nonempty()) have.data(x.data);
        else cy.add(x);
      });
    });
    if (shape !== state.shape) {
      var first = state.shape === '';
      state.shape = shape;
      var laid = performance.now();
      // Random only the first time: later layouts start from where things are.
      cy.layout({ name: 'cose', animate: false, nodeDimensionsIncludeLabels: true, padding: 30, randomize: first, idealEdgeLength: function () { return 90; }, nodeRepulsion: function () { return 20000; }, nestingFactor: 0.8, gravity: 1.2, componentSpacing: 60, numIter: g.nodes.length > 100 ? 300 : 1000 }).run();
      cy.fit(undefined, 30);
      if (cy.zoom() > 1.6) { cy.zoom(1.6); cy.center(); }
      state.lastLayoutMs = performance.now() - laid;
    }
    if (state.selected) {
      var sel = cy.getElementById(state.selected);
      if (sel.nonempty()) show(sel);
    }
    renderTable(g);
    var ok = g.agents.filter(function (a) { return a.ok; }).length;
    var st = document.getElementById('status');
    st.className = ok < g.agents.length ? 'stale' : '';
    st.textContent = 'updated ' + new Date(g.at).toLocaleTimeString() + ' · agents ' + ok + '/' + g.agents.length + ' answering · ' + g.nodes.length + ' workloads · ' + g.edges.length + ' connections';
    state.graph = g;
    state.updates++;
    // How long drawing this answer took (the benchmark reports it; layouts dominate).
    state.lastUpdateMs = performance.now() - started;
  }

  function poll() {
    fetch('graph.json', { cache: 'no-store' })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (g) { state.failures = 0; update(g); })
      .catch(function (err) {
        state.failures++;
        var st = document.getElementById('status');
        st.className = 'stale';
        st.textContent = 'map server unreachable (' + err.message + '); retrying';
      })
      .then(function () { setTimeout(poll, POLL_MS); });
  }
  poll();
})();
`;

/* The page of `llmpath walk`: one section per step of the walk, in order.
 *
 * It reads the JSON block #walk-data (see llmcli/render/walk_page.py) and draws with
 * the shared components of components.js (window.LLM). When everything is drawn it
 * sets document.body.dataset.ready = "1"; an error is kept in dataset.error and shown.
 */
(function () {
  "use strict";

  const body = document.body;
  function fail(error) {
    const text = String((error && (error.stack || error.message)) || error);
    if (!body.dataset.error) body.dataset.error = text;
    const root = document.getElementById("walk") || body;
    const box = document.createElement("div");
    box.className = "fatal";
    box.textContent = "This page could not be drawn: " + text;
    root.prepend(box);
  }
  window.addEventListener("error", (e) => fail(e.error || e.message));

  try {
    draw();
    body.dataset.ready = "1";
  } catch (error) {
    fail(error);
  }

  function draw() {
    const L = window.LLM;
    if (!L) throw new Error("the shared components (components.js) did not load");
    const D = JSON.parse(document.getElementById("walk-data").textContent);
    const H = D.header;
    const el = L.el;
    const root = document.getElementById("walk");
    const N = D.labels.length;
    const quote = (s) => "\u2018" + s + "\u2019";
    const tokenName = (i) => "token " + i + " " + quote(D.labels[i]);
    const word = (id) => {
      const v = D.vocab[String(id)];
      return v ? v.label : "#" + id;
    };
    const pretty = (title) => String(title).replace(/->/g, "\u2192");

    // --- the header ---------------------------------------------------------------------

    const header = el("header", "top");
    header.append(el("h1", "", H.model + ": one text through the model, step by step"));
    header.append(el("p", "sub", H.architecture + " " + H.kind + " \u00b7 " + H.n_layers +
      " layers \u00d7 " + H.n_heads + " heads \u00b7 " + H.dtype + " on " + H.device));
    header.append(el("p", "sub", "Following " + tokenName(H.token) + " through layer " +
      H.layer + ", head " + H.head + ". Every step is computed by hand from the weights and " +
      "checked against the model's own tensors."));
    const checks = D.steps.reduce((n, s) => n + s.checks.length, 0);
    const failed = D.steps.reduce((n, s) => n + s.checks.filter((c) => !c.ok).length, 0);
    const verdict = el("div", "verdict " + (failed ? "bad" : "ok"),
      failed ? "\u2717 " + failed + " of " + checks + " checks fail" :
        "\u2713 all " + checks + " checks agree with the model");
    header.append(verdict);
    for (const note of H.notes) header.append(el("div", "note", "Note: " + note));
    root.append(header);

    const toc = el("nav", "toc");
    const list = el("ol");
    D.steps.forEach((s, k) => {
      const item = el("li");
      const link = el("a");
      link.href = "#step-" + s.step;
      link.append(el("span", "n", k + 1), document.createTextNode(s.step + " "));
      if (s.checks.length) link.append(el("span", s.ok ? "ok" : "bad", s.ok ? "\u2713" : "\u2717"));
      item.append(link);
      list.append(item);
    });
    toc.append(list);
    root.append(toc);

    // --- the parts of a step ------------------------------------------------------------

    function block(label, child) {
      const b = el("div", "block");
      if (label) b.append(el("div", "label", label));
      if (child) b.append(child);
      return b;
    }

    function kv(s) {
      const box = el("div", "kv");
      for (const [name, shape] of Object.entries(s.shapes)) {
        const span = el("span", "shape");
        span.append(el("b", "", name), document.createTextNode("[" + shape.join(", ") + "]"));
        span.title = "shape of " + name;
        box.append(span);
      }
      for (const [name, value] of Object.entries(s.facts)) {
        const span = el("span", "num");
        span.append(el("b", "", name.replace(/_/g, " ")));
        span.append(document.createTextNode(L.num(value, name === "id" || name === "followed")));
        box.append(span);
      }
      return box;
    }

    function matmuls(s) {
      const table = el("table", "mm");
      let total = 0;
      for (const m of s.matmuls) {
        const tr = el("tr");
        tr.append(el("td", "what", m.what));
        tr.append(el("td", "shape", "[" + m.left.join(", ") + "] @ [" + m.right.join(", ") + "]" +
          (m.times > 1 ? " \u00d7 " + m.times : "")));
        tr.append(el("td", "flops", L.group(m.flops) + " FLOPs"));
        tr.append(el("td", "si", L.si(m.flops) + "FLOP"));
        table.append(tr);
        total += m.flops;
      }
      if (s.matmuls.length > 1) {
        const tr = el("tr", "total");
        tr.append(el("td", "what", "total"), el("td", "shape", ""));
        tr.append(el("td", "flops", L.group(total) + " FLOPs"), el("td", "si", L.si(total) + "FLOP"));
        table.append(tr);
      }
      const note = el("p", "hint", "[a, b] @ [b, c] costs 2abc floating-point operations.");
      const b = block("matrix multiplications", table);
      b.append(note);
      return b;
    }

    function checkList(s) {
      const ul = el("ul", "checks");
      for (const c of s.checks) {
        const li = el("li", c.ok ? "" : "failed");
        li.append(el("span", c.ok ? "ok" : "bad", c.ok ? "\u2713" : "\u2717"));
        const what = el("span");
        what.append(el("span", "what", c.what), el("span", "against", "  vs " + c.against));
        li.append(what);
        const bound = c.tolerance * c.scale;
        const d = el("span", "delta", "max |\u0394| " + L.delta(c.max_abs_diff) +
          (c.ok ? " \u2264 " : " > ") + L.delta(bound));
        d.title = "tolerance " + c.tolerance + " \u00d7 scale " + L.num(c.scale) +
          " (the largest |value| of the model's tensor, at least 1)";
        li.append(d);
        ul.append(li);
      }
      const bad = s.checks.filter((c) => !c.ok).length;
      if (s.checks.length <= 8) return block("checks", ul);
      const details = el("details", "more");
      details.open = bad > 0;
      details.append(el("summary", "", s.checks.length + " checks: " +
        (bad ? bad + " fail" : "all agree with the model \u2713")));
      details.append(ul);
      return block("checks", details);
    }

    const TEXTUAL = /token|text|top-1/;
    const PLAIN = /^(id|index|j|rank|pair|layer|shift|query pos|key pos)$/;
    function cell(value, column) {
      if (Array.isArray(value)) return "[" + value.map((v) => L.num(v)).join(", ") + "]";
      if (typeof value === "string") return TEXTUAL.test(column) ? L.visible(value) : value;
      return L.num(value, PLAIN.test(column));
    }

    function table(t) {
      const box = el("div", "tablebox" + (t.rows.length > 14 ? " tall" : ""));
      const tab = el("table", "data");
      const head = el("tr");
      for (const c of t.columns) head.append(el("th", "", c));
      const thead = el("thead");
      thead.append(head);
      tab.append(thead);
      const tbody = el("tbody");
      for (const row of t.rows) {
        const tr = el("tr");
        row.forEach((v, k) => {
          const td = el("td", typeof v === "number" ? "n" : "", cell(v, t.columns[k]));
          tr.append(td);
        });
        tbody.append(tr);
      }
      tab.append(tbody);
      box.append(tab);
      return block(t.title, box);
    }

    function vector(v) {
      const box = el("div", "vec");
      const label = el("div", "vlabel", v.label);
      label.append(el("span", "", "first " + v.values.length + " of " + L.group(v.size) +
        (v.norm !== null && v.norm !== undefined ? " \u00b7 |v| = " + L.num(v.norm) : "")));
      box.append(label);
      box.append(L.strip(v.values, { width: 560, label: v.label }));
      return box;
    }

    function figure(title, note, child, extra) {
      const fig = el("figure", "fig");
      const cap = el("figcaption", "", title);
      if (note) cap.append(el("small", "", note));
      fig.append(cap, child);
      if (extra) fig.append(extra);
      return fig;
    }

    function largest(m) {
      let top = 0;
      for (const row of m) for (const v of row) if (v !== null && Math.abs(v) > top) top = Math.abs(v);
      return top;
    }

    // A matrix of a step: weights, scores or cosines, with its legend.
    function matrix(m) {
      const kind = m.kind === "weights" ? "weights" : m.kind === "similarity" ? "similarity" : "signed";
      const s = L.scale(kind, kind === "signed" ? largest(m.values) : 1);
      const masked = m.values.some((r) => r.some((v) => v === null));
      const heat = L.heatmap({ rows: m.rows, cols: m.cols, values: m.values, scale: s });
      const name = m.kind === "similarity" ? "cosine" : m.kind === "weights" ? "weight" : "value";
      return figure(m.title, "", heat, L.legend(s, name, { masked: masked ? "masked" : "" }));
    }

    // --- the pictures of particular steps ------------------------------------------------

    const A = D.attention;
    // Weights coloured by their square root show the small ones, which a long text has.
    const state = { head: A ? A.head : 0, sqrt: N > 16 };
    const weightScale = () => L.scale("weights", 1, { sqrt: state.sqrt });
    const weightTicks = () => (state.sqrt ? [0, 0.05, 0.25, 0.5, 1] : [0, 0.5, 1]);
    const weightName = () => (state.sqrt ? "weight (\u221a scale)" : "weight");
    const redraws = [];
    const pick = (h, sqrt) => {
      state.head = h;
      if (sqrt !== undefined) state.sqrt = sqrt;
      redraws.forEach((f) => f());
    };

    function headPicker() {
      const box = el("div", "pick");
      box.append(el("span", "", "head"));
      const buttons = [];
      for (let h = 0; h < A.scores.length; h++) {
        const b = el("button", h === A.head ? "followed" : "", h);
        b.type = "button";
        b.title = "show head " + h + (h === A.head ? " (the head the walk follows)" : "");
        b.addEventListener("click", () => pick(h));
        buttons.push(b);
        box.append(b);
      }
      box.append(el("span", "", "\u00a0\u00a0colour"));
      const scales = [false, true].map((sqrt) => {
        const b = el("button", "", sqrt ? "\u221aweight" : "weight");
        b.type = "button";
        b.title = sqrt ? "colour by the square root of the weight: small weights show" :
          "colour by the weight, 0 to 1";
        b.addEventListener("click", () => pick(state.head, sqrt));
        box.append(b);
        return b;
      });
      redraws.push(() => {
        buttons.forEach((b, h) => b.classList.toggle("on", h === state.head));
        scales.forEach((b, k) => b.classList.toggle("on", (k === 1) === state.sqrt));
      });
      return box;
    }

    function attentionFigures() {
      const box = el("div");
      const picker = headPicker();
      box.append(picker);
      const figs = el("div", "figs");
      box.append(figs);
      const causal = H.kind === "decoder";
      const masked = A.scores.some((m) => m.some((r) => r.some((v) => v === null)));
      function redraw() {
        const h = state.head;
        const scores = A.scores[h];
        // A masked weight is exactly 0: drawn grey, as the masked score is.
        const weights = A.weights[h].map((r, i) => r.map((v, j) => (scores[i][j] === null ? null : v)));
        const sc = L.scale("signed", largest(scores));
        const head = " (head " + h + ")";
        const tip = (kind, m) => (i, j) => {
          const v = m[i][j];
          const main = D.labels[i] + " \u2192 " + D.labels[j] + ": " +
            (v === null ? "masked" : kind === "weight" ? v.toFixed(4) : L.num(v));
          let sub = kind + ", query " + i + " \u2192 key " + j + head;
          if (v === null) {
            sub += " \u00b7 masked: " + (causal && j > i ? "a decoder does not see later tokens" :
              "outside the sliding window");
          }
          return [main, sub];
        };
        const mark = H.token;
        const scoreFig = figure("scores = q\u00b7k \u00d7 scale" + head,
          "rows: the query token; columns: the key token it looks at",
          L.heatmap({ rows: D.labels, cols: D.labels, values: scores, scale: sc, rowName: "query",
            colName: "key", tip: tip("score", scores), markRow: mark, maskedText: "" }),
          L.legend(sc, "score", { masked: masked ? "masked" : "" }));
        const maskValues = scores.map((r) => r.map((v) => (v === null ? null : 0)));
        const maskScale = { kind: "mask", lo: 0, hi: 1, colour: () => [236, 241, 247] };
        const maskFig = figure("mask", masked ? "added to the scores: 0 or \u2212\u221e" :
          "nothing is masked: every token sees every token",
          L.heatmap({ rows: D.labels, cols: D.labels, values: maskValues, scale: maskScale,
            labels: false, cell: L.clamp(Math.floor(L.cellSize(N) * 0.65), 3, 22),
            numbers: L.cellSize(N) * 0.65 >= 15, maskedText: "\u2212\u221e",
            tip: (i, j, v) => [D.labels[i] + " \u2192 " + D.labels[j] + ": " +
              (v === null ? "\u2212\u221e (masked)" : "0 (sees it)"), "query " + i + " \u2192 key " + j] }));
        const ws = weightScale();
        const weightFig = figure("weights = softmax of each row" + head,
          "each row sums to 1; the outlined row is the followed token",
          L.heatmap({ rows: D.labels, cols: D.labels, values: weights, scale: ws, rowName: "query",
            colName: "key", tip: tip("weight", weights), markRow: mark,
            maskedText: "" }),
          L.legend(ws, weightName(), { masked: masked ? "masked" : "", ticks: weightTicks() }));
        // The mask's grid level with the others' (it has no labels above it).
        const top = scoreFig.querySelector(".heat").geometry.y0;
        maskFig.querySelector(".heat").style.marginTop = top + "px";
        figs.replaceChildren(scoreFig, maskFig, weightFig);
      }
      redraws.push(redraw);
      return box;
    }

    function allHeads() {
      const box = el("div", "figs");
      const cs = Math.max(2, Math.min(14, Math.floor(112 / N)));
      const legendBox = el("div");
      const masks = A.weights.map((w, h) =>
        w.map((r, i) => r.map((v, j) => (A.scores[h][i][j] === null ? null : v))));
      function redraw() {
        const ws = weightScale();
        const minis = masks.map((m, h) => {
          const fig = el("figure", "mini" + (h === state.head ? " current" : ""));
          fig.append(el("figcaption", "", "head " + h + (h === A.head ? " \u00b7 followed" : "")));
          fig.append(L.heatmap({ values: m, scale: ws, labels: false, cell: cs, numbers: false,
            tip: (i, j, v) => [D.labels[i] + " \u2192 " + D.labels[j] + ": " +
              (v === null ? "0 (masked)" : v.toFixed(4)), "head " + h + ", query " + i +
              " \u2192 key " + j] }));
          fig.title = "click: open head " + h + " in the step above";
          fig.addEventListener("click", () => {
            pick(h);
            const target = document.getElementById("step-head");
            if (target) target.scrollIntoView({ behavior: "smooth", block: "start" });
          });
          return fig;
        });
        box.replaceChildren(...minis);
        legendBox.replaceChildren(L.legend(ws, weightName(), { ticks: weightTicks() }));
      }
      redraws.push(redraw);
      const b = block("attention weights of every head of layer " + A.layer, box);
      b.append(legendBox);
      return b;
    }

    function lensGrid() {
      const lens = D.lens;
      const rows = lens.ids.length;
      const prob = L.scale("prob", 1);
      const box = el("div", "lensbox");
      const tab = el("table", "lens");
      const thead = el("thead");
      const head = el("tr");
      head.append(el("th", "corner", "after layer \u2193"));
      for (let t = 0; t < N; t++) {
        const th = el("th", t === H.token ? "followed" : "", t + "\n" + L.short(D.labels[t], 8));
        th.title = tokenName(t);
        head.append(th);
      }
      thead.append(head);
      tab.append(thead);
      const tbody = el("tbody");
      for (let l = 0; l < rows; l++) {
        const tr = el("tr", l === rows - 1 ? "last" : "");
        const name = l === 0 ? "embeddings" : String(l - 1) + (l === rows - 1 ? " = output" : "");
        tr.append(el("th", "", name));
        for (let t = 0; t < N; t++) {
          const id = lens.ids[l][t][0];
          const p = lens.probs[l][t][0];
          const c = prob.colour(p);
          const td = el("td", "", L.short(word(id), 8));
          td.style.background = L.css(c);
          td.style.color = L.inkOn(c);
          td.dataset.l = l;
          td.dataset.t = t;
          tr.append(td);
        }
        tbody.append(tr);
      }
      tab.append(tbody);
      box.append(tab);
      let hovered = null;
      tab.addEventListener("mousemove", (e) => {
        const td = e.target.closest ? e.target.closest("td") : null;
        if (hovered && hovered !== td) hovered.classList.remove("hover");
        if (!td) { L.hideTip(); hovered = null; return; }
        hovered = td;
        td.classList.add("hover");
        const l = +td.dataset.l;
        const t = +td.dataset.t;
        const lines = lens.ids[l][t].map((id, k) =>
          (k + 1) + ". " + L.visible(word(id)).padEnd(14) + " " + lens.probs[l][t][k].toFixed(4));
        const where = l === 0 ? "the embeddings" : "layer " + (l - 1);
        L.showTip(e.clientX, e.clientY, lines.join("\n"), "next token after " + tokenName(t) +
          ", read off " + where + (l === rows - 1 ? " (the model's own prediction)" : ""));
      });
      tab.addEventListener("mouseleave", () => {
        if (hovered) hovered.classList.remove("hover");
        hovered = null;
        L.hideTip();
      });
      const b = block("logit lens: the top next token read off each layer, for every token", box);
      const hint = el("p", "hint", "Rows: the residual stream after each layer (first: the " +
        "embeddings; last: the model's output). Columns: the tokens of the text. Each cell " +
        "is the most likely next token there, shaded by its probability; hover for the top " +
        lens.ids[0][0].length + ".");
      b.insertBefore(hint, box);
      b.append(L.legend(prob, "probability of the top token", { ticks: [0, 0.5, 1] }));
      return b;
    }

    function nextBars() {
      const nx = D.next;
      const items = nx.ids.map((id, k) => ({
        label: L.visible(word(id)), value: nx.probs[k],
        text: (100 * nx.probs[k]).toFixed(2) + " %", sub: "ID " + id,
        title: "ID " + id + ": " + D.vocab[String(id)].token,
      }));
      return block("the next token after " + tokenName(nx.token), L.bars(items));
    }

    function pooledStrip() {
      const b = block("the pooled vector, all " + D.pooled.length + " numbers",
        L.strip(D.pooled, { width: 880, height: 26, label: "pooled vector" }));
      b.append(el("p", "hint", "Blue below 0, red above; hover for each number."));
      return b;
    }

    function tokensView(s) {
      return block("tokens and their IDs", L.tokens(D.labels, {
        sub: H.tokens.map((t) => t.id), special: H.tokens.map((t) => t.special), mark: H.token,
        title: (i) => "token " + i + ": " + H.tokens[i].token + ", bytes " +
          H.tokens[i].bytes + (H.tokens[i].special ? " (special)" : ""),
      }));
    }

    // --- one section per step ----------------------------------------------------------

    D.steps.forEach((s, k) => {
      const sec = el("section", "step");
      sec.id = "step-" + s.step;
      const h2 = el("h2");
      h2.append(el("span", "n", k + 1), document.createTextNode(pretty(s.title)));
      if (s.checks.length) {
        h2.append(el("span", "mark " + (s.ok ? "ok" : "bad"), s.ok ? "\u2713 checked" :
          "\u2717 a check fails"));
      }
      sec.append(h2);
      const explain = el("div", "explain");
      for (const line of s.explain) explain.append(el("p", "", line));
      sec.append(explain);
      if (Object.keys(s.shapes).length || Object.keys(s.facts).length) sec.append(kv(s));

      const attention = A && s.step === "head";
      if (s.step === "tokens" && N) sec.append(tokensView(s));
      if (attention) sec.append(block("q \u00b7 k, the mask, the softmax", attentionFigures()));
      if (A && s.step === "heads") sec.append(allHeads());
      if (s.step === "layers" && D.lens) sec.append(lensGrid());
      if (s.step === "output" && D.next) sec.append(nextBars());
      if (s.step === "output" && D.pooled) sec.append(pooledStrip());

      if (!attention && s.matrices.length) {
        const figs = el("div", "figs");
        for (const m of s.matrices) figs.append(matrix(m));
        sec.append(block("", figs));
      }
      if (s.vectors.length) {
        const vb = block("vectors (blue below 0, red above; hover for each number)");
        for (const v of s.vectors) vb.append(vector(v));
        sec.append(vb);
      }
      for (const t of s.tables) {
        const folded = (s.step === "output" && D.next && t.title === "next token") ||
          (s.step === "tokens");
        const tb = table(t);
        if (folded) {
          const details = el("details", "more");
          details.append(el("summary", "", "the table: " + t.title));
          details.append(tb);
          sec.append(block("", details));
        } else {
          sec.append(tb);
        }
      }
      if (s.matmuls.length) sec.append(matmuls(s));
      if (s.checks.length) sec.append(checkList(s));
      root.append(sec);
    });
    redraws.forEach((f) => f());
  }
})();

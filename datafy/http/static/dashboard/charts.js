// The dashboard's two charts, drawn as SVG: deliveries per minute (bars) and arrival lag p50/p99 (lines), over the
// one-minute slots of GET /api/status (deliveries.per_minute, oldest first). Values become attributes and text only.
"use strict";
window.DATAFY_CHARTS = (function () {
  const SVG = "http://www.w3.org/2000/svg";
  const BOX = {left: 48, right: 592, top: 26, bottom: 160}; // in a 600x190 viewBox; the legend sits above `top`

  function svg(tag, attrs, content) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    if (content !== undefined) node.textContent = String(content);
    return node;
  }

  function frame(node, minutes, max, options, scale) {
    node.replaceChildren();
    const y = (value) => BOX.bottom - (value / max) * (BOX.bottom - BOX.top);
    for (const value of [0, max / 2, max]) {
      node.append(svg("line", {class: "grid", x1: BOX.left, x2: BOX.right, y1: y(value), y2: y(value)}));
      if (scale) node.append(svg("text", {class: "axis", x: BOX.left - 6, y: y(value) + 4, "text-anchor": "end"},
        Number.isInteger(value) ? value : value.toFixed(1)));
    }
    const step = (BOX.right - BOX.left) / Math.max(minutes.length, 1);
    minutes.forEach((slot, i) => {
      if (i % 3 === 0 || i === minutes.length - 1) {
        const label = new Date(slot.minute).toLocaleTimeString(options.lang, {hour: "2-digit", minute: "2-digit"});
        node.append(svg("text", {class: "axis", x: BOX.left + step * (i + 0.5), y: 180, "text-anchor": "middle"}, label));
      }
    });
    return {y, step};
  }

  function empty(node, minutes, options) {
    if (minutes.some((slot) => slot.delivered > 0)) return false;
    frame(node, minutes, 1, options, false);
    node.append(svg("text", {class: "empty", x: 320, y: 90, "text-anchor": "middle"}, options.empty));
    return true;
  }

  function bars(node, minutes, options) {
    if (empty(node, minutes, options)) return;
    const max = niceMax(Math.max(...minutes.map((slot) => slot.delivered)));
    const {y, step} = frame(node, minutes, max, options, true);
    minutes.forEach((slot, i) => {
      const bar = svg("rect", {class: "bar", x: BOX.left + step * i + 2, y: y(slot.delivered),
        width: Math.max(step - 4, 1), height: BOX.bottom - y(slot.delivered)});
      bar.append(svg("title", {}, slot.delivered));
      node.append(bar);
    });
  }

  function lines(node, minutes, options) {
    if (empty(node, minutes, options)) return;
    const values = minutes.flatMap((slot) => [slot.lag_p50_ms, slot.lag_p99_ms]).filter((v) => v !== null);
    const max = niceMax(Math.max(1, ...values));
    const {y, step} = frame(node, minutes, max, options, true);
    for (const [field, name, x] of [["lag_p99_ms", "p99", BOX.right - 30], ["lag_p50_ms", "p50", BOX.right - 70]]) {
      const points = minutes.map((slot, i) => (slot[field] === null ? null : [BOX.left + step * (i + 0.5), y(slot[field])]));
      for (const run of splitRuns(points)) {
        node.append(svg("polyline", {class: "line " + name, points: run.map((p) => p.join(",")).join(" ")}));
        for (const [cx, cy] of run) node.append(svg("circle", {class: "dot " + name, cx, cy, r: 3}));
      }
      node.append(svg("text", {class: "legend " + name, x, y: 14}, name));
    }
  }

  // A minute without deliveries has no lag: the line breaks there instead of dropping to zero.
  function splitRuns(points) {
    const runs = [[]];
    for (const point of points) {
      if (point) runs[runs.length - 1].push(point);
      else if (runs[runs.length - 1].length) runs.push([]);
    }
    return runs.filter((run) => run.length);
  }

  function niceMax(value) {
    const power = 10 ** Math.floor(Math.log10(Math.max(value, 1)));
    return [1, 2, 5, 10].map((m) => m * power).find((m) => m >= value);
  }

  return {bars, lines};
})();

// The dashboard: logs in with the admin key (kept in sessionStorage, sent as a Bearer header, never in a URL),
// then polls the admin JSON routes. Every piece of data reaches the page as text nodes or attributes, never as HTML.
"use strict";
(function () {
  const REFRESH_MS = 3000;
  const STORAGE = "datafy.adminKey";
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const lang = pickLanguage();
  const text = window.DATAFY_TEXT[lang];
  const peeks = new Map(); // user -> messages, for the rows a person opened
  const openPayloads = new Set(); // batch ids whose payload is unfolded
  const drawn = {}; // section -> the JSON it was last drawn from, so unchanged data is not redrawn
  let busy = false;

  function pickLanguage() {
    for (const tag of navigator.languages || [navigator.language || "en"]) {
      const base = tag.toLowerCase().slice(0, 2);
      if (base === "pt" || base === "en") return base;
    }
    return "en";
  }

  function t(name, values) {
    return (text[name] || name).replace(/\{(\w+)\}/g, (_, key) => String(values && key in values ? values[key] : ""));
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name.startsWith("data-")) node.dataset[name.slice(5)] = value;
      else node.setAttribute(name, value);
    }
    for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
    return node;
  }

  function svg(tag, attrs, content) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    if (content !== undefined) node.textContent = String(content);
    return node;
  }

  function time(iso, withDate) {
    if (!iso) return "–";
    const date = new Date(iso);
    return withDate ? date.toLocaleString(lang) : date.toLocaleTimeString(lang);
  }

  function say(id, message) {
    $(id).textContent = message || "";
    $(id).hidden = !message;
  }

  async function api(method, path) {
    const key = sessionStorage.getItem(STORAGE) || "";
    const response = await fetch(path, {method, headers: {Authorization: "Bearer " + key}, cache: "no-store"});
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error((body.error && body.error.message) || response.statusText);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function showBoard(shown) {
    $("board").hidden = !shown;
    $("login").hidden = shown;
    $("logout").hidden = !shown;
    if (!shown) {
      for (const id of ["counters", "chart-deliveries", "chart-lag", "chats-body", "dead-body", "monitors-body"]) {
        $(id).replaceChildren();
      }
      for (const section of Object.keys(drawn)) delete drawn[section];
      say("updated", "");
    }
  }

  function logOut(message) {
    sessionStorage.removeItem(STORAGE);
    peeks.clear();
    showBoard(false);
    say("notice", "");
    say("error", message);
  }

  async function refresh() {
    if (busy || !sessionStorage.getItem(STORAGE)) return;
    busy = true;
    try {
      // The key is checked by the first call alone, so a wrong key never shows a single figure.
      const chats = await api("GET", "/api/chats?limit=100");
      const [dead, status] = await Promise.all([
        api("GET", "/api/dead-letters?limit=50"),
        api("GET", "/api/status").catch((error) => { if (error.status === 404) return null; throw error; }),
      ]);
      say("error", "");
      showBoard(true);
      draw("status", status, drawStatus);
      draw("chats", {chats, peeks: [...peeks]}, () => drawChats(chats));
      draw("dead", dead, drawDeadLetters);
      say("updated", t("updated", {time: new Date().toLocaleTimeString(lang)}));
    } catch (error) {
      if (error.status === 401) logOut(t("wrongKey"));
      else if (error.status === 403) logOut(t("adminDisabled"));
      else say("error", error.status ? t("failed", error) : t("unreachable"));
    } finally {
      busy = false;
    }
  }

  function draw(section, data, render) {
    const json = JSON.stringify(data);
    if (drawn[section] === json) return;
    drawn[section] = json;
    render(data);
  }

  function drawStatus(status) {
    for (const note of document.querySelectorAll(".status-missing")) note.hidden = status !== null;
    // toggleAttribute, not .hidden: an <svg> has no hidden property
    for (const node of document.querySelectorAll(".needs-status")) node.toggleAttribute("hidden", status === null);
    if (status === null) {
      for (const id of ["counters", "chart-deliveries", "chart-lag", "monitors-body"]) $(id).replaceChildren();
      return;
    }
    const d = status.deliveries, last = d.last_minute, receiverOpen = status.receiver.state === "open";
    const ms = (value) => (value === null || value === undefined ? "–" : Math.round(value) + " ms");
    const counters = [
      ["pending", status.chats.pending], ["dueNextMinute", status.chats.due_next_minute],
      ["ready", status.batches.ready], ["retrying", status.batches.retrying],
      ["inFlight", status.batches.in_flight], ["deadLettersCount", status.dead_letters],
      ["monitorsAlive", status.monitors.alive], ["receiver", t(receiverOpen ? "receiverOpen" : "receiverClosed")],
      ["delivered1", last.delivered], ["delivered15", d.last_15_minutes.delivered],
      ["lag1", ms(last.lag_p50_ms) + " / " + ms(last.lag_p99_ms)],
    ];
    const alarm = {monitorsAlive: status.monitors.alive === 0, receiver: receiverOpen, deadLettersCount: status.dead_letters > 0};
    $("counters").replaceChildren(...counters.map(([name, value]) =>
      el("div", {class: alarm[name] ? "counter alarm" : "counter", "data-counter": name},
        el("span", {class: "value"}, value), el("span", {class: "label"}, t(name)))));
    barChart($("chart-deliveries"), d.per_minute);
    lineChart($("chart-lag"), d.per_minute);
    drawMonitors(status.monitors.processes);
  }

  // Charts: 15 one-minute slots, drawn as SVG in a 600x190 box (left margin for the scale, bottom for times).
  const BOX = {left: 48, right: 592, top: 10, bottom: 160};

  function frame(node, minutes, max) {
    node.replaceChildren();
    const y = (value) => BOX.bottom - (value / max) * (BOX.bottom - BOX.top);
    for (const value of [0, max / 2, max]) {
      node.append(svg("line", {class: "grid", x1: BOX.left, x2: BOX.right, y1: y(value), y2: y(value)}));
      node.append(svg("text", {class: "axis", x: BOX.left - 6, y: y(value) + 4, "text-anchor": "end"},
        Math.round(value)));
    }
    const step = (BOX.right - BOX.left) / Math.max(minutes.length, 1);
    minutes.forEach((slot, i) => {
      if (i % 3 === 0 || i === minutes.length - 1) {
        const label = new Date(slot.minute).toLocaleTimeString(lang, {hour: "2-digit", minute: "2-digit"});
        node.append(svg("text", {class: "axis", x: BOX.left + step * (i + 0.5), y: 180, "text-anchor": "middle"}, label));
      }
    });
    return {y, step};
  }

  function empty(node, minutes) {
    if (minutes.some((slot) => slot.delivered > 0)) return false;
    frame(node, minutes, 1);
    node.append(svg("text", {class: "empty", x: 320, y: 90, "text-anchor": "middle"}, t("noDeliveries")));
    return true;
  }

  function barChart(node, minutes) {
    if (empty(node, minutes)) return;
    const max = niceMax(Math.max(...minutes.map((slot) => slot.delivered)));
    const {y, step} = frame(node, minutes, max);
    minutes.forEach((slot, i) => {
      const bar = svg("rect", {class: "bar", x: BOX.left + step * i + 2, y: y(slot.delivered),
        width: Math.max(step - 4, 1), height: BOX.bottom - y(slot.delivered)});
      bar.append(svg("title", {}, slot.delivered));
      node.append(bar);
    });
  }

  function lineChart(node, minutes) {
    if (empty(node, minutes)) return;
    const values = minutes.flatMap((slot) => [slot.lag_p50_ms, slot.lag_p99_ms]).filter((v) => v !== null);
    const max = niceMax(Math.max(1, ...values));
    const {y, step} = frame(node, minutes, max);
    for (const [field, cls] of [["lag_p99_ms", "p99"], ["lag_p50_ms", "p50"]]) {
      const points = minutes.map((slot, i) => slot[field] === null ? null : [BOX.left + step * (i + 0.5), y(slot[field])]);
      for (const run of splitRuns(points)) {
        node.append(svg("polyline", {class: "line " + cls, points: run.map((p) => p.join(",")).join(" ")}));
        for (const [cx, cy] of run) node.append(svg("circle", {class: "dot " + cls, cx, cy, r: 3}));
      }
      node.append(svg("text", {class: "legend " + cls, x: cls === "p99" ? BOX.right - 40 : BOX.right - 90, y: 22}, cls));
    }
  }

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

  function button(action, key, label, cls) {
    return el("button", {type: "button", class: cls || "", "data-action": action, "data-key": key}, t(label));
  }

  function emptyRow(columns, message) {
    return el("tr", {class: "empty"}, el("td", {colspan: columns}, t(message)));
  }

  function drawChats(page) {
    say("chats-total", page.total > page.chats.length ? t("showing", {shown: page.chats.length, total: page.total}) : "");
    const rows = [];
    for (const chat of page.chats) {
      const open = peeks.has(chat.user);
      rows.push(el("tr", {"data-user": chat.user}, el("td", {class: "user"}, chat.user), el("td", {}, time(chat.flush_at)),
        el("td", {class: "actions"}, button("peek", chat.user, open ? "hide" : "peek"),
          button("flush", chat.user, "flush", "primary"), button("discard", chat.user, "discard", "danger"))));
      if (open) {
        const messages = JSON.stringify(peeks.get(chat.user), null, 2);
        rows.push(el("tr", {class: "peek"}, el("td", {colspan: 3}, el("pre", {}, messages))));
      }
    }
    $("chats-body").replaceChildren(...(rows.length ? rows : [emptyRow(3, "noChats")]));
  }

  function drawDeadLetters(page) {
    say("dead-total", page.total > page.dead_letters.length ? t("showing", {shown: page.dead_letters.length, total: page.total}) : "");
    const rows = page.dead_letters.map((letter) => {
      const payload = el("details", {"data-id": letter.batch_id}, el("summary", {}, letter.batch_id),
        el("pre", {}, JSON.stringify(letter.payload, null, 2)));
      payload.open = openPayloads.has(letter.batch_id);
      payload.addEventListener("toggle", () => {
        if (payload.open) openPayloads.add(letter.batch_id);
        else openPayloads.delete(letter.batch_id);
      });
      const error = [letter.last_status, letter.last_error, letter.reason].filter((part) => part !== null && part !== "");
      return el("tr", {"data-batch": letter.batch_id}, el("td", {class: "user"}, letter.user),
        el("td", {}, time(letter.dead_at, true)), el("td", {}, letter.attempts), el("td", {class: "last-error"}, error.join(" · ")),
        el("td", {class: "payload"}, payload),
        el("td", {class: "actions"}, button("replay", letter.batch_id, "replay", "primary"),
          button("delete", letter.batch_id, "delete", "danger")));
    });
    $("dead-body").replaceChildren(...(rows.length ? rows : [emptyRow(6, "noDead")]));
  }

  function drawMonitors(processes) {
    const rows = processes.map((m) => el("tr", {}, el("td", {}, m.id), el("td", {}, m.host), el("td", {}, m.pid),
      el("td", {}, m.version), el("td", {}, time(m.started_at, true)), el("td", {}, time(m.last_beat_at)), el("td", {}, m.in_flight)));
    $("monitors-body").replaceChildren(...(rows.length ? rows : [emptyRow(7, "noMonitors")]));
  }

  const ACTIONS = {
    async peek(user) {
      if (peeks.has(user)) return void peeks.delete(user);
      peeks.set(user, (await api("GET", "/api/chats/" + encodeURIComponent(user))).messages);
    },
    async flush(user) {
      const reply = await api("POST", "/api/chats/" + encodeURIComponent(user) + "/flush");
      peeks.delete(user);
      return t("flushed", {user, count: reply.flushed});
    },
    async discard(user) {
      if (!window.confirm(t("confirmDiscard", {user}))) return;
      const reply = await api("DELETE", "/api/chats/" + encodeURIComponent(user));
      peeks.delete(user);
      return t("discarded", {user, count: reply.discarded});
    },
    async replay(id) {
      await api("POST", "/api/dead-letters/" + encodeURIComponent(id) + "/replay");
      return t("replayed", {id});
    },
    async delete(id) {
      if (!window.confirm(t("confirmDelete", {id}))) return;
      await api("DELETE", "/api/dead-letters/" + encodeURIComponent(id));
      return t("deleted", {id});
    },
  };

  async function act(event) {
    const target = event.target.closest("button[data-action]");
    if (!target) return;
    try {
      say("notice", await ACTIONS[target.dataset.action](target.dataset.key));
    } catch (error) {
      if (error.status === 401) return logOut(t("wrongKey"));
      say("notice", error.status === 404 ? t("gone") : t("failed", error));
    }
    await refresh();
  }

  function start() {
    document.documentElement.lang = lang === "pt" ? "pt-BR" : "en";
    document.title = t("title");
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    $("login").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(STORAGE, $("key").value);
      $("key").value = "";
      refresh();
    });
    $("logout").addEventListener("click", () => logOut(""));
    $("board").addEventListener("click", act);
    refresh();
    setInterval(refresh, REFRESH_MS);
  }

  start();
})();

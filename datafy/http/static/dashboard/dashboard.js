// The dashboard: logs in with the admin key (kept in sessionStorage, sent as a Bearer header, never in a URL),
// then polls the admin JSON routes. Every piece of data reaches the page as text nodes or attributes, never as HTML.
"use strict";
(function () {
  const REFRESH_MS = 3000;
  const STORAGE = "datafy.adminKey";
  const $ = (id) => document.getElementById(id);
  const lang = pickLanguage();
  const text = window.DATAFY_TEXT[lang];
  const peeks = new Map(); // chatKey(route, user) -> messages, for the rows a person opened
  const openPayloads = new Set(); // batch ids whose payload is unfolded
  const drawn = {}; // section -> the JSON it was last drawn from, so unchanged data is not redrawn
  let busy = false, again = false;

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

  function time(iso, withDate) {
    if (!iso) return "–";
    const date = new Date(iso);
    return withDate ? date.toLocaleString(lang) : date.toLocaleTimeString(lang);
  }

  function say(id, message) {
    $(id).textContent = message || "";
    $(id).hidden = !message;
  }

  async function api(method, path, body) {
    const key = sessionStorage.getItem(STORAGE) || "";
    const request = {method, headers: {Authorization: "Bearer " + key}, cache: "no-store"};
    if (body !== undefined) {
      request.headers["Content-Type"] = "application/json";
      request.body = JSON.stringify(body);
    }
    const response = await fetch(path, request);
    const reply = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error((reply.error && reply.error.message) || response.statusText);
      error.status = response.status;
      error.field = reply.error && reply.error.field;
      throw error;
    }
    return reply;
  }

  // A chat is a route's user: the same user id under two routes is two chats.
  function chatKey(route, user) {
    return route + "/" + user; // a route name has no "/"
  }

  function chatPath(user, route, action) {
    // ?route= picks the chat of a route for an environment admin key; a route's own key is held to its route anyway.
    const query = route ? "?route=" + encodeURIComponent(route) : "";
    return "/api/chats/" + encodeURIComponent(user) + (action ? "/" + action : "") + query;
  }

  function showBoard(shown) {
    $("board").hidden = !shown;
    $("login").hidden = shown;
    $("logout").hidden = !shown;
    if (!shown) {
      for (const id of ["counters", "chart-deliveries", "chart-lag", "routes-body", "chats-body", "dead-body",
        "monitors-body"]) {
        $(id).replaceChildren();
      }
      $("route-form").reset();
      $("route-form").hidden = true;
      say("route-error", "");
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
    const key = sessionStorage.getItem(STORAGE);
    if (!key) return;
    if (busy) return void (again = true); // a new key or an action: run once more when this round ends
    busy = true;
    try {
      // The key is checked by the first call alone, so a wrong key never shows a single figure.
      const chats = await api("GET", "/api/chats?limit=100");
      const [routes, dead, status] = await Promise.all([
        api("GET", "/api/routes"),
        api("GET", "/api/dead-letters?limit=50"),
        // A route's admin key reads its own route's status; an older API refuses it: then no status is shown.
        api("GET", "/api/status").catch((error) => {
          if ([401, 403, 404].includes(error.status)) return null;
          throw error;
        }),
      ]);
      if (sessionStorage.getItem(STORAGE) !== key) return; // logged out (or in again) meanwhile: stale
      say("error", "");
      showBoard(true);
      draw("status", status, drawStatus);
      draw("routes", routes, drawRoutes);
      draw("chats", {chats, peeks: [...peeks]}, () => drawChats(chats));
      draw("dead", dead, drawDeadLetters);
      say("updated", t("updated", {time: new Date().toLocaleTimeString(lang)}));
    } catch (error) {
      if (sessionStorage.getItem(STORAGE) !== key) return;
      if (error.status === 401) logOut(t("wrongKey"));
      else if (error.status === 403) logOut(t("adminDisabled"));
      else say("error", error.status ? t("failed", error) : t("unreachable"));
    } finally {
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
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
    const ms = (value) => (value === null || value === undefined ? "–" : Math.round(value));
    const counters = [
      ["pending", status.chats.pending], ["dueNextMinute", status.chats.due_next_minute],
      ["held", status.chats.held ?? 0], ["paused", status.chats.paused ?? 0],
      ["ready", status.batches.ready], ["retrying", status.batches.retrying],
      ["inFlight", status.batches.in_flight], ["deadLettersCount", status.dead_letters],
      ["monitorsAlive", status.monitors.alive], ["receiver", t(receiverOpen ? "receiverOpen" : "receiverClosed")],
      ["delivered1", last.delivered], ["delivered15", d.last_15_minutes.delivered],
      ["lag1", ms(last.lag_p50_ms) + " / " + ms(last.lag_p99_ms) + " ms"],
    ];
    const alarm = {monitorsAlive: status.monitors.alive === 0, receiver: receiverOpen, deadLettersCount: status.dead_letters > 0};
    $("counters").replaceChildren(...counters.map(([name, value]) =>
      el("div", {class: alarm[name] ? "counter alarm" : "counter", "data-counter": name},
        el("span", {class: "value"}, value), el("span", {class: "label"}, t(name)))));
    const chartText = {lang, empty: t("noDeliveries")};
    window.DATAFY_CHARTS.bars($("chart-deliveries"), d.per_minute, chartText);
    window.DATAFY_CHARTS.lines($("chart-lag"), d.per_minute, chartText);
    drawMonitors(status.monitors.processes, status.route ? status.monitors.alive : null);
  }

  function button(action, key, label, cls, route) {
    const attrs = {type: "button", class: cls || "", "data-action": action, "data-key": key};
    if (route) attrs["data-route"] = route;
    return el("button", attrs, t(label));
  }

  function emptyRow(columns, message) {
    return el("tr", {class: "empty"}, el("td", {colspan: columns}, t(message)));
  }

  function drawChats(page) {
    say("chats-total", page.total > page.chats.length ? t("showing", {shown: page.chats.length, total: page.total}) : "");
    const rows = [];
    for (const chat of page.chats) {
      const route = chat.route || "", open = peeks.has(chatKey(route, chat.user));
      rows.push(el("tr", {"data-user": chat.user}, el("td", {class: "user"}, chat.user),
        el("td", {class: "route"}, route || "default"), el("td", {}, time(chat.flush_at)),
        el("td", {class: "actions"}, button("peek", chat.user, open ? "hide" : "peek", "", route),
          button("flush", chat.user, "flush", "primary", route), button("discard", chat.user, "discard", "danger", route))));
      if (open) {
        const messages = JSON.stringify(peeks.get(chatKey(route, chat.user)), null, 2);
        rows.push(el("tr", {class: "peek"}, el("td", {colspan: 4}, el("pre", {}, messages))));
      }
    }
    $("chats-body").replaceChildren(...(rows.length ? rows : [emptyRow(4, "noChats")]));
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
        el("td", {class: "route"}, letter.route || "default"), el("td", {}, time(letter.dead_at, true)),
        el("td", {}, letter.attempts), el("td", {class: "last-error"}, error.join(" · ")),
        el("td", {class: "payload"}, payload),
        el("td", {class: "actions"}, button("replay", letter.batch_id, "replay", "primary"),
          button("delete", letter.batch_id, "delete", "danger")));
    });
    $("dead-body").replaceChildren(...(rows.length ? rows : [emptyRow(7, "noDead")]));
  }

  function drawRoutes(page) {
    const rows = page.routes.map((route) => {
      const keys = [["ingestKeys", route.api_keys], ["adminKeys", route.admin_keys]].filter(([, list]) => list.length)
        .map(([label, list]) => t(label) + " " + list.join(", ")); // "…last4" each: the API never sends a key
      const match = Object.entries(route.match).map(([kind, values]) => kind + ": " + values.join(", "));
      const name = el("td", {class: "name"}, route.name);
      if (route.environment) name.append(" ", el("span", {class: "muted"}, t("environment")));
      return el("tr", {"data-route": route.name}, name, el("td", {class: "url"}, route.webhook_url),
        el("td", {class: "keys"}, keys.join(" · ") || "–"), el("td", {class: "match"}, match.join(" · ") || "–"));
    });
    // Only an environment admin key is shown `default` (the environment's settings), and only it may add routes.
    $("route-form").hidden = !page.routes.some((route) => route.environment);
    $("routes-body").replaceChildren(...rows);
  }

  async function addRoute(event) {
    event.preventDefault();
    const key = $("route-key").value;
    $("route-key").value = ""; // whatever the answer, the typed key does not stay on the page
    const instance = $("route-instance").value.trim();
    const route = {name: $("route-name").value.trim(), webhook_url: $("route-webhook").value.trim()};
    if (key) route.api_keys = [key];
    if (instance) route.match = {evolution_instance: [instance]};
    try {
      const reply = await api("POST", "/api/routes", route);
      $("route-form").reset();
      say("route-error", "");
      say("notice", t("routeAdded", {name: reply.route.name}));
    } catch (error) {
      if (error.status === 401) return logOut(t("wrongKey"));
      const message = key ? error.message.split(key).join("…") : error.message;
      if (error.status >= 400 && error.status < 500) {
        say("route-error", error.field ? t("routeFailed", {message, field: error.field}) : message);
      } else {
        say("route-error", error.status ? t("failed", {status: error.status, message}) : t("unreachable"));
      }
    }
    await refresh();
  }

  function drawMonitors(processes, aliveOnly) {
    // A route's admin key gets the count alone: the processes are the whole deployment's.
    if (aliveOnly) {
      return void $("monitors-body").replaceChildren(
        el("tr", {class: "empty"}, el("td", {colspan: 7}, t("monitorsAlive") + ": " + aliveOnly)));
    }
    const rows = processes.map((m) => el("tr", {}, el("td", {}, m.id), el("td", {}, m.host), el("td", {}, m.pid),
      el("td", {}, m.version), el("td", {}, time(m.started_at, true)), el("td", {}, time(m.last_beat_at)), el("td", {}, m.in_flight)));
    $("monitors-body").replaceChildren(...(rows.length ? rows : [emptyRow(7, "noMonitors")]));
  }

  const ACTIONS = {
    async peek(user, route) {
      const chat = chatKey(route, user);
      if (peeks.has(chat)) return void peeks.delete(chat);
      peeks.set(chat, (await api("GET", chatPath(user, route))).messages);
    },
    async flush(user, route) {
      const reply = await api("POST", chatPath(user, route, "flush"));
      peeks.delete(chatKey(route, user));
      return t("flushed", {user, count: reply.flushed});
    },
    async discard(user, route) {
      if (!window.confirm(t("confirmDiscard", {user}))) return;
      const reply = await api("DELETE", chatPath(user, route));
      peeks.delete(chatKey(route, user));
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
      say("notice", await ACTIONS[target.dataset.action](target.dataset.key, target.dataset.route || ""));
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
    $("route-form").addEventListener("submit", addRoute);
    $("board").addEventListener("click", act);
    refresh();
    setInterval(refresh, REFRESH_MS);
  }

  start();
})();

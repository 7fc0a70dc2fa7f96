// ServeStack's developer loop in the page (injected into HTML answers in development
// only; server/devloop). One WebSocket to the server, found from this script's own URL so
// a path prefix or an editor's port mapping carries over. The server says when to reload
// (after the new workers are ready), which stylesheet changed, and when a reload failed;
// the page sends its console output and uncaught errors, bounded. Reconnects by itself;
// after a server restart it reloads the page once the server is back. On the proxy's own
// 502/503/504 page it reloads once the app can answer again. Hand-written, no
// dependencies, ES5-era syntax so any browser a phone has runs it.
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || window.__servestackLiveReload || !window.WebSocket) return;
  // What a test (or a curious developer) can read: 'connecting', 'live' once the server said hello, 'closed'.
  var status = (window.__servestackLiveReload = { state: 'connecting' });

  var socketUrl = new URL('livereload', script.src);
  socketUrl.protocol = socketUrl.protocol === 'https:' ? 'wss:' : 'ws:';
  var instance = null;
  var socket = null;
  var attempts = 0;
  // On the proxy's own error page: its status, and how many changes the server had told
  // pages of when it made it. A 503 (no worker could take it) reloads once workers are
  // ready or the app reloaded; a 502/504 (the request ended its worker) only after the app
  // reloaded, never because a replacement is up: a request that crashes its worker would
  // loop. A change made before the page connected counts too (hello's counts).
  var errorPage = script.getAttribute('data-servestack-error');
  var seen = script.getAttribute('data-servestack-seen');
  var reloadWhenReady = errorPage === '503';
  var restarted = false;
  var overlay = null;

  // ── console relay: at most 20 messages a second, 2,000 characters each, 50 kept while offline
  var LEVELS = ['log', 'info', 'warn', 'error', 'debug'];
  var outbox = [];
  var windowStart = 0;
  var sentInWindow = 0;
  var dropped = 0;

  function describe(value) {
    if (value instanceof Error) return value.stack || String(value);
    if (typeof value === 'string') return value;
    try {
      var json = JSON.stringify(value);
      return json === undefined ? String(value) : json;
    } catch (e) {
      return String(value);
    }
  }

  function relay(level, parts) {
    var now = Date.now();
    if (now - windowStart > 1000) {
      windowStart = now;
      sentInWindow = 0;
    }
    if (sentInWindow >= 20 || outbox.length >= 50) {
      dropped++;
      return;
    }
    sentInWindow++;
    var text = '';
    for (var i = 0; i < parts.length; i++) text += (i ? ' ' : '') + describe(parts[i]);
    if (text.length > 2000) text = text.slice(0, 2000) + '…';
    outbox.push({ t: 'console', level: level, text: text, page: location.href, dropped: dropped });
    dropped = 0;
    flush();
  }

  function flush() {
    while (socket && socket.readyState === 1 && outbox.length) socket.send(JSON.stringify(outbox.shift()));
  }

  LEVELS.forEach(function (level) {
    var original = console[level];
    if (typeof original !== 'function') return;
    console[level] = function () {
      try {
        relay(level, Array.prototype.slice.call(arguments));
      } catch (e) {
        // relaying must never break the page's own logging
      }
      return original.apply(console, arguments);
    };
  });
  window.addEventListener('error', function (event) {
    var where = event.filename ? ' (' + event.filename + ':' + event.lineno + ':' + event.colno + ')' : '';
    relay('error', ['Uncaught ' + (event.error ? describe(event.error) : event.message) + where]);
  });
  window.addEventListener('unhandledrejection', function (event) {
    relay('error', ['Unhandled rejection: ' + describe(event.reason)]);
  });

  // ── what the server says
  function swapStylesheet(path) {
    var links = document.querySelectorAll('link[rel~="stylesheet"][href]');
    var matched = [];
    var name = path.slice(path.lastIndexOf('/'));
    for (var i = 0; i < links.length; i++) {
      var href = new URL(links[i].href, location.href);
      // The page may see the file under a prefix the server does not know: compare the end.
      if (href.pathname.slice(-path.length) === path || (path.indexOf('/') === 0 && href.pathname.slice(-name.length) === name)) matched.push(links[i]);
    }
    // No link names it (an @import, say): refresh every stylesheet.
    var targets = matched.length ? matched : Array.prototype.slice.call(links);
    targets.forEach(function (link) {
      var url = new URL(link.href, location.href);
      url.searchParams.set('servestack-css', String(Date.now()));
      var next = link.cloneNode(false);
      next.href = url.href;
      // The old sheet stays until the new one has loaded: no flash of an unstyled page.
      next.addEventListener('load', function () { link.remove(); });
      next.addEventListener('error', function () { next.remove(); });
      link.parentNode.insertBefore(next, link.nextSibling);
    });
  }

  function showFailure(failure) {
    hideFailure();
    overlay = document.createElement('div');
    overlay.id = 'servestack-overlay';
    overlay.setAttribute('role', 'alert');
    overlay.style.cssText = 'position:fixed;inset:0;z-index:2147483647;background:rgba(24,24,27,.92);color:#fafafa;' +
      'font:14px/1.5 ui-monospace,Menlo,Consolas,monospace;padding:32px;overflow:auto;box-sizing:border-box';
    var title = document.createElement('div');
    title.style.cssText = 'font-size:18px;font-weight:bold;color:#f87171;margin-bottom:8px';
    title.textContent = 'Reload failed' + (failure.where ? ': ' + failure.where : '');
    var note = document.createElement('div');
    note.style.cssText = 'color:#a1a1aa;margin-bottom:16px';
    note.textContent = 'The previous version keeps serving. Fix the error and save; this clears by itself.';
    var message = document.createElement('pre');
    message.style.cssText = 'white-space:pre-wrap;margin:0 0 16px';
    message.textContent = failure.message || '';
    var close = document.createElement('button');
    close.textContent = 'Dismiss';
    close.style.cssText = 'position:absolute;top:16px;right:16px;font:inherit;cursor:pointer';
    close.addEventListener('click', hideFailure);
    overlay.appendChild(close);
    overlay.appendChild(title);
    overlay.appendChild(note);
    overlay.appendChild(message);
    if (failure.traceback) {
      var trace = document.createElement('pre');
      trace.style.cssText = 'white-space:pre-wrap;color:#d4d4d8;margin:0';
      trace.textContent = failure.traceback;
      overlay.appendChild(trace);
    }
    (document.body || document.documentElement).appendChild(overlay);
  }

  function hideFailure() {
    if (overlay) overlay.remove();
    overlay = null;
  }

  function onMessage(message) {
    switch (message.t) {
      case 'hello':
        // Another server instance: the one this page came from restarted.
        if (instance !== null && message.instance !== instance) reloadWhenReady = restarted = true;
        instance = message.instance;
        status.state = 'live';
        if (errorPage !== null) {
          // The page states the error itself: no overlay. A change it missed: try again now.
          var now = errorPage === '503' ? message.reloads + message.readies : message.reloads;
          if (message.ready && (restarted || String(now) !== seen)) location.reload();
          break;
        }
        if (message.failure) showFailure(message.failure);
        else hideFailure();
        if (reloadWhenReady && message.ready) location.reload();
        break;
      case 'ready':
        if (reloadWhenReady) location.reload();
        break;
      case 'reload':
        location.reload();
        break;
      case 'css':
        swapStylesheet(message.path);
        break;
      case 'failure':
        // An error page shows the newest error by loading again (the proxy's page names it).
        if (errorPage !== null) location.reload();
        else showFailure(message.failure);
        break;
      case 'clear':
        if (errorPage === null) hideFailure();
        break;
    }
  }

  function connect() {
    socket = new WebSocket(socketUrl.href);
    socket.onopen = function () {
      attempts = 0;
      socket.send(JSON.stringify({ t: 'page', page: location.href }));
      flush();
    };
    socket.onmessage = function (event) {
      try {
        onMessage(JSON.parse(event.data));
      } catch (e) {
        // a message this version does not know
      }
    };
    socket.onclose = function () {
      socket = null;
      status.state = 'closed';
      // 250 ms, doubling, at most 5 s: a restart is seen within seconds, an idle tab costs nothing.
      setTimeout(connect, Math.min(5000, 250 * Math.pow(2, attempts++)));
    };
  }
  connect();
})();

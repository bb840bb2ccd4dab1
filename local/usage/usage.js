// The local usage page: tally's own query API (GET /v1/usage, /v1/usage/users, /v1/usage/events) and
// what npm start last sent to PostHog (GET /local/recent), refreshed every 2 s. No build step.
(function () {
  'use strict';
  var REFRESH_MS = 2000;
  var SPAN = { minute: 3600e3, hour: 24 * 3600e3, day: 30 * 86400e3 };
  var $ = function (id) { return document.getElementById(id); };
  var key = null;
  var chart = null;
  var state = { event: null, granularity: 'hour' };

  // The key: from the URL fragment (npm start prints …/#key=…, never sent to a server), else the session.
  var m = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (m) {
    key = decodeURIComponent(m[1]);
    sessionStorage.setItem('tallyKey', key);
    history.replaceState(null, '', location.pathname + location.search);
  } else {
    key = sessionStorage.getItem('tallyKey');
  }

  function api(path) {
    return fetch(path, { headers: { authorization: 'Bearer ' + key } }).then(function (r) {
      if (r.status === 401) throw Object.assign(new Error('the key was not accepted'), { unauthorized: true });
      if (!r.ok) return r.json().then(function (b) { throw new Error(b.message || ('HTTP ' + r.status)); });
      return r.json();
    });
  }
  var fmt = function (n) { return Number(n).toLocaleString('en-US'); };
  function rows(tbody, data, cells, onClick, selected) {
    tbody.textContent = '';
    data.forEach(function (d) {
      var tr = document.createElement('tr');
      cells(d).forEach(function (c) {
        var td = document.createElement('td');
        if (typeof c === 'number') { td.className = 'n'; td.textContent = fmt(c); }
        else td.textContent = c == null ? '' : String(c);
        tr.appendChild(td);
      });
      if (onClick) tr.addEventListener('click', function () { onClick(d); });
      if (selected && selected(d)) tr.className = 'sel';
      tbody.appendChild(tr);
    });
  }

  function drawChart(series, from, to, g) {
    var step = g === 'minute' ? 60 : g === 'hour' ? 3600 : 86400;
    var xs = [];
    var ys = [];
    var byStart = {};
    series.forEach(function (p) { byStart[Date.parse(p.start) / 1000] = p.calls; });
    for (var t = Date.parse(from) / 1000; t <= Date.parse(to) / 1000; t += step) { xs.push(t); ys.push(byStart[t] || 0); }
    var width = Math.max(320, $('chart').clientWidth || 900);
    if (!chart || chart.width !== width) {
      if (chart) chart.destroy();
      chart = new uPlot({
        width: width,
        height: 240,
        scales: { x: { time: true } },
        series: [{}, { label: 'calls', stroke: '#2563eb', fill: 'rgba(37,99,235,0.12)', width: 2, points: { show: false } }],
        axes: [{}, { values: function (u, v) { return v.map(function (x) { return fmt(x); }); } }],
      }, [xs, ys], $('chart'));
    } else {
      chart.setData([xs, ys]);
    }
  }

  function refresh() {
    var now = Date.now();
    var g = state.granularity;
    var from = now - SPAN[g];
    // Top users by day: today for the minute and hour views, the last 30 days for the day view.
    var usersFrom = g === 'day' ? from : now;
    return api('/v1/usage/events').then(function (ev) {
      var names = ev.events.map(function (e) { return e.event; });
      if (!state.event || names.indexOf(state.event) < 0) state.event = names[0] || null;
      var sel = $('event');
      if (sel.dataset.names !== names.join('\u0000')) {
        sel.textContent = '';
        names.forEach(function (n) { var o = document.createElement('option'); o.value = o.textContent = n; sel.appendChild(o); });
        sel.dataset.names = names.join('\u0000');
      }
      if (state.event) sel.value = state.event;
      rows($('main').querySelector('[data-testid="events"] tbody'), ev.events, function (e) { return [e.event, e.calls]; },
        function (e) { state.event = e.event; refresh(); }, function (e) { return e.event === state.event; });
      if (!state.event) { $('total').textContent = '0'; $('status').textContent = 'no calls counted yet: send some (see the README)'; return; }
      var q = 'event=' + encodeURIComponent(state.event);
      return Promise.all([
        api('/v1/usage?' + q + '&granularity=' + g + '&from=' + from + '&to=' + now),
        api('/v1/usage/users?' + q + '&granularity=day&from=' + usersFrom + '&to=' + now + '&limit=10'),
        api('/local/recent'),
      ]).then(function (r) {
        var usage = r[0], users = r[1], recent = r[2];
        $('total').textContent = fmt(usage.total);
        $('range').textContent = usage.from.slice(0, 16).replace('T', ' ') + ' – ' + usage.to.slice(0, 16).replace('T', ' ') + ' UTC';
        drawChart(usage.series, usage.from, usage.to, g);
        $('users-range').textContent = g === 'day' ? '(last 30 days)' : '(today, UTC)';
        rows($('main').querySelector('[data-testid="users"] tbody'), users.users, function (u) { return [u.distinctId, u.calls]; });
        rows($('main').querySelector('[data-testid="batch"] tbody'), recent.batch, function (e) {
          return [String(e.properties.window_start || e.timestamp).slice(11, 19), e.event, e.distinctId, typeof e.properties.calls === 'number' ? e.properties.calls : '', e.properties.late ? 'late' : ''];
        });
        $('sampled-note').textContent = recent.sampledNote || '';
        rows($('main').querySelector('[data-testid="sampled"] tbody'), recent.sampled, function (e) {
          return [String(e.timestamp || '').slice(11, 19), e.event, e.distinct_id, e.properties && e.properties.sample_rate];
        });
        $('status').textContent = 'updated ' + new Date().toLocaleTimeString();
      });
    }).catch(function (err) {
      $('status').textContent = err.message;
      if (err.unauthorized) showKeyForm();
    });
  }

  function showKeyForm() {
    $('main').hidden = true;
    $('keyform').hidden = false;
  }
  $('keyform').addEventListener('submit', function (e) {
    e.preventDefault();
    key = $('key').value.trim();
    sessionStorage.setItem('tallyKey', key);
    start();
  });
  $('event').addEventListener('change', function () { state.event = this.value; refresh(); });
  $('granularity').addEventListener('change', function () { state.granularity = this.value; if (chart) { chart.destroy(); chart = null; } refresh(); });

  var timer = null;
  function start() {
    $('keyform').hidden = true;
    $('main').hidden = false;
    refresh();
    if (!timer) timer = setInterval(refresh, REFRESH_MS);
  }
  if (key) start(); else showKeyForm();
})();

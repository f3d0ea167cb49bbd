// campaign-reconciler dashboard: swaps in the server-rendered page the event stream sends, and when the
// stream drops keeps the last page with a visible "connection lost, showing state of HH:MM:SS" label.
(function () {
  "use strict";
  var main = document.getElementById("content");
  var banner = document.getElementById("connection");
  var url = main && main.getAttribute("data-stream");
  if (!url || !window.EventSource) { return; }
  var SILENCE_MS = 15000; // the server says "alive" every 5 s: this long without a word means it is gone
  var view = main.querySelector("[data-as-of]");
  var asOf = view ? view.getAttribute("data-as-of") : "";
  var heard = Date.now();
  var source = null;

  function lost() {
    banner.textContent = "Connection lost, showing state of " + asOf + " UTC";
    banner.hidden = false;
    document.body.classList.add("stale");
  }
  function alive() {
    heard = Date.now();
    banner.hidden = true;
    document.body.classList.remove("stale");
  }
  function swap(html) {
    var focused = document.activeElement;
    var href = focused && main.contains(focused) && focused.getAttribute("href");
    var open = Array.prototype.map.call(main.querySelectorAll("details[open][id]"), function (d) { return d.id; });
    main.innerHTML = html;
    open.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
    if (href) {
      var again = main.querySelector('a[href="' + href.replace(/"/g, '\\"') + '"]');
      if (again) { again.focus(); }
    }
    var fresh = main.querySelector("[data-as-of]");
    if (fresh) { asOf = fresh.getAttribute("data-as-of"); }
  }
  function connect() {
    source = new EventSource(url);
    source.addEventListener("update", function (event) { alive(); swap(event.data); });
    source.addEventListener("alive", function (event) { alive(); asOf = event.data; });
    source.onerror = lost; // EventSource reconnects by itself (the server asks for 2 s)
  }
  window.setInterval(function () {
    if (Date.now() - heard > SILENCE_MS) {
      lost();
      if (source) { source.close(); }
      heard = Date.now();
      connect();
    }
  }, 3000);
  connect();
})();

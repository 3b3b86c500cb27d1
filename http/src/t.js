/* leadscore tracking snippet (docs/website.md). No dependencies.
 *
 *   <script async src="https://LEADSCORE/t.js"></script>
 *   <script async src="https://LEADSCORE/t.js" data-consent="required"></script>
 *
 * Keeps an anonymous visitor id in a first-party cookie (ls_vid) and sends, with
 * navigator.sendBeacon: `page.viewed` on every page (url, path, title, referrer, page from
 * <meta name="leadscore-page">, utm_* parameters) and `site.visited` once per visit (a
 * visit ends after 30 minutes without a page view). Adds the visitor id as a hidden
 * `_visitor` field to every form posted to leadscore, so the visitor's pages join the lead
 * the form names. Does nothing when the browser asks not to be tracked (Do Not Track,
 * Global Privacy Control), nor, with data-consent="required", until consent is given.
 *
 *   leadscore("consent", true | false)      // give or withdraw consent
 *   leadscore("track", "web.video_played", {video: "intro"})
 *   leadscore("identify", "ann@example.com") // this visitor is that lead
 */
(function () {
  "use strict";
  var w = window, d = document, n = navigator;
  var script = d.currentScript;
  if (!script || w.leadscore && w.leadscore.loaded) return;
  var base = script.src.replace(/\/t\.js(\?.*)?$/, "");
  var VISIT_MS = 30 * 60 * 1000;
  var YEAR_S = 365 * 24 * 3600;
  var needConsent = script.getAttribute("data-consent") === "required";

  function refused() {
    return n.doNotTrack === "1" || w.doNotTrack === "1" || n.globalPrivacyControl === true;
  }

  function cookie(name) {
    var m = d.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }

  function setCookie(name, value, seconds) {
    d.cookie = name + "=" + encodeURIComponent(value) + "; Max-Age=" + seconds +
      "; Path=/; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
  }

  function randomId() {
    var bytes = new Uint8Array(16), out = "", abc =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (w.crypto || w.msCrypto).getRandomValues(bytes);
    for (var i = 0; i < bytes.length; i++) out += abc.charAt(bytes[i] & 63);
    return out + Date.now().toString(36);
  }

  function consented() {
    if (refused()) return false;
    if (!needConsent) return cookie("ls_consent") !== "0";
    return cookie("ls_consent") === "1";
  }

  function visitor() {
    var v = cookie("ls_vid");
    if (!v || !/^[A-Za-z0-9_-]{8,64}$/.test(v)) v = randomId();
    setCookie("ls_vid", v, 2 * YEAR_S);
    return v;
  }

  function send(events, email) {
    var body = {v: visitor(), events: events};
    if (email) body.email = email;
    var text = JSON.stringify(body), url = base + "/track";
    if (n.sendBeacon && n.sendBeacon(url, text)) return;
    if (w.fetch) {
      w.fetch(url, {method: "POST", body: text, keepalive: true, credentials: "omit",
                    headers: {"content-type": "text/plain"}});
      return;
    }
    var e = events[0], q = "v=" + encodeURIComponent(body.v) + "&t=" + encodeURIComponent(e.type) +
      "&id=" + encodeURIComponent(e.id);
    for (var k in e.props) q += "&p." + encodeURIComponent(k) + "=" + encodeURIComponent(e.props[k]);
    new Image().src = url + "?" + q;
  }

  function event(type, props) {
    return {type: type, id: randomId(), props: props || {}};
  }

  function pageProps() {
    var p = {url: location.href, path: location.pathname, title: d.title};
    if (d.referrer) p.referrer = d.referrer;
    var meta = d.querySelector('meta[name="leadscore-page"]');
    if (meta && meta.content) p.page = meta.content;
    var params = location.search.slice(1).split("&");
    for (var i = 0; i < params.length; i++) {
      var kv = params[i].split("=");
      if (/^utm_(source|medium|campaign|term|content)$/.test(kv[0]) && kv[1]) {
        p[kv[0]] = decodeURIComponent(kv[1].replace(/\+/g, " "));
      }
    }
    return p;
  }

  function pageView() {
    var events = [];
    if (!cookie("ls_visit")) events.push(event("site.visited", {path: location.pathname}));
    setCookie("ls_visit", "1", VISIT_MS / 1000);
    events.push(event("page.viewed", pageProps()));
    send(events);
  }

  function tagForms(root) {
    var forms = (root || d).querySelectorAll("form");
    for (var i = 0; i < forms.length; i++) tagForm(forms[i]);
  }

  function tagForm(form) {
    var action = form.getAttribute("action") || "";
    if (action.indexOf(base + "/forms/") !== 0 && !form.hasAttribute("data-leadscore")) return;
    var field = form.querySelector('input[name="_visitor"]');
    if (!field) {
      field = d.createElement("input");
      field.type = "hidden";
      field.name = "_visitor";
      form.appendChild(field);
    }
    field.value = visitor();
  }

  var started = false;
  function start() {
    if (started || !consented()) return;
    started = true;
    pageView();
    tagForms();
    // Forms added later, or submitted before the page finished loading.
    d.addEventListener("submit", function (e) {
      if (consented() && e.target && e.target.tagName === "FORM") tagForm(e.target);
    }, true);
  }

  var queued = w.leadscore && w.leadscore.q || [];
  w.leadscore = function (command, a, b) {
    if (command === "consent") {
      setCookie("ls_consent", a ? "1" : "0", 2 * YEAR_S);
      if (a) start();
      else setCookie("ls_vid", "", 0);
    } else if (command === "track" && started && typeof a === "string") {
      send([event(a, b)]);
    } else if (command === "identify" && started && typeof a === "string") {
      send([event("web.identified", {path: location.pathname})], a);
    }
  };
  w.leadscore.loaded = true;
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", start);
  else start();
  for (var i = 0; i < queued.length; i++) w.leadscore.apply(null, queued[i]);
})();

// Collects every error the page meets in window.catchmapErrors, before any
// other script runs, so the browser tests (and a curious user) can see them:
// script errors, unhandled rejections, failed resource loads, CSP refusals
// and console.error calls.
(function () {
  "use strict";
  var errs = [];
  window.catchmapErrors = errs;
  function note(kind, msg) { errs.push(kind + ": " + msg); }
  window.addEventListener("error", function (e) {
    if (e.target && e.target !== window && (e.target.src || e.target.href)) {
      note("resource", e.target.src || e.target.href);
    } else {
      note("error", (e.message || e.error) + " at " + e.filename + ":" + e.lineno);
    }
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    note("rejection", e.reason && e.reason.stack || String(e.reason));
  });
  document.addEventListener("securitypolicyviolation", function (e) {
    note("csp", e.violatedDirective + " blocked " + e.blockedURI);
  });
  var orig = console.error;
  console.error = function () {
    note("console", Array.prototype.map.call(arguments, String).join(" "));
    return orig.apply(console, arguments);
  };
})();

/* Live check of the password policy (the server checks it again). Marks each rule as met or not. */
(function () {
  "use strict";
  var list = document.getElementById("password-rules");
  if (!list) { return; }
  var input = document.getElementById(list.getAttribute("data-for"));
  if (!input) { return; }
  var rules = {
    length: function (v) { return v.length >= 8 || v.length >= 64; },
    digits: function (v) { return v.length >= 64 || (v.match(/[0-9]/g) || []).length >= 2; },
    special: function (v) { return v.length >= 64 || /[^A-Za-z0-9\s]/.test(v); },
    letter: function (v) { return v.length >= 64 || /[A-Za-zÀ-ÿ]/.test(v); }
  };
  function update() {
    var items = list.querySelectorAll("li[data-rule]");
    for (var i = 0; i < items.length; i++) {
      var ok = rules[items[i].getAttribute("data-rule")](input.value);
      items[i].className = ok ? "rule-ok" : "rule-todo";
    }
  }
  input.addEventListener("input", update);
  update();
})();

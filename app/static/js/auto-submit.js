/* Sends the signed payment form to the bank without a second click (the button stays for when scripts are off). */
(function () {
  "use strict";
  var form = document.querySelector("form[data-auto-submit='true']");
  if (form) { form.submit(); }
})();

/* Pay form: choosing a contract proposes what it owes and shows its maximum. The amounts are the server's, carried by
   the options' data-amount and data-maximum attributes; the server checks the amount again whatever is sent. */
(function () {
  "use strict";
  var select = document.querySelector("select[data-pay-scope]");
  if (!select) { return; }
  var amount = document.getElementById(select.getAttribute("data-pay-scope"));
  var maximum = document.getElementById("pay-maximum");
  select.addEventListener("change", function () {
    var option = select.options[select.selectedIndex];
    if (amount && option.hasAttribute("data-amount")) { amount.value = option.getAttribute("data-amount"); }
    if (maximum && option.hasAttribute("data-maximum")) { maximum.textContent = option.getAttribute("data-maximum"); }
  });
})();

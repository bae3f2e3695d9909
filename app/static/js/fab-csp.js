/* Flask-AppBuilder's list, search and action widgets, wired from this file: the portal's Content-Security-Policy
   runs no inline script, and FAB's widgets are rendered without the request's nonce. The templates under
   app/templates/appbuilder/general/ carry data attributes instead of <script> blocks and onclick handlers.
   Needs jQuery, Bootstrap 3 (modal, dropdown, collapse), select2 and FAB's ab.js, loaded before it. */
(function ($) {
  "use strict";

  // --- confirmation and alert dialogs (confirm.html, alert.html) -------------------------------------------------

  var $confirm = $("#modal-confirm");
  var $alert = $("#modal-alert");
  var pending = null;  // what « Confirmer » runs
  var returnFocus = null;  // where the focus goes back when a dialog closes

  function visible(element) {
    return element && document.contains(element) && element.getClientRects().length > 0;
  }

  /* The control to give the focus back to: the element itself, or the toggle of the menu that held it. */
  function focusTarget(element) {
    if (visible(element)) { return element; }
    var group = element && element.closest(".btn-group, .dropdown");
    var toggle = group && group.querySelector("[data-toggle='dropdown']");
    return visible(toggle) ? toggle : null;
  }

  function openDialog($dialog, text, opener) {
    $dialog.find(".modal-text").text(text);
    returnFocus = opener || document.activeElement;  // resolved on closing: a menu item is hidden by then
    $dialog.modal("show");
  }

  function askThen(text, opener, proceed) {
    pending = proceed;
    openDialog($confirm, text, opener);
  }

  $confirm.on("shown.bs.modal", function () {
    // The harmless choice first: Enter right away cancels, Tab reaches « Confirmer ».
    $confirm.find("[data-dismiss='modal']").first().trigger("focus");
  });
  $alert.on("shown.bs.modal", function () {
    $alert.find("[data-dismiss='modal']").first().trigger("focus");
  });
  $confirm.add($alert).on("hidden.bs.modal", function () {
    pending = null;
    var target = focusTarget(returnFocus);
    returnFocus = null;
    if (target) { target.focus(); }
  });
  $("#modal-confirm-ok").on("click", function (event) {
    event.preventDefault();
    var proceed = pending;
    pending = null;
    if (proceed) {
      returnFocus = null;  // the page is about to change
      proceed();
    }
    $confirm.modal("hide");
  });

  // --- actions on one row (show page) and deletion: real forms, confirmed first (lib.html) -----------------------

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form.fab-action-form[data-confirm]")) { return; }
    event.preventDefault();
    askThen(form.getAttribute("data-confirm"), event.submitter || document.activeElement, function () {
      form.submit();  // submit() skips this listener
    });
  });

  // --- actions on checked rows (list widgets) ------------------------------------------------------------------

  /* The checked rows of the list whose actions post `form`: the checkboxes of list.html belong to it (form="..."),
     those of FAB's other list widgets belong to no form and are copied into it, as FAB's own script did. */
  function checkedRows(form) {
    if (!form) { return {owned: [], loose: []}; }
    var checked = function (element) { return element.classList.contains("action_check") && element.checked; };
    return {
      owned: Array.prototype.filter.call(form.elements, checked),
      loose: Array.prototype.filter.call(document.querySelectorAll("input.action_check"), function (element) {
        return checked(element) && !element.form;
      })
    };
  }

  $(document).on("click", "a.fab-action", function (event) {
    event.preventDefault();
    var link = this;
    var form = document.getElementById(link.getAttribute("data-form"));
    var rows = checkedRows(form);
    if (!rows.owned.length && !rows.loose.length) {
      openDialog($alert, link.getAttribute("data-none-selected"), link);
      return;
    }
    var run = function () {
      form.elements.namedItem("action").value = link.getAttribute("data-action");
      rows.loose.forEach(function (box) {
        var copy = document.createElement("input");
        copy.type = "hidden";
        copy.name = "rowid";
        copy.value = box.value;
        form.appendChild(copy);
      });
      form.submit();
    };
    var question = link.getAttribute("data-confirm");
    if (question) { askThen(question, link, run); } else { run(); }
  });

  function markRow(box) {
    var row = box.closest("tr");
    if (row) { row.classList.toggle("success", box.checked); }
  }

  $(document).on("change", "input.action_check", function () { markRow(this); });
  $(document).on("change", "input.action_check_all", function () {
    var all = this;
    Array.prototype.forEach.call(all.form ? all.form.elements : [], function (element) {
      if (element.classList.contains("action_check")) {
        element.checked = all.checked;
        markRow(element);
      }
    });
  });

  // --- search filters (widgets/search.html), in place of FAB's AdminFilters -------------------------------------

  function readJson(element, name) {
    try {
      return JSON.parse(element.getAttribute(name) || "null");
    } catch (error) {
      return null;
    }
  }

  function setUpFilters(form) {
    var labels = readJson(form, "data-labels") || {};
    var fields = readJson(form, "data-fields") || {};
    var operators = readJson(form, "data-operators") || {};
    var active = readJson(form, "data-active") || [];
    var tbody = form.querySelector("table.filters tbody");
    var addButton = form.querySelector("[data-toggle='dropdown']");
    var count = 0;

    function cell(row, child) {
      var td = document.createElement("td");
      td.className = "filter";
      if (child) { td.appendChild(child); }
      row.appendChild(td);
      return td;
    }

    /* One row: remove button, condition, value. Returns the value's control. */
    function addRow(column, operator, value) {
      count += 1;
      var label = labels[column] || column;
      var row = document.createElement("tr");

      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "btn btn-default btn-sm remove-filter";
      remove.setAttribute("aria-label", form.getAttribute("data-remove-label") + " : " + label);
      var cross = document.createElement("span");
      cross.className = "close-icon";
      cross.setAttribute("aria-hidden", "true");
      cross.textContent = "\u00d7";
      remove.appendChild(cross);
      remove.appendChild(document.createTextNode("\u00a0" + label));
      remove.addEventListener("click", function () {
        row.remove();
        if (addButton) { addButton.focus(); }
      });
      cell(row, remove);

      var select = document.createElement("select");
      select.className = "form-control input-sm filter-op";
      select.setAttribute("aria-label", label + " : " + form.getAttribute("data-operator-label"));
      (operators[column] || []).forEach(function (name, index) {
        var option = document.createElement("option");
        option.value = String(index);
        option.textContent = name;
        option.selected = index === operator;
        select.appendChild(option);
      });
      cell(row, select);

      var holder = cell(row, null);
      holder.innerHTML = fields[column] || "";  // the search form's own field, rendered by the server
      var input = holder.querySelector("input, select, textarea");
      holder.querySelectorAll("[id]").forEach(function (element) { element.removeAttribute("id"); });
      // A date is typed (the search reads it): bootstrap-datepicker's pop-up, opened on focus through data-provide,
      // traps no keyboard user but helps none either, and its greyed days fail the contrast check.
      if (input && holder.querySelector("[data-provide='datepicker']")) {
        holder.replaceChildren(input);
        input.placeholder = form.getAttribute("data-date-hint");
      }
      if (input) {
        input.id = "filter-" + count + "-" + column;
        input.setAttribute("aria-label", label);
        input.classList.add("filter_val");
        var given = value !== null && value !== undefined;
        if (input.type === "checkbox") {
          input.checked = given;
        } else if (given) {
          input.value = value;
        } else if (input.tagName !== "SELECT") {
          input.value = "";  // not the column's default (« now » for a creation date)
        }
      }
      var name = function () { return "_flt_" + select.value + "_" + column; };
      if (input) { input.name = name(); }
      select.addEventListener("change", function () { if (input) { input.name = name(); } });

      tbody.appendChild(row);
      return input || select;
    }

    active.forEach(function (filter) {
      var column = filter[0], operator = (operators[column] || []).indexOf(filter[1]);
      var values = Array.isArray(filter[2]) ? filter[2] : [filter[2]];
      values.forEach(function (value) { addRow(column, Math.max(operator, 0), value); });
    });

    $(form).on("click", "a[data-filter-column]", function (event) {
      event.preventDefault();
      addRow(this.getAttribute("data-filter-column"), 0, null).focus();
    });
  }

  document.querySelectorAll("form.fab-filters").forEach(setUpFilters);

  // --- select2 pickers (FAB's Select2Widget and Select2ManyWidget: the roles of a user, the permissions of a role) --
  // FAB's ab.js turns them into select2 4.0 widgets when the page is ready; this runs after it (jQuery runs ready
  // callbacks in order). select2 hides the <select> (aria-hidden) and puts its own controls in front of it, which
  // the <label for> of the form does not reach.

  var pickerCount = 0;

  /* The id of the element that names `select`: its <label>, or, for a filter's value (aria-label), a hidden copy. */
  function pickerNameId(select) {
    var label = select.labels && select.labels[0];
    var text = select.getAttribute("aria-label");
    if (!label && !text) { return null; }
    if (!label) {
      label = document.createElement("span");
      label.hidden = true;  // still read through aria-labelledby
      label.textContent = text;
      select.parentNode.insertBefore(label, select);
    }
    if (!label.id) {
      pickerCount += 1;
      label.id = "picker-name-" + pickerCount;
    }
    return label.id;
  }

  function setUpPicker(select) {
    var $select = $(select);
    if (!$select.data("select2")) { return; }
    if (select.multiple) {
      // ab.js asks for allowClear: its « × » (in English, out of keyboard reach) is a <span> put inside the <ul> of
      // the chosen items, where a list holds only items. Each item has its own « × »; Backspace takes the last off.
      $select.select2("destroy").select2({theme: "bootstrap", allowClear: false});
    }
    var $container = $select.data("select2").$container;
    // Escape on the closed search box of a multiple picker opened it (select2 takes its keyup for a search).
    $container.find(".select2-search__field").on("keyup", function (event) {
      if (event.key === "Escape") { event.stopPropagation(); }
    });
    var nameId = pickerNameId(select);
    if (!nameId) { return; }
    // The focusable controls: the search box of a multiple picker, the combobox of a single one. A single picker's
    // combobox is already labelled by its chosen value: the label goes first.
    $container.find(".select2-selection, .select2-search__field").each(function () {
      var own = this.getAttribute("aria-labelledby");
      this.setAttribute("aria-labelledby", own ? nameId + " " + own : nameId);
    });
  }

  $(function () {
    document.querySelectorAll("select.my_select2").forEach(setUpPicker);
  });

  // select2 4.0 names its list of choices with aria-owns only; an expanded combobox needs aria-controls (ARIA 1.2).
  $(document).on("select2:open select2:close", "select", function (event) {
    var instance = $(this).data("select2");
    if (!instance) { return; }
    instance.$container.find(".select2-selection[role='combobox']").each(function () {
      var list = this.getAttribute("aria-owns");
      if (event.type === "select2:open" && list) {
        this.setAttribute("aria-controls", list);
      } else {
        this.removeAttribute("aria-controls");
      }
    });
  });

  // --- bootstrap-datepicker hears keystrokes only: a whole date set otherwise (autofill, dictation, a paste by the
  // browser) was replaced by the picker's own date when it closed, and the form said the date was missing ----------

  $(document).on("input change", ".appbuilder_date input, .appbuilder_datetime input", function () {
    var holder = $(this).closest(".appbuilder_date, .appbuilder_datetime");
    if (/^\d{4}-\d{2}-\d{2}$/.test(this.value) && holder.data("datepicker")) {
      holder.datepicker("update", this.value);
    }
  });

  // --- Bootstrap's collapse puts aria-expanded on the panel itself, where ARIA does not allow it --------------------

  $(document).on("show.bs.collapse hide.bs.collapse", ".panel-collapse", function (event) {
    var panel = this;
    if (event.target !== panel) { return; }
    window.setTimeout(function () { panel.removeAttribute("aria-expanded"); }, 0);  // set after this event
  });
})(jQuery);

# Two commands: `make run` (set up and serve the demo portal) and `make test` (set up and pass the tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app run
PORT ?= 8080
export PORT

.PHONY: run test setup test-setup system-deps test-system-deps translations db demo extract-messages benchmark clean \
	audit check-lock lock

run: setup db demo
	@echo ""
	@echo "Espace locataire: http://127.0.0.1:$(PORT)"
	@echo "Demo accounts (password Portail-2026!): admin@example.org, gestionnaire@example.org,"
	@echo "                                        locataire@example.org, retard@example.org"
	@echo "Mail is written to instance/outbox/. Stop with Ctrl+C."
	$(BIN)/python run.py

test: test-setup audit check-lock
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Known vulnerabilities in the installed dependencies and in requirements.lock's pins (pip-audit): fails on one,
# prints "skipped: <reason>" and goes on when no advisory service can be reached.
audit: test-setup
	@$(BIN)/python scripts/audit_dependencies.py --timeout 15

# requirements.lock must still satisfy pyproject.toml (offline).
check-lock: test-setup
	@$(BIN)/python scripts/check_lock.py

# Regenerate requirements.lock, the hashed pins that production installs from:
#   pip install --require-hashes -r requirements.lock && pip install --no-deps .
# Run it after changing the dependencies in pyproject.toml (pins still allowed are kept); `make lock UPGRADE=1`
# moves every pin to the newest release within pyproject's bounds.
lock: $(VENV)/.installed
	$(BIN)/pip install --quiet "uv>=0.5,<1"
	$(BIN)/uv pip compile pyproject.toml --quiet $(if $(UPGRADE),--upgrade) --generate-hashes --universal \
		--python-version 3.11 --custom-compile-command "make lock" --output-file requirements.lock
	$(BIN)/python scripts/check_lock.py

setup: system-deps $(VENV)/.installed translations

test-setup: setup test-system-deps $(VENV)/.installed-test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

# wkhtmltopdf renders the PDF documents. Installed with apt when missing and we are root.
system-deps:
	@bash scripts/system-deps.sh wkhtmltopdf

# Tests also need Chromium (browser tests), PostgreSQL's server binaries (database tests) and Redis (several web
# processes sharing rate limits and throttles).
test-system-deps:
	@bash scripts/system-deps.sh chromium postgresql redis nginx

translations: $(VENV)/.installed
	@$(BIN)/pybabel -q compile -d app/translations

db: setup
	@mkdir -p instance
	$(FLASK) db upgrade
	$(FLASK) init-security

demo: db
	$(FLASK) seed-demo --households $${DEMO_HOUSEHOLDS:-200}

# Refresh the catalogs after changing strings: extract, then update fr and en.
extract-messages: $(VENV)/.installed
	$(BIN)/pybabel -q extract -F babel.cfg -k lazy_gettext -k _l -o app/translations/messages.pot .
	$(BIN)/pybabel -q update -N -i app/translations/messages.pot -d app/translations
	$(BIN)/python scripts/fill_french_catalog.py

benchmark: setup
	$(BIN)/python scripts/benchmark_seed.py

clean:
	rm -rf $(VENV) instance .pytest_cache

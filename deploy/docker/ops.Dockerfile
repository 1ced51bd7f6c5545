# cardcore-ops: the `cardcore` operator command with every service's plug-ins and schemas, for
# one-shot jobs — the compose `init` service runs `cardcore db upgrade` with it, once, for every
# schema on every shard (the services themselves only wait until it has finished).
#
# Build context is the repository root (one uv workspace, one lock):
#   docker build -f deploy/docker/ops.Dockerfile -t cardcore/ops .
# Not included: tools/stack (the local process runner and load-test tools): see loadtest.Dockerfile.
ARG BASE_IMAGE=python:3.11-slim

# --- manifests: every workspace member's pyproject.toml + uv.lock, nothing else. The dependency
# layer below is keyed on these files only, so a source edit does not reinstall dependencies.
FROM ${BASE_IMAGE} AS manifests
COPY . /src
RUN mkdir /manifests \
 && cd /src \
 && find . -name pyproject.toml -not -path "./deploy/*" -exec cp --parents {} /manifests/ \; \
 && cp uv.lock /manifests/

# --- builder: uv installs this package's locked dependencies (no dev group, nothing of the other
# services) into /opt/cardcore, then the workspace packages themselves, non-editable.
FROM ${BASE_IMAGE} AS builder
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_PROJECT_ENVIRONMENT=/opt/cardcore \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /src
COPY --from=manifests /manifests/ ./
# The kernel's dependencies first: the same instruction in every cardcore Dockerfile, so this
# biggest layer is built once and shared by all the images.
RUN uv sync --frozen --no-dev --no-editable --no-install-workspace --package cardcore-kernel
RUN uv sync --frozen --no-dev --no-editable --no-install-workspace \
    --package cardcore-accounts \
    --package cardcore-ledger \
    --package cardcore-gateway \
    --package cardcore-migration \
    --package cardcore-batch
COPY libs/kernel/pyproject.toml libs/kernel/pyproject.toml
COPY libs/kernel/src libs/kernel/src
COPY libs/copybook/pyproject.toml libs/copybook/pyproject.toml
COPY libs/copybook/src libs/copybook/src
COPY services/card-core/accounts/pyproject.toml services/card-core/accounts/pyproject.toml
COPY services/card-core/accounts/src services/card-core/accounts/src
COPY services/card-core/ledger/pyproject.toml services/card-core/ledger/pyproject.toml
COPY services/card-core/ledger/src services/card-core/ledger/src
COPY services/gateway/pyproject.toml services/gateway/pyproject.toml
COPY services/gateway/src services/gateway/src
COPY services/legacy-ccs/pyproject.toml services/legacy-ccs/pyproject.toml
COPY services/legacy-ccs/src services/legacy-ccs/src
COPY services/migration/pyproject.toml services/migration/pyproject.toml
COPY services/migration/src services/migration/src
COPY services/batch/pyproject.toml services/batch/pyproject.toml
COPY services/batch/src services/batch/src
RUN uv sync --frozen --no-dev --no-editable \
    --package cardcore-accounts \
    --package cardcore-ledger \
    --package cardcore-gateway \
    --package cardcore-migration \
    --package cardcore-batch

# --- runtime: the venv only; a non-root user; tini as PID 1 forwards SIGTERM and reaps (and
# reports uvicorn's re-raised SIGTERM after a graceful shutdown, 143, as a clean exit 0).
FROM ${BASE_IMAGE} AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 cardcore \
 && useradd --system --uid 10001 --gid cardcore --home-dir /var/lib/cardcore \
      --shell /usr/sbin/nologin cardcore \
 && install -d -o cardcore -g cardcore /var/lib/cardcore /var/lib/cardcore/ccs-archive
# Production mode: the PAN keys must come from the environment (no generated dev keys).
ENV PATH=/opt/cardcore/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CARDCORE_ENV=production \
    CARDCORE_DATA_DIR=/var/lib/cardcore
WORKDIR /var/lib/cardcore
COPY --from=builder /opt/cardcore /opt/cardcore
COPY deploy/docker/entrypoint.sh /usr/local/bin/cardcore-entrypoint
COPY deploy/docker/probe.py /usr/local/bin/cardcore-probe
USER 10001:10001
ENV CARDCORE_WAIT_FOR="servers"
HEALTHCHECK NONE
ENTRYPOINT ["tini", "-e", "143", "--", "cardcore-entrypoint"]
CMD ["cardcore", "db", "upgrade"]

# CodeMentor Collab server image.
#
#   docker build -t codementor-collab:0.1.0 .
#   docker run -e CODEMENTOR_SECRET=$(openssl rand -hex 32) -p 8000:8000 codementor-collab:0.1.0
#
# The server listens on 0.0.0.0 in the image, and a server bound off loopback refuses to
# start without CODEMENTOR_SECRET: supply it (and ANTHROPIC_API_KEY, CODEMENTOR_JUDGE0_TOKEN,
# CODEMENTOR_ADMIN_TOKEN when used) from the environment at run time, never at build time.
# Every other setting is a CODEMENTOR_* variable too (`codementor serve --help`); arguments
# after the image name are passed to `codementor serve` (e.g. `--log-level debug`).
# One worker per container; scale with containers (see docker/README.md).

# -- 1. the browser client: web/dist --------------------------------------------------------
FROM node:22.14.0-bookworm-slim AS web
WORKDIR /src
COPY web/package.json web/package-lock.json web/
RUN npm ci --prefix web --no-audit --no-fund
COPY web/ web/
RUN npm run --prefix web build

# -- 2. the Python package and its dependencies, in a virtual environment -------------------
FROM python:3.11.11-slim-bookworm AS app
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first (their own layer, rebuilt only when the lock changes): the exact
# versions, checked by hash, that CI ran (requirements.lock; `make lock` makes it).
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml ./
COPY README.md ./
COPY server/ server/
COPY crdt/ crdt/
COPY rooms/ rooms/
COPY ai_assist/ ai_assist/
COPY runner/ runner/
RUN pip install --no-deps /src

# -- 3. the runtime image ------------------------------------------------------------------
FROM python:3.11.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CODEMENTOR_HOST=0.0.0.0 \
    CODEMENTOR_PORT=8000 \
    CODEMENTOR_DATA_DIR=/data \
    CODEMENTOR_LOG_FORMAT=json \
    CODEMENTOR_DRAIN_SECONDS=10
RUN groupadd --system --gid 10001 codementor \
    && useradd --system --uid 10001 --gid codementor --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin codementor \
    && mkdir /data \
    && chown codementor:codementor /data
COPY --from=app /opt/venv /opt/venv
# server/web.py serves <the directory holding the `server` package>/../web/dist, i.e.
# site-packages/web/dist for an installed package: put the build exactly there, and fail
# the build if the server would not find it.
COPY --from=web /src/web/dist /opt/venv/lib/python3.11/site-packages/web/dist
RUN python -c "from server.web import DIST; assert (DIST / 'index.html').is_file(), DIST"
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# slim has no curl: ask /healthz with the standard library.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CODEMENTOR_PORT', '8000'), timeout=2)"]
# SIGTERM drains: /readyz turns 503, rooms are flushed (at most CODEMENTOR_DRAIN_SECONDS),
# websockets close with 1012 (at most as long again; clients reconnect elsewhere). Give
# the container more than twice that before SIGKILL (`docker stop -t`, compose
# stop_grace_period, the Kubernetes grace period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["codementor", "serve"]

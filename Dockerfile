# syntax=docker/dockerfile:1
# okr-sync as a container: `okr-sync serve` by default; any other command as arguments,
# e.g. `docker run --rm --env-file okr-sync.env okr-sync:latest run --dry-run`.
ARG PYTHON_VERSION=3.12

# Build stage: a virtualenv with okr-sync and its PostgreSQL driver, copied whole into
# the runtime stage so no build tooling or pip cache ships in the image.
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/okr-sync
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/okr-sync/bin/pip install '.[postgres]'

FROM python:${PYTHON_VERSION}-slim
# The same base image as the build stage, so the virtualenv's interpreter links stay valid.
ENV PATH=/opt/okr-sync/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OKR_SYNC_PLAN=/etc/okr-sync/okr-plan.yaml \
    OKR_SYNC_DATABASE_URL=sqlite:////var/lib/okr-sync/okr-sync.db
# A fixed numeric uid lets Kubernetes check runAsNonRoot without resolving a name.
RUN groupadd --system --gid 10001 okr-sync \
    && useradd --system --uid 10001 --gid okr-sync --no-create-home \
       --home-dir /var/lib/okr-sync --shell /usr/sbin/nologin okr-sync \
    && mkdir -p /etc/okr-sync /var/lib/okr-sync \
    && chown okr-sync:okr-sync /var/lib/okr-sync
COPY --from=build /opt/okr-sync /opt/okr-sync
WORKDIR /var/lib/okr-sync
VOLUME ["/var/lib/okr-sync"]
USER 10001:10001
EXPOSE 8080
# The slim image has no curl; urlopen raises (exit 1) on a refused connection or a non-2xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]
ENTRYPOINT ["okr-sync"]
CMD ["serve", "--interval", "5m", "--port", "8080"]

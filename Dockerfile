# One image for every stockstream component (replay producer, ingestion,
# Bytewax dataflow). The command is chosen by the Kubernetes manifests:
#   python -m services.replay           (default CMD)
#   dataflow-entrypoint                 (Bytewax cluster process)
#
# PYTHON_IMAGE is an argument only so the build can be smoke-tested against a
# locally imported base when Docker Hub is unreachable; use the default.
ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# 1) Third-party dependencies only, pinned by requirements.lock and keyed on
#    it and pyproject.toml, so that editing code (skaffold dev) does not
#    reinstall bytewax/confluent-kafka/...
COPY pyproject.toml requirements.lock ./
RUN mkdir -p stockstream services dataflows \
 && touch stockstream/__init__.py services/__init__.py dataflows/__init__.py README.md \
 && pip install -c requirements.lock . \
 && pip uninstall -y stockstream \
 && rm -rf stockstream services dataflows README.md build ./*.egg-info

# 2) The project itself.
COPY . ./
RUN pip install --no-deps -c requirements.lock . \
 && python -c "import stockstream, services, dataflows, bytewax, confluent_kafka, redis, prometheus_client" \
 && mkdir -p /src/data /src/dist \
 && for f in NOTICE LICENSE* README.md; do if [ -f "$f" ]; then cp "$f" /src/dist/; fi; done

FROM ${PYTHON_IMAGE} AS runtime
ARG UID=10001
RUN groupadd --gid "${UID}" stockstream \
 && useradd --uid "${UID}" --gid "${UID}" --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin stockstream
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/data /app/data
# Attribution of the bundled market data (Apache-2.0) travels with it.
COPY --from=build /src/dist/ /app/
COPY deploy/docker/dataflow-entrypoint.sh /usr/local/bin/dataflow-entrypoint
# HOME points at /tmp: the root filesystem is read-only in Kubernetes and
# /tmp is an emptyDir there.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    METRICS_PORT=9100
WORKDIR /app
# Numeric user so that runAsNonRoot can be verified by the kubelet.
USER 10001:10001
# 9100: Prometheus metrics + /healthz + /readyz; 2101: Bytewax cluster traffic.
EXPOSE 9100 2101
CMD ["python", "-m", "services.replay"]

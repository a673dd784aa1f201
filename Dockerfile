# trendcast worker image. CPU by default; for CUDA build with
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126   (see docker-compose.gpu.yml)
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# torch first and from the chosen index: an unpinned resolve would pull a multi-GB CUDA build.
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY stream_app ./stream_app
COPY models ./models
COPY schemas ./schemas
RUN pip install .

# A fixed numeric uid: Kubernetes' runAsNonRoot can only verify a numeric USER (deploy/k8s sets the same uid).
RUN groupadd --gid 10001 trendcast \
 && useradd --uid 10001 --gid 10001 --home /var/lib/trendcast --create-home trendcast
USER 10001:10001
ENV TRENDCAST_METRICS_HOST=0.0.0.0 TRENDCAST_METRICS_PORT=9464 TRENDCAST_DATA_DIR=/var/lib/trendcast
EXPOSE 9464
ENTRYPOINT ["trendcast"]
CMD ["worker"]

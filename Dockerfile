# One image for every Python service of the stack (pulse, ingest, dashboard).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY dashboard/ dashboard/
COPY app_pages/ app_pages/
COPY app.py .
# Streamlit's config only: secrets are mounted at run time (docker-compose.yml), never copied in.
COPY .streamlit/config.toml .streamlit/config.toml
RUN useradd --create-home --uid 10001 darooghe
USER darooghe
EXPOSE 8501 9108
CMD ["python", "-m", "dashboard.ingest"]

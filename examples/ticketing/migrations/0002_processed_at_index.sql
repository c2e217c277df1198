-- Throughput is measured (and dashboards are drawn) from decisions over time.
CREATE INDEX processed_requests_processed_at ON processed_requests (processed_at);

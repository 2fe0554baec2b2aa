DROP TABLE audit_reruns;

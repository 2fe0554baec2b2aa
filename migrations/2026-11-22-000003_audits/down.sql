DROP TABLE audit_step_results;
DROP TABLE audits;
DROP TABLE audit_control_points;
DROP TABLE audit_steps;
DROP TABLE audit_configs;

DROP TABLE automation_webhook_deliveries;
ALTER TABLE automation_schedules DROP COLUMN webhook_secret;

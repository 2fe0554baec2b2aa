DROP TABLE crm_permit_leases;
DROP TABLE events;

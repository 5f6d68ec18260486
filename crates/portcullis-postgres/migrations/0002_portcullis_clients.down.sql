-- Reverts 0002_portcullis_clients.up.sql: drops the client registry, back to schema version 1.
DROP TABLE IF EXISTS portcullis_clients;
UPDATE portcullis_schema_version SET version = 1;

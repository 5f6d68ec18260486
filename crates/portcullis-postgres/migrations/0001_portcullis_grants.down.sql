-- Reverts 0001_portcullis_grants.up.sql: drops every grant table and the schema version row.
-- Every stored grant is lost: run this only to remove portcullis from a database.
DROP TABLE IF EXISTS portcullis_access_tokens;
DROP TABLE IF EXISTS portcullis_refresh_tokens;
DROP TABLE IF EXISTS portcullis_authorization_codes;
DROP TABLE IF EXISTS portcullis_families;
DROP TABLE IF EXISTS portcullis_schema_version;

-- Least-privileged access to conveyor's ClickHouse database. Not a migration:
-- an administrator applies it once (clickhouse-client --multiquery <
-- access.sql), after replacing the passwords, and grants the roles to the
-- users below. Database name: conveyor (change with clickhouse.database).
--
--   conveyor_admin   `sink clickhouse --migrate` (init Job), `replay rebuild
--                    --sink clickhouse`, `replay sandbox` (its own database)
--   conveyor_sink    the ClickHouse sink: reads the migrations table, inserts
--   conveyor_analyst analysts and Grafana's business dashboard: read only

CREATE ROLE IF NOT EXISTS conveyor_writer;
GRANT SELECT, INSERT ON conveyor.* TO conveyor_writer;

CREATE ROLE IF NOT EXISTS conveyor_reader;
GRANT SELECT ON conveyor.* TO conveyor_reader;

CREATE ROLE IF NOT EXISTS conveyor_ddl;
GRANT CREATE DATABASE, CREATE TABLE, CREATE VIEW, DROP TABLE, DROP VIEW, TRUNCATE,
      ALTER TABLE, ALTER VIEW, SELECT, INSERT, SYSTEM REFRESH VIEW ON *.* TO conveyor_ddl;

CREATE USER IF NOT EXISTS conveyor_admin IDENTIFIED WITH sha256_password BY 'CHANGE-ME-admin'
    DEFAULT ROLE conveyor_ddl;
GRANT conveyor_ddl TO conveyor_admin;

CREATE USER IF NOT EXISTS conveyor_sink IDENTIFIED WITH sha256_password BY 'CHANGE-ME-sink'
    DEFAULT ROLE conveyor_writer;
GRANT conveyor_writer TO conveyor_sink;

CREATE USER IF NOT EXISTS conveyor_analyst IDENTIFIED WITH sha256_password BY 'CHANGE-ME-analyst'
    DEFAULT ROLE conveyor_reader
    SETTINGS readonly = 2;
GRANT conveyor_reader TO conveyor_analyst;

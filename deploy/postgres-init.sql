-- The global database is created by POSTGRES_DB; these are the shard databases.
CREATE DATABASE instagram_shard_0;
CREATE DATABASE instagram_shard_1;

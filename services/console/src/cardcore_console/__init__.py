"""cardcore ops console: the migration weekend's pages (buckets, migration, traffic, batch,
cutover), served by FastAPI, rendered on the server, refreshed in place every few seconds."""
